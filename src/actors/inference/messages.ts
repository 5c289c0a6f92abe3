import type {CompletionRequest} from '../../inference/llamaEngine.js'
import type {OnToken} from '../../inference/tokenStream.js'
import type {ActorRef} from '../actorSystem.js'

/** What a miner asks its inference actor to run: the task's prompt and sampling settings. */
export interface InferenceJob extends CompletionRequest {
  /** Correlates cancellation and replies; the chain task id on a miner. */
  jobId: string
}

export interface InferenceOutcome {
  text: string
  tokens: number[]
  /** The class this engine computes in (see determinismClass.ts). */
  determinismClass: string
  promptTokens: number
  completionTokens: number
  finishReason: 'stop' | 'length' | 'abort'
  durationMs: number
  timeToFirstTokenMs: number
  tokensPerSecond: number
}

export type InferenceReply =
  | {type: 'Completed', jobId: string, outcome: InferenceOutcome}
  | {type: 'Failed', jobId: string, code: string, error: string}

export interface InferenceStatus {
  phase: 'loading' | 'ready'
  modelPath: string
  running: number
  queued: number
  completed: number
  /** Tokens/s over the recent completions: what the heartbeat advertises. */
  tokensPerSecond: number
  determinismClass: string
}

export type InferenceMessage =
  | {type: 'Run', job: InferenceJob, replyTo: ActorRef<InferenceReply>, onToken?: OnToken}
  | {type: 'Cancel', jobId: string}
  | {type: 'GetStatus', replyTo: ActorRef<InferenceStatus>}
