import {keccak256} from 'ethers'
import {createHash} from 'node:crypto'
import {CortensorError} from '../util/cortensorError.js'
import {toAddress, type Address} from './address.js'
import {secp256k1} from './libsecp256k1.js'


/** r ‖ s ‖ recovery id: the envelope's head, before the body. */
export const GOSSIP_SIGNATURE_BYTES = 65

/** Separates gossip signatures from anything else the node key signs (transactions, verdicts). */
const SIGNATURE_DOMAIN = Buffer.from('cortensor-gossip-signature-v1\0')

/** secp256k1's n / 2: a signature with a larger s has a twin (n - s) that a relay could swap in. */
const HALF_ORDER = Buffer.from('7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0', 'hex')

/** Signs a 32-byte digest: a compact r ‖ s signature with low s, and its recovery id. */
export type GossipSigner = (digest: Uint8Array) => {signature: Uint8Array, recid: number}

/** The node key's signer; the key stays inside the closure. */
export function gossipSigner (privateKey: Uint8Array): GossipSigner {
  return digest => secp256k1.ecdsaSign(digest, privateKey)
}

export type GossipEnvelopeErrorCode = 'SIGNATURE_INVALID'

export class GossipEnvelopeError extends CortensorError<{code: GossipEnvelopeErrorCode}> {}

/** An opened envelope: who signed the body. */
export interface OpenedGossip {
  address: Address
  /** The signer's 33-byte compressed key, the form a secp256k1 libp2p peer id embeds. */
  publicKey: Uint8Array
  body: Uint8Array
}

/**
 * The bytes gossiped on `topicName`: signature ‖ body. The signature covers the full topic name,
 * which carries the network id, so a message cannot be replayed on another topic or network.
 */
export function sealGossip (topicName: string, body: Uint8Array, signer: GossipSigner): Uint8Array {
  const {signature, recid} = signer(gossipDigest(topicName, body))
  const sealed = new Uint8Array(GOSSIP_SIGNATURE_BYTES + body.byteLength)
  sealed.set(signature, 0)
  sealed[64] = recid
  sealed.set(body, GOSSIP_SIGNATURE_BYTES)
  return sealed
}

/**
 * Recovers the signer of `data` received on `topicName`. A body or topic other than the signed
 * one recovers some other key, whose address no ACL admits; only an envelope from which no key
 * recovers at all throws (GossipEnvelopeError).
 */
export function openGossip (topicName: string, data: Uint8Array): OpenedGossip {
  if (data.byteLength < GOSSIP_SIGNATURE_BYTES) invalid(`${data.byteLength} bytes, shorter than a signature`)
  const signature = data.subarray(0, 64)
  const recid = data[64]!
  if (recid > 3) invalid(`recovery id ${recid}`)
  // Low s only: a relay could otherwise swap s for n - s and give the same message a second id.
  if (Buffer.compare(signature.subarray(32), HALF_ORDER) > 0) invalid('high s')
  const body = data.subarray(GOSSIP_SIGNATURE_BYTES)
  let uncompressed: Uint8Array
  try {
    uncompressed = secp256k1.ecdsaRecover(signature, recid, gossipDigest(topicName, body), false)
  } catch (err) {
    throw new GossipEnvelopeError({code: 'SIGNATURE_INVALID'}, `no key recovers from the signature: ${(err as Error).message}`, {cause: err})
  }
  // 0x04 ‖ x ‖ y: the address hashes x ‖ y; the compressed key is x with y's parity.
  const address = toAddress('0x' + keccak256(uncompressed.subarray(1)).slice(-40))
  const publicKey = new Uint8Array(33)
  publicKey[0] = 0x02 | (uncompressed[64]! & 1)
  publicKey.set(uncompressed.subarray(1, 33), 1)
  return {address, publicKey, body}
}

function gossipDigest (topicName: string, body: Uint8Array): Uint8Array {
  const topic = Buffer.from(topicName)
  const topicLength = Buffer.alloc(2)
  topicLength.writeUInt16BE(topic.byteLength)
  return createHash('sha256').update(SIGNATURE_DOMAIN).update(topicLength).update(topic).update(body).digest()
}

function invalid (why: string): never {
  throw new GossipEnvelopeError({code: 'SIGNATURE_INVALID'}, `gossip signature invalid: ${why}`)
}
