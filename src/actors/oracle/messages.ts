import type {Address} from '../../protocols/address.js'
import type {Commit, Heartbeat, MinerResult, Precommit, SamplingParams, TaskMode} from '../../protocols/messages.js'
import type {ModelId} from '../../protocols/modelId.js'
import type {ActorRef} from '../actorSystem.js'
import type {DecodedEvent} from '../chain/messages.js'
import type {StreamedChunk} from '../../protocols/resultService.js'
import type {VerificationMethod} from '../../verify/verifier.js'
import type {MinerView} from './selectMiners.js'

/** A verifier's verdict on one miner's output, as the task keeps it. */
export interface VerdictSummary {
  accepted: boolean
  method: VerificationMethod
  sameClass: boolean
  reason: string
  ms: number
}

/** What a client asks the network for: one task. */
export interface TaskRequest {
  prompt: string
  modelId: ModelId
  params: SamplingParams
  seed: number
  mode: TaskMode
  /** k: the miners that work on the task. */
  redundancy: number
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
  modelId: ModelId
  prompt: string
  params: SamplingParams
  seed: number
  assignees: Address[]
  reassignments: Array<{from: Address, to: Address, reason: string}>
  precommits: Array<{miner: Address, commitment: string, at: number}>
  results: Array<{miner: Address, outputHash: string, tokens: number, determinismClass: string, receivedAt: number, verdict?: VerdictSummary}>
  reveals: Array<{miner: Address, outputHash: string, at: number}>
  answer?: string
  /**
   * Verified tasks: `agreeing` are the miners whose outputs passed verification (all are paid),
   * `rejected` those whose outputs failed it or were outvoted within their own class (recorded
   * on chain as faults). Unverified tasks: the majority by output hash, as before.
   */
  agreement?: {status: 'agreed' | 'disagreed', agreeing: Address[], dissenting: Address[], verified: boolean, rejected: Address[]}
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
  | {type: 'Complete', request: TaskRequest, replyTo: ActorRef<CompleteReply>, onToken?: (text: string) => void, signal?: AbortSignal}
  | {type: 'HeartbeatSeen', heartbeat: Heartbeat}
  | {type: 'PrecommitSeen', precommit: Precommit}
  | {type: 'CommitSeen', commit: Commit}
  /** A result a miner sent over its direct stream; `sender` is the stream's authenticated address. */
  | {type: 'ResultReceived', result: MinerResult, sender: Address}
  /** A miner opened its task stream; aborting `controller` hangs up on it (cancels its work). */
  | {type: 'StreamOpened', taskId: string, miner: Address, controller: AbortController}
  | {type: 'TokenReceived', taskId: string, miner: Address, chunk: StreamedChunk}
  | {type: 'GetTask', taskId: string, replyTo: ActorRef<TaskRecord | null>}
  | {type: 'ListTasks', replyTo: ActorRef<TaskRecord[]>}
  | {type: 'ListMiners', replyTo: ActorRef<MinerView[]>}
