import type {ActorRef} from '../actorSystem.js'

export interface StatsStatus {
  heartbeatsSent: number
  chainPings: number
  lastChainPing?: {at: number, tx: string, blockNumber: number}
  lastPingError?: string
}

export type StatsMessage =
  /** The model is verified and loaded: ping NodeStats now (ready), then at the slow interval. */
  | {type: 'ModelReady', modelId: string}
  | {type: 'GetStatus', replyTo: ActorRef<StatsStatus>}
