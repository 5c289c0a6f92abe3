import type {CompleteOptions, CompletionRequest, CompletionResult, LlamaEngineInfo} from './llamaEngine.js'

/**
 * What the inference actor needs from an engine: completions, the load it reports in its
 * status, and a way to free it when the supervisor restarts the actor. The actor depends on
 * this rather than on LlamaEngine so that it can run on an engine that loads no model.
 */
export interface InferenceEngine {
  /** What was loaded and how; the actor logs it once the engine is open. */
  readonly info: LlamaEngineInfo
  /**
   * The class it declares, when not the one its model and backend make: only a stand-in engine
   * of a test (a rogue miner, a simulated GPU miner) sets it.
   */
  readonly determinismClass?: string
  /** Requests generating now. */
  readonly running: number
  /** Requests waiting for the engine. */
  readonly queued: number
  complete: (request: CompletionRequest, options?: CompleteOptions) => Promise<CompletionResult>
  dispose: () => Promise<void>
}
