import type {CID} from 'multiformats/cid'

/** Multihash code of sha2-256, the only hash our CIDs use (UnixFS importer default). */
const SHA2_256 = 0x12

/**
 * Whether `bytes` are the block `cid` names. Hashed with WebCrypto, which runs in libuv's
 * thread pool: a fetch hashing every MiB it receives then leaves the event loop to noise,
 * yamux and the disk. A CID with another hash function is reported as not matching: such a
 * block is left to bitswap, which verifies with helia's hashers.
 */
export async function blockMatchesCid (cid: CID, bytes: Uint8Array): Promise<boolean> {
  const {code, digest} = cid.multihash
  if (code !== SHA2_256 || digest.byteLength !== 32) return false
  const actual = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  for (let i = 0; i < 32; i++) if (actual[i] !== digest[i]) return false
  return true
}

export function verifiableCid (cid: CID): boolean {
  return cid.multihash.code === SHA2_256
}
