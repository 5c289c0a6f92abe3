import assert from 'node:assert/strict'
import {after, before, beforeEach, describe, it} from 'node:test'
import {randomBytes, SigningKey} from 'ethers'
import {lpStream} from '@libp2p/utils'
import {multiaddr} from '@multiformats/multiaddr'
import {determinismClass} from '../../src/inference/determinismClass.js'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import {StaticAccessView} from '../../src/protocols/accessView.js'
import type {Address} from '../../src/protocols/address.js'
import {packWire, unpackWire} from '../../src/protocols/codec.js'
import {greedy} from '../../src/protocols/messages.js'
import {toModelId} from '../../src/protocols/modelId.js'
import {addressFromPeerId} from '../../src/protocols/peerAddress.js'
import {claimDigest, verdictDigest, verdictSigner, VerifyService, type VerifyHandler} from '../../src/protocols/verifyService.js'
import {createHost, dialAddresses, type Host} from '../../src/runtime/host.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {SHARED_MODEL_PATH, STORIES_260K, sharedModelAvailable} from '../../src/util/paths.js'
import {Verifier, type Claim} from '../../src/verify/verifier.js'
import {inventedTokens, prng, wordTokens} from '../support/attacks.js'

const NETWORK = 'test'
const MAX_TOKENS = 32
const PROMPT = 'Once upon a time'
const logger = createSilentLogger()

/** A host with its own secp256k1 key: the key its verify service signs with, unless told another. */
async function node (): Promise<{host: Host, key: Uint8Array, address: Address}> {
  const key = randomBytes(32)
  const host = await createHost({privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], logger})
  return {host, key, address: addressFromPeerId(host.libp2p.peerId) as Address}
}

