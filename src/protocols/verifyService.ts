import type {AbortOptions, Connection, Libp2p, PeerId, Startable, Stream} from '@libp2p/interface'
import {lpStream, type LengthPrefixedStream} from '@libp2p/utils'
import {AbiCoder, keccak256, recoverAddress, SigningKey, toUtf8Bytes} from 'ethers'
import {withCallerSignal} from '../util/abortable.js'
import {CortensorError} from '../util/cortensorError.js'
import type {Logger} from '../util/logger.js'
import {nodeMetrics} from '../util/metrics.js'
import type {Claim, VerificationMethod, Verdict} from '../verify/verifier.js'
import type {AccessView} from './accessView.js'
import {toAddress, type Address} from './address.js'
import {packWire, unpackWire} from './codec.js'
import {FINISH_REASONS, modelIdSchema, samplingParamsSchema} from './messages.js'
import type {ModelId} from './modelId.js'
import {addressFromPeerId} from './peerAddress.js'
import {array, boolean, float, type Infer, nullable, object, oneOf, string, uint} from './schema.js'
import {streamProtocolId} from './topic.js'

/**
 * One stream per check: the oracle writes a request frame (the miner's claim and how to check
 * it), the validator answers one frame, a signed verdict or a refusal, and both close. The
 * bounds are those of the task and the miner result a claim is made of (messages.ts).
 */
const claimSchema = object({
  prompt: string({minLength: 1, maxLength: 100_000}),
  params: samplingParamsSchema,
  seed: uint({max: 0xffff_ffff}),
  tokenIds: array(uint({max: 1 << 24}), {maxLength: 1 << 16}),
  output: string({maxLength: 200_000}),
  determinismClass: string({minLength: 1, maxLength: 160}),
  finishReason: oneOf(FINISH_REASONS)
})
/** `modelId`: the task's model; the validator checks the claim on that model (a claim naming another model's file fails). */
const requestSchema = object({claim: claimSchema, modelId: modelIdSchema, reexecute: boolean(), partial: boolean()})

/** Every method a verdict may name, from verifier.ts's union (a new one fails to compile here). */
const METHODS: {[K in VerificationMethod]: K} = {'teacher-forced': 'teacher-forced', 're-execution': 're-execution', none: 'none'}
const MAX_REASON_CHARS = 1_000
/** A mean ln p below this (a token the model gives no probability at all) is sent as this. */
const MIN_MEAN_LOG_PROBABILITY = -1e9
const verdictSchema = object({
  accepted: boolean(),
  method: oneOf(Object.values(METHODS)),
  sameClass: boolean(),
  reason: string({maxLength: MAX_REASON_CHARS}),
  tokens: uint({max: 1 << 16}),
  /** Scored tokens that broke a rule: the claim's, plus its end token. */
  failures: uint({max: (1 << 16) + 1}),
  meanLogProbability: nullable(float({min: MIN_MEAN_LOG_PROBABILITY, max: 0})),
  ms: float({min: 0, max: 86_400_000})
})
/** A 65-byte secp256k1 signature (r, s, v), as ethers serializes it. */
const signatureSchema = string({minLength: 132, maxLength: 132, pattern: /^0x[0-9a-fA-F]{130}$/})
const verdictFrameSchema = object({kind: oneOf(['verdict'] as const), verdict: verdictSchema, signature: signatureSchema})
/** The validator would not check: the oracle is not admitted, the request is malformed, its model is not loaded. */
const refusedFrameSchema = object({kind: oneOf(['refused'] as const), reason: string({maxLength: MAX_REASON_CHARS})})

type VerifyRequest = Infer<typeof requestSchema>

/** Domain tags: a verdict signature can never be mistaken for a signature over anything else. */
const CLAIM_DOMAIN = 'cortensor/verify/claim/1'
const VERDICT_DOMAIN = 'cortensor/verify/verdict/1'

