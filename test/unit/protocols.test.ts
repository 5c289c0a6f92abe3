import type {Message} from '@libp2p/gossipsub'
import {getAddress} from 'ethers'
import {Packr} from 'msgpackr'
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {commitmentFor} from '../../src/chain/commitment.js'
import {StaticAccessView} from '../../src/protocols/accessView.js'
import type {Address} from '../../src/protocols/address.js'
import {CodecError, decodeGossip, encodeGossip} from '../../src/protocols/codec.js'
import {MAX_MESSAGE_BYTES} from '../../src/protocols/constants.js'
import {gossipSigner, sealGossip} from '../../src/protocols/gossipEnvelope.js'
import {GossipAction, GossipValidationError, GossipValidator, HEARTBEAT_MAX_AGE_MS, MAX_CLOCK_SKEW_MS} from '../../src/protocols/gossipValidation.js'
import {type GossipPayload, outputHashOf} from '../../src/protocols/messages.js'
import {toModelId} from '../../src/protocols/modelId.js'
import {GOSSIP_TOPICS, GossipTopic, parseTopicName, topicName} from '../../src/protocols/topic.js'
import {type NodeKey, nodeKeyFromPrivateKey} from '../../src/runtime/keys.js'

const NOW = 1_750_000_000_000
const oracle = nodeKeyFromPrivateKey('0x' + '11'.repeat(32))
const miner = nodeKeyFromPrivateKey('0x' + '22'.repeat(32))
const miner2 = nodeKeyFromPrivateKey('0x' + '33'.repeat(32))
const stranger = nodeKeyFromPrivateKey('0x' + '44'.repeat(32))
const OUTPUT = 'Once upon a time there was a little robot.'
const SALT = '0x' + 'cd'.repeat(32)

/** One valid message per topic, from the node that may publish it. */
const SAMPLES: {[K in GossipTopic]: {signer: NodeKey, payload: GossipPayload[K]}} = {
  [GossipTopic.heartbeat]: {
    signer: miner,
    payload: {
      role: 'miner',
      address: miner.address,
      peerId: miner.peerId.toString(),
      addrs: ['/ip4/127.0.0.1/tcp/4001'],
      models: [{id: toModelId(1), determinismClass: 'llama.cpp-b6000/cpu-x64', loaded: true}, {id: toModelId(2), determinismClass: '', loaded: false}],
      freeSlots: 2,
      tokensPerSecond: 812.5,
      seq: NOW - 60_000,
      timestamp: NOW
    }
  },
  [GossipTopic.oracleHeartbeat]: {
    signer: oracle,
    payload: {
      role: 'oracle',
      address: oracle.address,
      peerId: oracle.peerId.toString(),
      addrs: ['/ip4/127.0.0.1/tcp/4002'],
      models: [],
      freeSlots: 0,
      tokensPerSecond: 0,
      seq: NOW - 60_000,
      timestamp: NOW,
      heard: [miner.address],
      verdicts: [{taskId: '41', miner: miner2.address, verdict: 'rejected', reason: 'token 3 scored below the floor'}]
    }
  },
  [GossipTopic.task]: {
    signer: oracle,
    payload: {
      taskId: '42',
      modelId: toModelId(1),
      prompt: 'Tell me a story',
      params: {maxTokens: 64, temperature: 0, topK: 1, topP: 1},
      seed: 42,
      mode: 'parallel',
      k: 2,
      assignees: [miner.address, miner2.address],
      precommitDeadline: NOW + 30_000,
      deadline: NOW + 60_000,
      oracle: oracle.address,
      createdAt: NOW
    }
  },
  [GossipTopic.precommit]: {
    signer: miner,
    payload: {taskId: '42', miner: miner.address, commitment: '0x' + 'ab'.repeat(32), timestamp: NOW}
  },
  [GossipTopic.commit]: {
    signer: miner,
    payload: {
      result: {
        taskId: '42',
        miner: miner.address,
        output: OUTPUT,
        salt: SALT,
        outputHash: outputHashOf(OUTPUT),
        commitment: commitmentFor(42n, miner.address, outputHashOf(OUTPUT), SALT),
        tokenIds: [5, 17, 301],
        finishReason: 'stop',
        determinismClass: `${'ab'.repeat(32)}/node-llama-cpp-3.21.1/cpu-linux-x64`,
        timings: {promptMs: 1.5, generateMs: 20.25}
      },
      timestamp: NOW
    }
  }
}

