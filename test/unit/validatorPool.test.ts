import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import type {Address} from '../../src/protocols/address.js'
import type {Heartbeat, ServedModel} from '../../src/protocols/messages.js'
import {toModelId, type ModelId} from '../../src/protocols/modelId.js'
import {VerifyExchangeError, type VerifyErrorCode} from '../../src/protocols/verifyService.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {orderValidators, ValidatorPool, type ValidatorView} from '../../src/verify/validatorPool.js'
import type {Claim, Verdict} from '../../src/verify/verifier.js'
import {fakeAddress as addr} from '../support/fakeAddress.js'

const NOW = 1_000_000
const MODEL = toModelId(1)
const CLASS_A = `${'ab'.repeat(32)}/node-llama-cpp-3.21.1/cpu-linux-x64`
const CLASS_B = `${'ab'.repeat(32)}/node-llama-cpp-3.21.1/cuda`

/** One model a validator serves, in a class (A by default). */
function served (id: ModelId, determinismClass = CLASS_A): ServedModel {
  return {id, determinismClass, loaded: true}
}
function validator (address: Address, overrides: Partial<ValidatorView> = {}): ValidatorView {
  return {address, peerId: `peer-${address}`, models: [served(MODEL)], seenAt: NOW - 1_000, ...overrides}
}
const base = {modelId: MODEL, claimClass: CLASS_A, now: NOW, maxHeartbeatAgeMs: 6_000, isAdmitted: () => true, turn: 0}
const addresses = (views: ValidatorView[]): Address[] => views.map(v => v.address)

function heartbeat (address: Address, overrides: Partial<Heartbeat> = {}): Heartbeat {
  return {role: 'validator', address, peerId: `peer-${address}`, addrs: [], models: [served(MODEL)], freeSlots: 1, tokensPerSecond: 0, seq: 1, timestamp: NOW, ...overrides}
}
const claim: Claim = {prompt: 'Once upon a time', params: {maxTokens: 4, temperature: 0, topK: 0, topP: 1}, seed: 0, tokenIds: [1, 2], output: 'ab', determinismClass: CLASS_A, finishReason: 'stop'}
function verdictFrom (address: Address): Verdict {
  return {accepted: true, method: 'teacher-forced', sameClass: true, reason: address, tokens: 2, failures: 0, meanLogProbability: -0.5, ms: 1}
}

/** A pool whose validators answer through `ask`, fed heartbeats at NOW. */
function poolWith (heartbeats: Heartbeat[], ask: (v: ValidatorView) => Promise<Verdict>, isAdmitted: (a: Address) => boolean = () => true): {pool: ValidatorPool, asked: Address[]} {
  const asked: Address[] = []
  const pool = new ValidatorPool({
    ask: async (v) => { asked.push(v.address); return await ask(v) },
    isAdmitted, heartbeatIntervalMs: 2_000, logger: createSilentLogger(), now: () => NOW
  })
  for (const hb of heartbeats) pool.heartbeat(hb)
  return {pool, asked}
}
const failing = (code: VerifyErrorCode) => new VerifyExchangeError({code, reason: 'test'}, `validator failed: ${code}`)

describe('validator selection', () => {
  it('skips validators that are stale, without the model or not admitted', () => {
    const validators = [
      validator(addr(0xa)),
      validator(addr(0xb), {seenAt: NOW - 60_000}),
      validator(addr(0xc), {models: [served(toModelId(2))]}),
      validator(addr(0xd)),
      validator(addr(0xe), {models: []})
    ]
    assert.deepEqual(addresses(orderValidators({...base, validators, isAdmitted: a => a !== addr(0xd)})), [addr(0xa)])
  })

  it('prefers validators of the claim\'s class, then the others', () => {
    const validators = [validator(addr(0xa), {models: [served(MODEL, CLASS_B)]}), validator(addr(0xb)), validator(addr(0xc), {models: [served(MODEL, CLASS_B)]}), validator(addr(0xd))]
    assert.deepEqual(addresses(orderValidators({...base, validators})), [addr(0xb), addr(0xd), addr(0xa), addr(0xc)])
    assert.deepEqual(addresses(orderValidators({...base, validators, claimClass: CLASS_B})), [addr(0xa), addr(0xc), addr(0xb), addr(0xd)])
    assert.deepEqual(addresses(orderValidators({...base, validators, claimClass: 'another/class/x'})), [addr(0xa), addr(0xb), addr(0xc), addr(0xd)], 'no class matches: all are equal')
  })

  it('spreads successive checks round-robin within each group, whatever order heartbeats came in', () => {
    const validators = [validator(addr(0xc)), validator(addr(0xa)), validator(addr(0xb)), validator(addr(0xd), {models: [served(MODEL, CLASS_B)]})]
    const firsts = [0, 1, 2, 3].map(turn => orderValidators({...base, validators, turn})[0]?.address)
    assert.deepEqual(firsts, [addr(0xa), addr(0xb), addr(0xc), addr(0xa)])
    assert.deepEqual(addresses(orderValidators({...base, validators, turn: 1})), [addr(0xb), addr(0xc), addr(0xa), addr(0xd)])
  })

  it('is empty when no validator can take the check', () => {
    assert.deepEqual(orderValidators({...base, validators: []}), [])
  })
})