export const VERIFY_SERVICE_DEFAULTS = {
  /** A request holds the prompt, the output text and its token ids (~1.6 MB at the schema's bounds). */
  maxFrameBytes: 2 * 1024 * 1024,
  /** How long opening a stream (dial + protocol negotiation) may take, and a validator waits for the request. */
  openTimeoutMs: 10_000,
  /** How long one whole check may take: a re-execution audit runs a full inference. */
  exchangeTimeoutMs: 60_000,
  /** Checks one oracle may have open to a validator at once (per connection). */
  maxInboundStreams: 64,
  /** Checks this node may have open to one validator at once. */
  maxOutboundStreams: 64
} as const

export type VerifyServiceOptions = {-readonly [K in keyof typeof VERIFY_SERVICE_DEFAULTS]: number}
export type VerifyServiceInit = {networkId: string} & Partial<VerifyServiceOptions>

export interface VerifyServiceComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  access: AccessView
  logger: Logger
  /** The node's 32-byte secp256k1 key (its libp2p identity): a validator signs its verdicts with it. */
  privateKey: Uint8Array
}

export type VerifyErrorCode = 'VERIFY_REFUSED' | 'VERIFIER_UNREACHABLE' | 'VERDICT_FORGED'

export class VerifyExchangeError extends CortensorError<{code: VerifyErrorCode, reason: string}> {}

/** How a claim is to be checked (`Verifier.check`'s options). */
export interface VerifyOptions {
  /** The task's model. */
  modelId: ModelId
  /** An audit: a validator of the miner's class runs the task again. */
  reexecute: boolean
  /** A streamed prefix: the output need not have ended. */
  partial: boolean
}

/**
 * The validator's side: checks one claim for an admitted oracle. `signal` aborts when the
 * oracle hangs up, the exchange runs out of time, or the service stops. Throwing refuses the
 * request (the reason goes back to the oracle).
 */
export type VerifyHandler = (claim: Claim, options: VerifyOptions & {signal: AbortSignal}, oracle: Address) => Promise<Verdict>

/** The claim's fields in a fixed order, as canonical JSON: what a verdict is bound to. */
export function claimDigest (claim: Claim): string {
  const {prompt, params, seed, tokenIds, output, determinismClass, finishReason} = claim
  return keccak256(toUtf8Bytes(JSON.stringify([CLAIM_DOMAIN, prompt, [params.maxTokens, params.temperature, params.topK, params.topP], seed, tokenIds, output, determinismClass, finishReason])))
}

/**
 * What a validator signs: the claim it checked, whether as a whole or as a streamed prefix, and
 * what it found (the figures beside are informative).
 */
export function verdictDigest (claim: Claim, verdict: Pick<Verdict, 'accepted' | 'method' | 'reason'>, partial: boolean): string {
  return keccak256(AbiCoder.defaultAbiCoder().encode(
    ['string', 'bytes32', 'bool', 'bool', 'string', 'string'],
    [VERDICT_DOMAIN, claimDigest(claim), partial, verdict.accepted, verdict.method, verdict.reason]))
}

/** The signer of a verdict, or null when the signature is not one. */
export function verdictSigner (claim: Claim, verdict: Pick<Verdict, 'accepted' | 'method' | 'reason'>, partial: boolean, signature: string): Address | null {
  try {
    return toAddress(recoverAddress(verdictDigest(claim, verdict, partial), signature))
  } catch {
    return null
  }
}

async function readFrame (lp: LengthPrefixedStream, signal: AbortSignal): Promise<unknown> {
  return unpackWire((await lp.read({signal})).subarray())
}

/** The verdict as it can travel: a bounded reason (cut on a character), a finite mean. */
function wireVerdict (verdict: Verdict): Verdict {
  const mean = verdict.meanLogProbability
  return {
    ...verdict,
    reason: verdict.reason.length <= MAX_REASON_CHARS ? verdict.reason : verdict.reason.slice(0, MAX_REASON_CHARS).replace(/[\uD800-\uDBFF]$/, ''),
    meanLogProbability: mean == null || Number.isNaN(mean) ? null : Math.min(0, Math.max(MIN_MEAN_LOG_PROBABILITY, mean)),
    ms: Math.min(86_400_000, Math.max(0, verdict.ms))
  }
}

