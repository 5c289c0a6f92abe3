import type {ModelId} from '../../protocols/modelId.js'
import type {ActorRef} from '../actorSystem.js'

export interface StatsStatus {
  heartbeatsSent: number
  chainPings: number
  lastChainPing?: {at: number, tx: string, blockNumber: number}
  lastPingError?: string
}

export type StatsMessage =
  /** The model is verified and loaded: ping NodeStats now (ready), then at the slow interval. */
  | {type: 'ModelReady', modelId: ModelId}
  | {type: 'GetStatus', replyTo: ActorRef<StatsStatus>}
