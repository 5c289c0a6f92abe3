import type {ModelId} from '../../protocols/modelId.js'
import type {ModelDescriptor} from '../../model/modelDescriptor.js'
import type {ModelProgress} from '../../model/modelProgress.js'
import type {ActorRef} from '../actorSystem.js'

export type EnsureReply =
  | {type: 'Ready', modelId: ModelId, path: string, descriptor: ModelDescriptor, networkBytes: number}
  | {type: 'Failed', modelId: ModelId, code: string, error: string}

/** One model's way to a verified local file. */
export interface ModelStatus {
  modelId: ModelId
  phase: 'resolving' | 'importing' | 'fetching' | 'verifying' | 'ready' | 'failed'
  progress?: ModelProgress
  path?: string
  error?: string
}

export type ModelMessage =
  /**
   * Make the registry's model `modelId` available as a verified local file: seed `localFile`
   * when this node has it (its CID and sha256 must match the registry), else fetch over IPFS.
   */
  | {type: 'Ensure', modelId: ModelId, localFile?: string, replyTo: ActorRef<EnsureReply>}
  /** Every model asked for so far, in the order asked. */
  | {type: 'GetStatus', replyTo: ActorRef<ModelStatus[]>}