/**
 * The verify protocol, as a libp2p-style service: an oracle `check`s a miner's claim with a
 * validator; a validator `serve`s admitted oracles, checks the claim on its model and answers
 * a verdict signed with its node key, so an oracle can show anyone which validator said what.
 */
export class VerifyService implements Startable {
  readonly protocol: string
  private readonly components: VerifyServiceComponents
  private readonly options: VerifyServiceOptions
  private readonly signingKey: SigningKey
  private handler: VerifyHandler | undefined
  private stopping = new AbortController()
  private started = false

  constructor (components: VerifyServiceComponents, init: VerifyServiceInit) {
    this.components = components
    const {networkId, ...options} = init
    this.options = {...VERIFY_SERVICE_DEFAULTS, ...options}
    this.protocol = streamProtocolId(networkId, 'verify')
    this.signingKey = new SigningKey(components.privateKey)
  }

  /** Check claims for oracles (the validator role); call before `start`. */
  serve (handler: VerifyHandler): void {
    this.handler = handler
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.stopping = new AbortController()
    if (this.handler == null) return
    const handler = this.handler
    await this.components.libp2p.handle(this.protocol, async (stream: Stream, connection: Connection) => {
      await this.onStream(handler, stream, connection)
    }, {maxInboundStreams: this.options.maxInboundStreams, runOnLimitedConnection: false})
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.stopping.abort(new Error('the verify service stopped'))
    if (this.handler != null) await this.components.libp2p.unhandle(this.protocol)
  }

  /**
   * Asks the validator at `peer` to check `claim`; resolves with its verdict once its signature
   * proves that peer signed it. Throws VerifyExchangeError: VERIFIER_UNREACHABLE (no answer),
   * VERIFY_REFUSED (it would not check), VERDICT_FORGED (signed by another key); SchemaError
   * for a claim the protocol cannot carry (no validator could take it).
   */
  async check (peer: PeerId, claim: Claim, options: VerifyOptions, abort: AbortOptions = {}): Promise<Verdict> {
    const {maxFrameBytes, openTimeoutMs, exchangeTimeoutMs, maxOutboundStreams} = this.options
    const who = `validator ${peer.toString()}`
    const packed = packWire(requestSchema.parse({claim: {...claim, tokenIds: [...claim.tokenIds]}, modelId: options.modelId, reexecute: options.reexecute, partial: options.partial}, 'request'))
    // The claim as the validator will read it (a string msgpack cannot carry exactly comes out
    // changed): the signature is checked over what it signed.
    const sent = requestSchema.parse(unpackWire(packed), 'request').claim
    let stream: Stream
    try {
      stream = await this.components.libp2p.dialProtocol(peer, this.protocol, {signal: withCallerSignal(AbortSignal.timeout(openTimeoutMs), abort.signal), maxOutboundStreams})
    } catch (err) {
      throw new VerifyExchangeError({code: 'VERIFIER_UNREACHABLE', reason: (err as Error).message}, `cannot reach ${who}: ${(err as Error).message}`, {cause: err})
    }
    keepAliveFor(stream, exchangeTimeoutMs)
    const signal = withCallerSignal(AbortSignal.timeout(exchangeTimeoutMs), abort.signal)
    const lp = lpStream(stream, {maxDataLength: maxFrameBytes})
    let frame: unknown
    try {
      await lp.write(packed, {signal})
      frame = await readFrame(lp, signal)
    } catch (err) {
      stream.abort(err as Error)
      throw new VerifyExchangeError({code: 'VERIFIER_UNREACHABLE', reason: (err as Error).message}, `${who} did not answer: ${(err as Error).message}`, {cause: err})
    }
    await stream.close({signal}).catch(() => {})
    let answer
    try {
      if ((frame as {kind?: unknown} | null)?.kind === 'refused') {
        const {reason} = refusedFrameSchema.parse(frame, 'refused')
        throw new VerifyExchangeError({code: 'VERIFY_REFUSED', reason}, `${who} refused the check: ${reason}`)
      }
      answer = verdictFrameSchema.parse(frame, 'verdict')
    } catch (err) {
      if (err instanceof VerifyExchangeError) throw err
      throw new VerifyExchangeError({code: 'VERIFIER_UNREACHABLE', reason: (err as Error).message}, `${who} answered a malformed frame: ${(err as Error).message}`, {cause: err})
    }
    const expected = addressFromPeerId(peer)
    const signer = verdictSigner(sent, answer.verdict, options.partial, answer.signature)
    if (expected == null || signer !== expected) {
      const reason = `verdict signed by ${signer ?? 'nobody'}, not by ${expected ?? 'a secp256k1 key'}`
      throw new VerifyExchangeError({code: 'VERDICT_FORGED', reason}, `${who}: ${reason}`)
    }
    return answer.verdict
  }

