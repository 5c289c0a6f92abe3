import type {ModelId} from '../../protocols/modelId.js'
import type {ActorRef} from '../actorSystem.js'

export interface StatsStatus {
  heartbeatsSent: number
  chainPings: number
  lastChainPing?: {at: number, tx: string, blockNumber: number}
  lastPingError?: string
}

export type StatsMessage =
  /** One more model is served: ping NodeStats now (ready for every model served so far), then at the slow interval. */
  | {type: 'ModelReady', modelId: ModelId}
  | {type: 'GetStatus', replyTo: ActorRef<StatsStatus>}