describe('verify service: an oracle asks a validator to check a claim', {skip: !sharedModelAvailable() && 'shared model missing'}, () => {
  const access = new StaticAccessView()
  let validator: Awaited<ReturnType<typeof node>>
  let oracle: Awaited<ReturnType<typeof node>>
  let rogue: Awaited<ReturnType<typeof node>>
  let engine: LlamaEngine
  let verifier: Verifier
  let validatorService: VerifyService
  let rogueService: VerifyService
  let oracleService: VerifyService
  let honest: Claim
  let invented: Claim
  /** What the validator's handler saw, in order. */
  const handled: Array<{oracle: Address, modelId: string, reexecute: boolean, partial: boolean}> = []
  let handlerFails = false

  before(async () => {
    // Real llama.cpp, one thread: the validator holds the F32 model and checks in its own class.
    engine = await LlamaEngine.load({modelPath: SHARED_MODEL_PATH, threads: 1, contextSize: 256, logger})
    verifier = new Verifier(engine, determinismClass(STORIES_260K.sha256, engine.info.gpu))
    const tokens = (await engine.complete({prompt: PROMPT, seed: 0, params: greedy(MAX_TOKENS)})).tokens
    honest = {prompt: PROMPT, params: greedy(MAX_TOKENS), seed: 0, tokenIds: tokens, output: engine.detokenize(tokens), determinismClass: verifier.ownClass, finishReason: tokens.length < MAX_TOKENS ? 'stop' : 'length'}
    const lies = inventedTokens(wordTokens(engine), MAX_TOKENS, prng(7))
    invented = {...honest, tokenIds: lies, output: engine.detokenize(lies)}

    ;[validator, oracle, rogue] = await Promise.all([node(), node(), node()])
    for (const peer of [validator, rogue]) await oracle.host.libp2p.dial(multiaddr(dialAddresses(peer.host)[0] as string))
    const handler: VerifyHandler = async (claim, options, from) => {
      handled.push({oracle: from, modelId: options.modelId, reexecute: options.reexecute, partial: options.partial})
      if (handlerFails) throw new Error('engine busy')
      return await verifier.check(claim, options)
    }
    validatorService = new VerifyService({libp2p: validator.host.libp2p, access, logger, privateKey: validator.key}, {networkId: NETWORK})
    validatorService.serve(handler)
    await validatorService.start()
    // A validator that answers with a key that is not its node key: the protocol's own frames, signed by someone else.
    rogueService = new VerifyService({libp2p: rogue.host.libp2p, access, logger, privateKey: randomBytes(32)}, {networkId: NETWORK})
    rogueService.serve(handler)
    await rogueService.start()
    oracleService = new VerifyService({libp2p: oracle.host.libp2p, access, logger, privateKey: oracle.key}, {networkId: NETWORK})
    await oracleService.start()
  })

  beforeEach(() => {
    handled.length = 0
    handlerFails = false
    access.grant(oracle.address, 'oracle')
  })

  after(async () => {
    await oracleService?.stop()
    await rogueService?.stop()
    await validatorService?.stop()
    await Promise.all([validator, oracle, rogue].map(async n => await n?.host.stop()))
    await engine?.dispose()
  })

  async function check (claim: Claim, options = {modelId: toModelId(1), reexecute: false, partial: false}, peer = validator.host.libp2p.peerId): ReturnType<VerifyService['check']> {
    return await oracleService.check(peer, claim, options, {signal: AbortSignal.timeout(30_000)})
  }

  it('answers an admitted oracle with the verdict of its verifier, signed by the validator', async () => {
    const verdict = await check(honest)
    assert.deepEqual({accepted: verdict.accepted, method: verdict.method, sameClass: verdict.sameClass, reason: verdict.reason, tokens: verdict.tokens, failures: verdict.failures},
      {accepted: true, method: 'teacher-forced', sameClass: true, reason: '', tokens: honest.tokenIds.length, failures: 0})
    assert.deepEqual(handled, [{oracle: oracle.address, modelId: '1', reexecute: false, partial: false}], 'the handler learns the oracle from its connection key, and the task\'s model from the request')

    const audited = await check(honest, {modelId: toModelId(1), reexecute: true, partial: false})
    assert.deepEqual({accepted: audited.accepted, method: audited.method}, {accepted: true, method: 're-execution'})
  })

  it('answers a signed refusal verdict for invented tokens', async () => {
    const verdict = await check(invented)
    assert.equal(verdict.accepted, false)
    assert.equal(verdict.method, 'teacher-forced')
    assert.match(verdict.reason, /not the model's own choice/)
    assert.ok(verdict.failures > 0)
  })

  it('binds the signature to the claim and the verdict', () => {
    const verdict = {accepted: true, method: 'teacher-forced', reason: ''} as const
    const signature = new SigningKey(validator.key).sign(verdictDigest(honest, verdict, false)).serialized
    assert.equal(verdictSigner(honest, verdict, false, signature), validator.address)
    assert.notEqual(verdictSigner(invented, verdict, false, signature), validator.address, 'another claim')
    assert.notEqual(verdictSigner(honest, verdict, true, signature), validator.address, 'a prefix check is not a check of the whole')
    assert.notEqual(verdictSigner(honest, {...verdict, accepted: false}, false, signature), validator.address, 'another judgement')
    assert.notEqual(verdictSigner(honest, {...verdict, method: 're-execution'}, false, signature), validator.address, 'another method')
    assert.notEqual(verdictSigner(honest, {...verdict, reason: 'x'}, false, signature), validator.address, 'another reason')
    assert.notEqual(claimDigest(honest), claimDigest({...honest, seed: 1}))
    assert.equal(verdictSigner(honest, verdict, false, `0x${'00'.repeat(65)}`), null, 'not a signature')
  })

  it('refuses a peer that is not an admitted oracle', async () => {
    access.revoke(oracle.address, 'oracle')
    await assert.rejects(check(honest), {code: 'VERIFY_REFUSED', message: /is not an admitted oracle/})
    assert.equal(handled.length, 0, 'the claim was never checked')
  })

  it('refuses a malformed request without checking it', async () => {
    const stream = await oracle.host.libp2p.dialProtocol(validator.host.libp2p.peerId, validatorService.protocol)
    const lp = lpStream(stream)
    await lp.write(packWire({claim: {...honest, tokenIds: [...honest.tokenIds]}, modelId: '1', reexecute: 'yes', partial: false}))
    const answer = unpackWire((await lp.read({signal: AbortSignal.timeout(10_000)})).subarray()) as {kind: string, reason: string}
    assert.equal(answer.kind, 'refused')
    assert.match(answer.reason, /malformed request: request\.reexecute: expected boolean/)
    assert.equal(handled.length, 0)
  })

  it('refuses when its verifier cannot check', async () => {
    handlerFails = true
    await assert.rejects(check(honest), {code: 'VERIFY_REFUSED', message: /engine busy/})
  })

  it('throws VERDICT_FORGED for a verdict signed by another key than the dialled peer\'s', async () => {
    await assert.rejects(check(honest, {modelId: toModelId(1), reexecute: false, partial: false}, rogue.host.libp2p.peerId), {code: 'VERDICT_FORGED'})
    assert.equal(handled.length, 1, 'the rogue did check, and signed with the wrong key')
  })

  it('throws VERIFIER_UNREACHABLE for a peer that does not serve the protocol', async () => {
    // The other way round: the oracle serves no checks.
    const asking = new VerifyService({libp2p: validator.host.libp2p, access, logger, privateKey: validator.key}, {networkId: NETWORK})
    await assert.rejects(asking.check(oracle.host.libp2p.peerId, honest, {modelId: toModelId(1), reexecute: false, partial: false}), {code: 'VERIFIER_UNREACHABLE'})
  })
})