  private async onStream (handler: VerifyHandler, stream: Stream, connection: Connection): Promise<void> {
    const {access, logger} = this.components
    const {maxFrameBytes, openTimeoutMs, exchangeTimeoutMs} = this.options
    keepAliveFor(stream, exchangeTimeoutMs)
    const lp = lpStream(stream, {maxDataLength: maxFrameBytes})
    const peer = connection.remotePeer.toString()
    // The oracle's address comes from the authenticated connection's peer key.
    const oracle = addressFromPeerId(connection.remotePeer)
    // Before the answer the stream closes only when the oracle gives up: the check stops too.
    const hangUp = new AbortController()
    stream.addEventListener('close', () => { hangUp.abort(new Error('the oracle hung up')) }, {once: true})
    const signal = AbortSignal.any([AbortSignal.timeout(exchangeTimeoutMs), this.stopping.signal, hangUp.signal])
    const answer = async (frame: Uint8Array): Promise<void> => {
      await lp.write(frame, {signal})
      await stream.close({signal})
    }
    const refuse = async (reason: string): Promise<void> => {
      logger.info({peer, oracle, reason}, 'verification request refused')
      await answer(packWire(refusedFrameSchema.parse({kind: 'refused', reason: reason.slice(0, MAX_REASON_CHARS).replace(/[\uD800-\uDBFF]$/, '')}, 'refused')))
    }
    try {
      if (oracle == null || !access.roleAllowed(oracle, 'oracle')) {
        await refuse(`${oracle ?? peer} is not an admitted oracle`)
        return
      }
      let request: VerifyRequest
      try {
        request = requestSchema.parse(await readFrame(lp, AbortSignal.any([AbortSignal.timeout(openTimeoutMs), signal])), 'request')
      } catch (err) {
        if (err instanceof CortensorError) {
          await refuse(`malformed request: ${err.message}`)
          return
        }
        throw err
      }
      const {claim, modelId, reexecute, partial} = request
      let verdict: Verdict
      try {
        verdict = wireVerdict(await handler(claim, {modelId, reexecute, partial, signal}, oracle))
        // A validator's verdicts on whole outputs (a streamed prefix's check is not one).
        if (!partial) nodeMetrics.verificationVerdicts.inc({verdict: verdict.accepted ? 'accepted' : 'rejected'})
      } catch (err) {
        if (signal.aborted) throw err
        await refuse(`cannot check: ${(err as Error).message}`)
        return
      }
      const signature = this.signingKey.sign(verdictDigest(claim, verdict, partial)).serialized
      await answer(packWire(verdictFrameSchema.parse({kind: 'verdict', verdict, signature}, 'verdict')))
    } catch (err) {
      logger.debug({err, peer}, 'verify stream ended early')
      stream.abort(err as Error)
    }
  }
}

/** A check may compute for its whole time without a byte on the stream: the muxer must not drop it as idle. */
function keepAliveFor (stream: Stream, exchangeTimeoutMs: number): void {
  const needed = exchangeTimeoutMs + 5_000
  if (stream.inactivityTimeout > 0 && stream.inactivityTimeout < needed) stream.inactivityTimeout = needed
}