/** What gossipsub hands a topic validator: `body` sealed by `signer` for `topic` on `networkId`. */
function gossipMessage (topic: GossipTopic, body: Uint8Array, signer: NodeKey, networkId = 'devnet'): Message {
  const name = topicName(networkId, topic)
  return {type: 'unsigned', topic: name, data: sealGossip(name, body, gossipSigner(signer.privateKey))}
}

function newValidator (): GossipValidator {
  const access = new StaticAccessView([[oracle.address, 'oracle'], [miner.address, 'miner'], [miner2.address, 'miner']])
  return new GossipValidator({access, now: () => NOW})
}

function expectVerdict (fn: () => unknown, action: GossipAction, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof GossipValidationError, `expected GossipValidationError, got ${String(err)}`)
    assert.equal(err.action, action)
    assert.equal(err.code, code)
    return true
  })
}

/** Validates `payload` on `topic` as signed by `signer`, with a fresh validator unless given. */
function validate<T extends GossipTopic> (topic: T, payload: GossipPayload[T], signer: NodeKey, validator = newValidator()): unknown {
  return validator.validate(topic, gossipMessage(topic, encodeGossip(topic, payload), signer))
}

describe('topics', () => {
  it('builds and parses /cortensor/<networkId>/<topic>/<version> for every topic', () => {
    // Every topic moved up one when the signature moved into the data.
    const versions: {[K in GossipTopic]: number} = {heartbeat: 4, 'oracle-heartbeat': 2, task: 3, precommit: 2, commit: 4}
    for (const topic of GOSSIP_TOPICS) {
      const name = topicName('devnet-1', topic)
      assert.equal(name, `/cortensor/devnet-1/${topic}/${versions[topic]}`)
      assert.deepEqual(parseTopicName(name), {networkId: 'devnet-1', topic, version: versions[topic]})
    }
    assert.equal(parseTopicName('/cortensor/devnet/task/99'), null)
    assert.equal(parseTopicName('/cortensor/devnet/commit/3'), null, 'the commit signed by gossipsub is not spoken')
    assert.equal(parseTopicName('/eth2/abc/beacon_block/ssz'), null)
    assert.throws(() => topicName('bad/id', GossipTopic.task))
  })
})

