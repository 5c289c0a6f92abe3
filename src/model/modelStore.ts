import type {ModelDescriptor} from './modelDescriptor.js'
import type {OnModelProgress} from './modelProgress.js'

export interface ModelCallOptions {
  signal?: AbortSignal
  onProgress?: OnModelProgress
}

/** What `addFile` learnt about a local file: the three facts a ModelRegistry record carries. */
export interface AddedFile {
  cid: string
  sha256: string
  sizeBytes: number
}

export interface ModelFile {
  /** Final path of the verified file, ready to load. */
  path: string
  descriptor: ModelDescriptor
  /** Bytes pulled from peers by this call; the rest of the file was already in the blockstore (resume). */
  networkBytes: number
  /** Bytes that were already in the local blockstore or, for a cached file, the whole file. */
  localBytes: number
  /** Block bytes received by this call per source: a peer id, or `bitswap`. */
  sources?: Record<string, number>
}

/**
 * What the model actor needs from a store: a local file seeded under its CID, or the
 * verified file of a descriptor. An interface, so the actor can be tested without helia.
 */
export interface ModelStore {
  /** Imports and seeds a local file; what it returns is compared with the registry's record. */
  addFile: (path: string, options?: ModelCallOptions) => Promise<AddedFile>
  /** The descriptor's file, verified: never a path whose bytes differ from the descriptor's. */
  ensureModel: (descriptor: ModelDescriptor, options?: ModelCallOptions) => Promise<ModelFile>
}
