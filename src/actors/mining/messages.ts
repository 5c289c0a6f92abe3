import type {ModelId} from '../../protocols/modelId.js'
import type {Task} from '../../protocols/messages.js'
import type {ActorRef} from '../actorSystem.js'
import type {ChainEventsMessage} from '../chain/messages.js'
import type {InferenceMessage} from '../inference/messages.js'

export interface MiningStatus {
  modelsReady: ModelId[]
  /** Tasks not finished (inferring, precommitting, awaiting the reveal, committing). */
  active: number
  /** Finished since this process started. */
  completed: number
  lost: number
  failed: number
  freeSlots: number
}

export type MiningMessage =
  /** A validated `task` gossip message (the validator already checked the oracle's admission). */
  | {type: 'TaskReceived', task: Task}
  /** The model is verified, loaded by `inference`, and the node is admitted: start mining it. */
  | {type: 'ModelReady', modelId: ModelId, inference: ActorRef<InferenceMessage>}
  | {type: 'GetStatus', replyTo: ActorRef<MiningStatus>}
  /** Task events from the chain watcher (the actor subscribes at init): its tasks' chain side. */
  | ChainEventsMessage