describe('validator pool', () => {
  it('keeps validators\' heartbeats only', async () => {
    const {pool, asked} = poolWith([heartbeat(addr(0xa), {role: 'miner'}), heartbeat(addr(0xb), {role: 'oracle'}), heartbeat(addr(0xc))], async v => verdictFrom(v.address))
    const verdict = await pool.check(claim, {modelId: MODEL, reexecute: false, partial: false})
    assert.equal(verdict.reason, addr(0xc))
    assert.deepEqual(asked, [addr(0xc)])
  })

  it('asks a validator of the claim\'s class, spreading checks over them', async () => {
    const {pool, asked} = poolWith([heartbeat(addr(0xa), {models: [served(MODEL, CLASS_B)]}), heartbeat(addr(0xb)), heartbeat(addr(0xc))], async v => verdictFrom(v.address))
    for (let i = 0; i < 4; i++) await pool.check(claim, {modelId: MODEL, reexecute: true, partial: false})
    assert.deepEqual(asked, [addr(0xb), addr(0xc), addr(0xb), addr(0xc)])
  })

  it('falls over to the next validator when one is unreachable, refuses or forges', async () => {
    const bad = new Map<Address, VerifyErrorCode>([[addr(0xa), 'VERIFIER_UNREACHABLE'], [addr(0xb), 'VERIFY_REFUSED'], [addr(0xc), 'VERDICT_FORGED']])
    const {pool, asked} = poolWith([0xa, 0xb, 0xc, 0xd].map(n => heartbeat(addr(n))), async v => {
      const code = bad.get(v.address)
      if (code != null) throw failing(code)
      return verdictFrom(v.address)
    })
    const verdict = await pool.check(claim, {modelId: MODEL, reexecute: false, partial: true})
    assert.equal(verdict.reason, addr(0xd))
    assert.deepEqual(asked, [addr(0xa), addr(0xb), addr(0xc), addr(0xd)])
  })

  it('fails NO_VALIDATOR when none is live, admitted and serving the model', async () => {
    const {pool, asked} = poolWith([heartbeat(addr(0xa), {models: [served(toModelId(2))]}), heartbeat(addr(0xb))], async v => verdictFrom(v.address), a => a !== addr(0xb))
    await assert.rejects(pool.check(claim, {modelId: MODEL, reexecute: false, partial: false}), {code: 'NO_VALIDATOR', message: 'no live validator for model 1'})
    assert.deepEqual(asked, [])
  })

  it('counts a validator gone three heartbeat intervals after its last heartbeat', async () => {
    let now = NOW
    const pool = new ValidatorPool({ask: async v => verdictFrom(v.address), isAdmitted: () => true, heartbeatIntervalMs: 2_000, logger: createSilentLogger(), now: () => now})
    pool.heartbeat(heartbeat(addr(0xc)))
    now = NOW + 6_000
    assert.equal((await pool.check(claim, {modelId: MODEL, reexecute: false, partial: false})).reason, addr(0xc))
    now = NOW + 6_001
    await assert.rejects(pool.check(claim, {modelId: MODEL, reexecute: false, partial: false}), {code: 'NO_VALIDATOR'})
  })

  it('fails NO_VALIDATOR once every validator failed, keeping the last failure', async () => {
    const {pool, asked} = poolWith([heartbeat(addr(0xa)), heartbeat(addr(0xb))], async () => { throw failing('VERIFIER_UNREACHABLE') })
    await assert.rejects(pool.check(claim, {modelId: MODEL, reexecute: false, partial: false}), (err: Error & {code?: string}) => {
      assert.equal(err.code, 'NO_VALIDATOR')
      assert.match(err.message, /^no live validator for model 1; 2 failed/)
      assert.ok(err.cause instanceof VerifyExchangeError)
      return true
    })
    assert.deepEqual(asked, [addr(0xa), addr(0xb)])
  })

  it('does not try another validator after an abort or an error that is not the validator\'s', async () => {
    const {pool, asked} = poolWith([heartbeat(addr(0xa)), heartbeat(addr(0xb))], async () => { throw new RangeError('claim too large for the wire') })
    await assert.rejects(pool.check(claim, {modelId: MODEL, reexecute: false, partial: false}), RangeError)
    assert.equal(asked.length, 1)
    const controller = new AbortController()
    const aborting = poolWith([heartbeat(addr(0xa)), heartbeat(addr(0xb))], async () => {
      controller.abort(new Error('oracle stopping'))
      throw failing('VERIFIER_UNREACHABLE')
    })
    await assert.rejects(aborting.pool.check(claim, {modelId: MODEL, reexecute: false, partial: false, signal: controller.signal}), {code: 'VERIFIER_UNREACHABLE'})
    assert.equal(aborting.asked.length, 1)
  })
})
