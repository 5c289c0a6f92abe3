import {CID} from 'multiformats/cid'
import {ModelError} from './modelError.js'

/**
 * What the chain says a model is (ModelRegistry record, mapped by the caller). `cid` is the
 * UnixFS file root as `ModelStore.addFile` computes it; `sha256` is of the whole file, hex.
 */
export interface ModelDescriptor {
  id?: string | number | bigint
  name: string
  cid: string
  /** 64 hex digits, with or without `0x` (a bytes32 read from the chain has it). */
  sha256: string
  sizeBytes: number
  quantization: string
}

const SHA256_HEX = /^[0-9a-f]{64}$/

/** Lower-case hex without `0x`: the one form compared against computed digests. */
export function normalizeSha256 (sha256: string): string {
  const hex = sha256.toLowerCase().replace(/^0x/, '')
  if (!SHA256_HEX.test(hex)) {
    throw new ModelError({code: 'INVALID_DESCRIPTOR', reason: `sha256 is not 32 bytes of hex: ${sha256}`})
  }
  return hex
}

/** Checks a descriptor before any network work, so a malformed chain record fails at once. */
export function parseDescriptor (descriptor: ModelDescriptor): {cid: CID, sha256: string, sizeBytes: number} {
  let cid: CID
  try {
    cid = CID.parse(descriptor.cid)
  } catch (err) {
    throw new ModelError({code: 'INVALID_DESCRIPTOR', reason: `cid does not parse: ${descriptor.cid}`}, undefined, {cause: err})
  }
  if (!Number.isSafeInteger(descriptor.sizeBytes) || descriptor.sizeBytes < 0) {
    throw new ModelError({code: 'INVALID_DESCRIPTOR', reason: `sizeBytes is not a byte count: ${descriptor.sizeBytes}`})
  }
  if (descriptor.name.length === 0) {
    throw new ModelError({code: 'INVALID_DESCRIPTOR', reason: 'name is empty'})
  }
  return {cid, sha256: normalizeSha256(descriptor.sha256), sizeBytes: descriptor.sizeBytes}
}
