import type {Commit, Heartbeat, Precommit, TaskMode} from '../../protocols/messages.js'
import type {MinerResultMessage} from '../../protocols/resultExchange.js'
import type {ActorRef} from '../actorSystem.js'
import type {DecodedEvent} from '../chain/messages.js'
import type {MinerView} from './selectMiners.js'

export interface CompletionRequest {
  prompt: string
  maxTokens: number
  mode: TaskMode
  redundancy: number
  seed: number
  temperature: number
  topK: number
  topP: number
  modelId: string
}

/** `failed`: the task never made it on chain (nothing to settle). */
export type TaskPhase = 'running' | 'settling' | 'ended' | 'expired' | 'failed'

export interface TxRef {
  label: string
  hash: string
  blockNumber: number
}

/** Everything the oracle knows about one task: the API's view of it. */
export interface TaskRecord {
  taskId: string
  phase: TaskPhase
  mode: TaskMode
  k: number
  modelId: string
  prompt: string
  params: {maxTokens: number, temperature: number, topK: number, topP: number}
  seed: number
  assignees: string[]
  reassignments: Array<{from: string, to: string, reason: string}>
  precommits: Array<{miner: string, commitment: string, at: number}>
  results: Array<{miner: string, outputHash: string, tokens: number, receivedAt: number}>
  reveals: Array<{miner: string, outputHash: string, at: number}>
  answer?: string
  agreement?: {status: 'agreed' | 'disagreed', agreeing: string[], dissenting: string[]}
  timings: {requestedAt: number, broadcastAt?: number, createdAt?: number, firstTokenAt?: number, firstResultAt?: number, answeredAt?: number, settledAt?: number}
  txs: TxRef[]
  trail: DecodedEvent[]
  error?: string
}

export type CompleteReply =
  | {type: 'Answered', record: TaskRecord}
  | {type: 'Rejected', status: number, code: string, error: string, record?: TaskRecord}

export type OracleMessage =
  /**
   * A user request. `onToken` receives the answer's text as the lead miner produces it (before
   * the other miners' verdict); aborting `signal` (client gone) cancels the work on the miners.
   */
  | {type: 'Complete', request: CompletionRequest, replyTo: ActorRef<CompleteReply>, onToken?: (text: string) => void, signal?: AbortSignal}
  | {type: 'HeartbeatSeen', heartbeat: Heartbeat}
  | {type: 'PrecommitSeen', precommit: Precommit}
  | {type: 'CommitSeen', commit: Commit}
  /** A result a miner sent over its direct stream; `sender` is the stream's authenticated address. */
  | {type: 'ResultReceived', result: MinerResultMessage, sender: string}
  /** A miner opened its task stream; aborting `controller` hangs up on it (cancels its work). */
  | {type: 'StreamOpened', taskId: string, miner: string, controller: AbortController}
  | {type: 'TokenReceived', taskId: string, miner: string, text: string}
  | {type: 'GetTask', taskId: string, replyTo: ActorRef<TaskRecord | null>}
  | {type: 'ListTasks', replyTo: ActorRef<TaskRecord[]>}
  | {type: 'ListMiners', replyTo: ActorRef<MinerView[]>}
