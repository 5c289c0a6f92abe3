import type {PeerId} from '@libp2p/interface'
import {computeAddress, hexlify} from 'ethers'

/**
 * The Ethereum address behind a peer id, or null when the peer id is not a secp256k1 key (an
 * Ed25519 or RSA peer cannot be a registered node). The peer id embeds the compressed public
 * key, so no lookup is needed.
 */
export function addressFromPeerId (peerId: PeerId): string | null {
  if (peerId.type !== 'secp256k1') return null
  return computeAddress(hexlify(peerId.publicKey.raw))
}
