import type {Task} from '../../protocols/messages.js'
import type {ActorRef} from '../actorSystem.js'

export interface MiningStatus {
  modelsReady: string[]
  active: number
  completed: number
  lost: number
  failed: number
  freeSlots: number
}

export type MiningMessage =
  /** A validated `task` gossip message (the validator already checked the oracle's admission). */
  | {type: 'TaskReceived', task: Task}
  | {type: 'ModelReady', modelId: string}
  | {type: 'GetStatus', replyTo: ActorRef<MiningStatus>}
