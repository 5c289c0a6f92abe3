import type {PooledModel} from '../../inference/enginePool.js'
import type {ModelId} from '../../protocols/modelId.js'
import type {ModelDescriptor} from '../../model/modelDescriptor.js'
import type {ModelProgress} from '../../model/modelProgress.js'
import type {ActorRef} from '../actorSystem.js'

export type EnsureReply =
  | {type: 'Ready', modelId: ModelId, path: string, descriptor: ModelDescriptor, networkBytes: number}
  | {type: 'Failed', modelId: ModelId, code: string, error: string}

/** A verified model file as the engines load it: its path, and what its class and memory come from. */
export function pooledModel (ready: Extract<EnsureReply, {type: 'Ready'}>): PooledModel {
  return {id: ready.modelId, path: ready.path, sha256: ready.descriptor.sha256, sizeBytes: ready.descriptor.sizeBytes}
}

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
