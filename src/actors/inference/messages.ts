import type {PooledModel} from '../../inference/enginePool.js'
import type {CompletionRequest} from '../../inference/llamaEngine.js'
import type {OnToken} from '../../inference/tokenStream.js'
import type {ServedModel} from '../../protocols/messages.js'
import type {ModelId} from '../../protocols/modelId.js'
import type {ActorRef} from '../actorSystem.js'

/** What a miner asks its inference actor to run: the task's model, prompt and sampling settings. */
export interface InferenceJob extends CompletionRequest {
  /** Correlates cancellation and replies; the chain task id on a miner. */
  jobId: string
  modelId: ModelId
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

/** `loaded`: the model was loaded at once (it fit the budget beside the others); otherwise it loads on its first task. */
export type AddModelReply =
  | {type: 'Added', modelId: ModelId, loaded: boolean}
  | {type: 'Failed', modelId: ModelId, code: string, error: string}


export interface InferenceStatus {
  models: ServedModel[]
  running: number
  queued: number
  completed: number
  /** Tokens/s over the recent completions: what the heartbeat advertises. */
  tokensPerSecond: number
}

export type InferenceMessage =
  /** A verified model file to serve: loaded now if it fits the memory budget, else on demand. */
  | {type: 'AddModel', model: PooledModel, replyTo: ActorRef<AddModelReply>}
  | {type: 'Run', job: InferenceJob, replyTo: ActorRef<InferenceReply>, onToken?: OnToken}
  | {type: 'Cancel', jobId: string}
  | {type: 'GetStatus', replyTo: ActorRef<InferenceStatus>}