describe('codec', () => {
  for (const topic of GOSSIP_TOPICS) {
    it(`round-trips a ${topic} message, byte-identically on re-encode`, () => {
      const bytes = encodeGossip(topic, SAMPLES[topic].payload)
      const decoded = decodeGossip(topic, bytes)
      assert.deepEqual(decoded, SAMPLES[topic].payload)
      // Compared as bytes: msgpackr caches a DataView on a buffer it decoded.
      assert.ok(Buffer.from(encodeGossip(topic, decoded)).equals(Buffer.from(bytes)))
    })
  }

  const raw = new Packr({useRecords: false})
  const codeOf = (topic: GossipTopic, bytes: Uint8Array): string => {
    try {
      decodeGossip(topic, bytes)
    } catch (err) {
      assert.ok(err instanceof CodecError)
      return err.code
    }
    return 'decoded'
  }

  it('rejects oversized bytes before unpacking, undecodable bytes, and trailing garbage', () => {
    assert.equal(codeOf(GossipTopic.precommit, new Uint8Array(MAX_MESSAGE_BYTES.precommit + 1)), 'MESSAGE_TOO_LARGE')
    assert.equal(codeOf(GossipTopic.task, Uint8Array.from([0xd9])), 'MESSAGE_UNDECODABLE')
    assert.equal(codeOf(GossipTopic.task, Uint8Array.from([0xdd, 0xff, 0xff])), 'MESSAGE_UNDECODABLE')
    const good = encodeGossip(GossipTopic.precommit, SAMPLES.precommit.payload)
    assert.equal(codeOf(GossipTopic.precommit, Uint8Array.from([...good, 0x00])), 'MESSAGE_UNDECODABLE')
  })

  it('rejects schema-invalid values: wrong type, missing or extra field, bad hex, bigint, Date', () => {
    const p = SAMPLES.precommit.payload
    const cases: unknown[] = [
      'a string',
      [p],
      {...p, timestamp: '1'},
      {...p, extra: 1},
      {taskId: p.taskId, miner: p.miner, commitment: p.commitment},
      {...p, commitment: '0x1234'},
      {...p, taskId: '042'},
      {...p, timestamp: -1},
      {...p, timestamp: 2n ** 60n},
      {...p, timestamp: new Date(NOW)},
      // JSON.parse makes `__proto__` an own key, as a hostile encoder would send it.
      {...JSON.parse('{"__proto__": {"polluted": true}}'), ...p}
    ]
    for (const value of cases) {
      assert.equal(codeOf(GossipTopic.precommit, raw.pack(value)), 'MESSAGE_SCHEMA_INVALID', JSON.stringify(value, (_k, v: unknown) => typeof v === 'bigint' ? String(v) : v))
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  })

  it('an oracle heartbeat\'s hearing is bounded: a verdict reason over 200 chars, an unknown verdict, a heartbeat without `heard`', () => {
    const hb = SAMPLES[GossipTopic.oracleHeartbeat].payload
    const verdict = hb.verdicts[0]!
    const {heard: _heard, ...withoutHeard} = hb
    for (const value of [{...hb, verdicts: [{...verdict, reason: 'r'.repeat(201)}]}, {...hb, verdicts: [{...verdict, verdict: 'slow'}]}, withoutHeard]) {
      assert.equal(codeOf(GossipTopic.oracleHeartbeat, raw.pack(value)), 'MESSAGE_SCHEMA_INVALID', JSON.stringify(value).slice(0, 200))
    }
  })

  it('refuses to encode a payload that breaks its schema or the size limit', () => {
    assert.throws(() => encodeGossip(GossipTopic.precommit, {...SAMPLES.precommit.payload, miner: 'me' as Address}), CodecError)
    const huge = 'x'.repeat(100_000)
    assert.throws(() => encodeGossip(GossipTopic.commit, {...SAMPLES.commit.payload, result: {...SAMPLES.commit.payload.result, output: huge + huge + huge}}), CodecError)
  })
})

describe('gossip validation', () => {
  for (const topic of GOSSIP_TOPICS) {
    it(`accepts a valid ${topic} from an admitted signer and reports its address`, () => {
      const {signer, payload} = SAMPLES[topic]
      const result = newValidator().validate(topic, gossipMessage(topic, encodeGossip(topic, payload), signer)) as {address: Address}
      assert.equal(result.address, signer.address)
    })

    it(`REJECTs a ${topic} signed by an unregistered key, and bytes that do not decode`, () => {
      expectVerdict(() => validate(topic, SAMPLES[topic].payload, stranger), GossipAction.REJECT, 'SIGNER_NOT_ALLOWED')
      const signer = SAMPLES[topic].signer
      expectVerdict(() => newValidator().validate(topic, gossipMessage(topic, Uint8Array.from([0xc1, 0x00]), signer)), GossipAction.REJECT, 'MESSAGE_UNDECODABLE')
      expectVerdict(() => newValidator().validate(topic, gossipMessage(topic, new Uint8Array(MAX_MESSAGE_BYTES[topic] + 1), signer)), GossipAction.REJECT, 'MESSAGE_TOO_LARGE')
      expectVerdict(() => newValidator().validate(topic, gossipMessage(topic, new Packr().pack({hello: 'world'}), signer)), GossipAction.REJECT, 'MESSAGE_SCHEMA_INVALID')
    })
  }

  it('accepts an address in any letter case on the wire and hands it on in its one form', () => {
    // A peer may send the EIP-55 checksummed form; decoding normalises it, so the signer check and every map key agree.
    const checksummed = getAddress(miner.address) as Address
    assert.notEqual(checksummed, miner.address)
    const result = newValidator().validate(GossipTopic.precommit, gossipMessage(GossipTopic.precommit, encodeGossip(GossipTopic.precommit, {...SAMPLES.precommit.payload, miner: checksummed}), miner)) as {payload: {miner: Address}}
    assert.equal(result.payload.miner, miner.address)
  })

  it('REJECTs an envelope whose signature is cut short or recovers no key', () => {
    const {signer, payload} = SAMPLES.precommit
    const {data} = gossipMessage(GossipTopic.precommit, encodeGossip(GossipTopic.precommit, payload), signer)
    const received = (bytes: Uint8Array): Message => ({type: 'unsigned', topic: topicName('devnet', GossipTopic.precommit), data: bytes})
    expectVerdict(() => newValidator().validate(GossipTopic.precommit, received(data.subarray(0, 64))), GossipAction.REJECT, 'SIGNATURE_INVALID')
    expectVerdict(() => newValidator().validate(GossipTopic.precommit, received(new Uint8Array(0))), GossipAction.REJECT, 'SIGNATURE_INVALID')
    const zeroR = Uint8Array.from(data)
    zeroR.fill(0, 0, 32)
    expectVerdict(() => newValidator().validate(GossipTopic.precommit, received(zeroR)), GossipAction.REJECT, 'SIGNATURE_INVALID')
  })

  it('REJECTs a tampered body and a message signed for another topic or network: the key it recovers is nobody\'s', () => {
    const {signer, payload} = SAMPLES.precommit
    const body = encodeGossip(GossipTopic.precommit, payload)
    const tampered = gossipMessage(GossipTopic.precommit, body, signer)
    const last = tampered.data.byteLength - 1
    tampered.data[last] = tampered.data[last]! ^ 1
    expectVerdict(() => newValidator().validate(GossipTopic.precommit, tampered), GossipAction.REJECT, 'SIGNER_NOT_ALLOWED')
    // Signed for network devnet-2, received on devnet: same topic, same body.
    const otherNetwork = gossipMessage(GossipTopic.precommit, body, signer, 'devnet-2')
    expectVerdict(() => newValidator().validate(GossipTopic.precommit, {...otherNetwork, topic: topicName('devnet', GossipTopic.precommit)}), GossipAction.REJECT, 'SIGNER_NOT_ALLOWED')
    // A valid commit's bytes replayed on the precommit topic.
    const commit = gossipMessage(GossipTopic.commit, encodeGossip(GossipTopic.commit, SAMPLES.commit.payload), signer)
    expectVerdict(() => newValidator().validate(GossipTopic.precommit, {...commit, topic: topicName('devnet', GossipTopic.precommit)}), GossipAction.REJECT, 'SIGNER_NOT_ALLOWED')
  })

  it('REJECTs a role publishing on a topic that is not its own (miner → task, oracle → commit)', () => {
    expectVerdict(() => validate(GossipTopic.task, {...SAMPLES.task.payload, oracle: miner.address}, miner), GossipAction.REJECT, 'SIGNER_NOT_ALLOWED')
    expectVerdict(() => validate(GossipTopic.commit, {...SAMPLES.commit.payload, result: {...SAMPLES.commit.payload.result, miner: oracle.address}}, oracle), GossipAction.REJECT, 'SIGNER_NOT_ALLOWED')
  })

  it('REJECTs impersonation: the payload names another node than the signer', () => {
    expectVerdict(() => validate(GossipTopic.precommit, SAMPLES.precommit.payload, miner2), GossipAction.REJECT, 'SIGNER_MISMATCH')
    expectVerdict(() => validate(GossipTopic.commit, SAMPLES.commit.payload, miner2), GossipAction.REJECT, 'SIGNER_MISMATCH')
    expectVerdict(() => validate(GossipTopic.heartbeat, SAMPLES.heartbeat.payload, miner2), GossipAction.REJECT, 'SIGNER_MISMATCH')
    expectVerdict(() => validate(GossipTopic.heartbeat, {...SAMPLES.heartbeat.payload, peerId: miner2.peerId.toString()}, miner), GossipAction.REJECT, 'PEER_ID_MISMATCH')
    expectVerdict(() => validate(GossipTopic.heartbeat, {...SAMPLES.heartbeat.payload, role: 'oracle'}, miner), GossipAction.REJECT, 'SIGNER_NOT_ALLOWED')
  })

  it('REJECTs inconsistent tasks and commits whose hash is not their output\'s', () => {
    const task = SAMPLES.task.payload
    expectVerdict(() => validate(GossipTopic.task, {...task, k: 3}, oracle), GossipAction.REJECT, 'TASK_ASSIGNEES_INVALID')
    expectVerdict(() => validate(GossipTopic.task, {...task, assignees: [miner.address, miner.address]}, oracle), GossipAction.REJECT, 'TASK_ASSIGNEES_INVALID')
    expectVerdict(() => validate(GossipTopic.task, {...task, mode: 'competing'}, oracle), GossipAction.REJECT, 'TASK_ASSIGNEES_INVALID')
    validate(GossipTopic.task, {...task, mode: 'competing', assignees: []}, oracle)
    expectVerdict(() => validate(GossipTopic.task, {...task, deadline: task.createdAt}, oracle), GossipAction.REJECT, 'TASK_DEADLINE_INVALID')
    expectVerdict(() => validate(GossipTopic.task, {...task, precommitDeadline: task.deadline}, oracle), GossipAction.REJECT, 'TASK_DEADLINE_INVALID')
    expectVerdict(() => validate(GossipTopic.commit, {...SAMPLES.commit.payload, result: {...SAMPLES.commit.payload.result, output: 'something else'}}, miner), GossipAction.REJECT, 'OUTPUT_HASH_MISMATCH')
  })

  it('IGNOREs stale and future messages', () => {
    const hb = SAMPLES.heartbeat.payload
    expectVerdict(() => validate(GossipTopic.heartbeat, {...hb, timestamp: NOW - HEARTBEAT_MAX_AGE_MS - 1}, miner), GossipAction.IGNORE, 'STALE')
    expectVerdict(() => validate(GossipTopic.heartbeat, {...hb, timestamp: NOW + MAX_CLOCK_SKEW_MS + 1}, miner), GossipAction.IGNORE, 'FUTURE')
    expectVerdict(() => validate(GossipTopic.task, {...SAMPLES.task.payload, createdAt: NOW - 120_000, precommitDeadline: NOW - 60_000, deadline: NOW - 1}, oracle), GossipAction.IGNORE, 'STALE')
    expectVerdict(() => validate(GossipTopic.task, {...SAMPLES.task.payload, createdAt: NOW + 10_000, precommitDeadline: NOW + 40_000, deadline: NOW + 70_000}, oracle), GossipAction.IGNORE, 'FUTURE')
    expectVerdict(() => validate(GossipTopic.precommit, {...SAMPLES.precommit.payload, timestamp: 0}, miner), GossipAction.IGNORE, 'STALE')
  })

  it('IGNOREs duplicates: same task, same miner result, replayed heartbeat seq', () => {
    for (const topic of GOSSIP_TOPICS) {
      const validator = newValidator()
      const {signer, payload} = SAMPLES[topic]
      validate(topic, payload, signer, validator)
      expectVerdict(() => validate(topic, payload, signer, validator), GossipAction.IGNORE, 'DUPLICATE')
    }
    const validator = newValidator()
    validate(GossipTopic.precommit, SAMPLES.precommit.payload, miner, validator)
    // Another miner's precommit for the same task is not a duplicate.
    validate(GossipTopic.precommit, {...SAMPLES.precommit.payload, miner: miner2.address}, miner2, validator)
    validate(GossipTopic.heartbeat, {...SAMPLES.heartbeat.payload, seq: SAMPLES.heartbeat.payload.seq + 1}, miner, validator)
  })

  it('passes a reassigned task (same id, new assignee) that a duplicate check would have dropped', () => {
    const validator = newValidator()
    const task = SAMPLES.task.payload
    validate(GossipTopic.task, task, oracle, validator)
    const reassigned = {...task, assignees: [miner.address, stranger.address]}
    validate(GossipTopic.task, reassigned, oracle, validator)
    expectVerdict(() => validate(GossipTopic.task, reassigned, oracle, validator), GossipAction.IGNORE, 'DUPLICATE')
  })

  it('an invalid copy does not mark the real message as seen', () => {
    const validator = newValidator()
    expectVerdict(() => validate(GossipTopic.precommit, SAMPLES.precommit.payload, miner2, validator), GossipAction.REJECT, 'SIGNER_MISMATCH')
    validate(GossipTopic.precommit, SAMPLES.precommit.payload, miner, validator)
  })
})
