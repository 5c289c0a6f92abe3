import {StrictNoSign} from '@libp2p/gossipsub'
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {GOSSIP_SIGNATURE_BYTES, GossipEnvelopeError, gossipSigner, openGossip, sealGossip} from '../../src/protocols/gossipEnvelope.js'
import {gossipMessageId, gossipsubOptions} from '../../src/protocols/gossipScoring.js'
import {GossipTopic, topicName} from '../../src/protocols/topic.js'
import {nodeKeyFromPrivateKey} from '../../src/runtime/keys.js'

const key = nodeKeyFromPrivateKey('0x' + '11'.repeat(32))
const signer = gossipSigner(key.privateKey)
const TOPIC = topicName('devnet', GossipTopic.precommit)
const BODY = Uint8Array.from([0x93, 0x01, 0x02, 0x03])
/** secp256k1's group order. */
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n

function expectInvalid (fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof GossipEnvelopeError && err.code === 'SIGNATURE_INVALID')
}

function flipped (bytes: Uint8Array, index: number): Uint8Array {
  const copy = Uint8Array.from(bytes)
  copy[index] = copy[index]! ^ 1
  return copy
}

describe('gossip envelope', () => {
  it('is the 65-byte signature, then the body, and opens to the signer\'s address and key', () => {
    const sealed = sealGossip(TOPIC, BODY, signer)
    assert.equal(sealed.byteLength, GOSSIP_SIGNATURE_BYTES + BODY.byteLength)
    assert.deepEqual(sealed.subarray(GOSSIP_SIGNATURE_BYTES), BODY)
    const opened = openGossip(TOPIC, sealed)
    assert.equal(opened.address, key.address)
    // The key a secp256k1 peer id embeds: what the heartbeat's peer id check compares.
    assert.deepEqual(opened.publicKey, key.peerId.publicKey!.raw)
    assert.deepEqual(opened.body, BODY)
    assert.equal(openGossip(TOPIC, sealGossip(TOPIC, new Uint8Array(0), signer)).address, key.address, 'an empty body is signed too')
  })

  it('opens a flipped body byte, or the same bytes on another topic or network, to some other address', () => {
    const sealed = sealGossip(TOPIC, BODY, signer)
    assert.notEqual(openGossip(TOPIC, flipped(sealed, sealed.byteLength - 1)).address, key.address)
    assert.notEqual(openGossip(topicName('devnet-2', GossipTopic.precommit), sealed).address, key.address)
    assert.notEqual(openGossip(topicName('devnet', GossipTopic.commit), sealed).address, key.address)
  })

  it('throws SIGNATURE_INVALID on a truncated signature, a bad recovery id, a high s, or r = 0', () => {
    const sealed = sealGossip(TOPIC, BODY, signer)
    expectInvalid(() => openGossip(TOPIC, sealed.subarray(0, GOSSIP_SIGNATURE_BYTES - 1)))
    expectInvalid(() => openGossip(TOPIC, new Uint8Array(0)))
    const badRecid = Uint8Array.from(sealed)
    badRecid[64] = 4
    expectInvalid(() => openGossip(TOPIC, badRecid))
    // (r, n - s) with the other recovery id is the same signer's signature too: the twin a relay could make.
    const twin = Uint8Array.from(sealed)
    const s = BigInt('0x' + Buffer.from(sealed.subarray(32, 64)).toString('hex'))
    twin.set(Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex'), 32)
    twin[64] = twin[64]! ^ 1
    expectInvalid(() => openGossip(TOPIC, twin))
    const zeroR = Uint8Array.from(sealed)
    zeroR.fill(0, 0, 32)
    expectInvalid(() => openGossip(TOPIC, zeroR))
  })
})

describe('gossip message id', () => {
  it('is 20 bytes derived from the topic and the data, and gossipsub is set to use it without its own signatures', () => {
    const data = sealGossip(TOPIC, BODY, signer)
    const id = (topic: string, bytes: Uint8Array): string => Buffer.from(gossipMessageId({type: 'unsigned', topic, data: bytes}) as Uint8Array).toString('hex')
    assert.equal(id(TOPIC, data).length, 40)
    assert.equal(id(TOPIC, data), id(TOPIC, Uint8Array.from(data)), 'the same bytes on the same topic are the same message')
    assert.notEqual(id(TOPIC, data), id(topicName('devnet', GossipTopic.commit), data), 'a copy on another topic must not mark the real one as seen')
    assert.notEqual(id(TOPIC, data), id(TOPIC, flipped(data, 0)), 'a forged signature makes another message')
    const options = gossipsubOptions('devnet')
    assert.equal(options.globalSignaturePolicy, StrictNoSign)
    assert.equal(options.msgIdFn, gossipMessageId)
  })
})
