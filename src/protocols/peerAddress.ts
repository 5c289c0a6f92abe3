import type {PeerId} from '@libp2p/interface'
import {peerIdFromMultihash} from '@libp2p/peer-id'
import {computeAddress, hexlify} from 'ethers'
import {toAddress, type Address} from './address.js'
import * as Digest from 'multiformats/hashes/digest'

/**
 * The Ethereum address behind a peer id, or null when the peer id is not a secp256k1 key (an
 * Ed25519 or RSA peer cannot be a registered node). The peer id embeds the compressed public
 * key, so no lookup is needed.
 */
export function addressFromPeerId (peerId: PeerId): Address | null {
  if (peerId.type !== 'secp256k1') return null
  return toAddress(computeAddress(hexlify(peerId.publicKey.raw)))
}

/** A peer id as IAM stores it (`bytes peerId`): its multihash bytes, 39 for a secp256k1 key. */
export function peerIdToBytes (peerId: PeerId): Uint8Array {
  return peerId.toMultihash().bytes
}

/** Inverse of `peerIdToBytes`; throws on bytes that are not a peer id multihash. */
export function peerIdFromBytes (bytes: Uint8Array): PeerId {
  return peerIdFromMultihash(Digest.decode(bytes))
}
