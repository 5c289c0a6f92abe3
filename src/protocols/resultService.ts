import type {AbortOptions, Connection, Libp2p, PeerId, Startable, Stream} from '@libp2p/interface'
import {lpStream, type LengthPrefixedStream} from '@libp2p/utils'
import {withCallerSignal} from '../util/abortable.js'
import {CortensorError} from '../util/cortensorError.js'
import type {Logger} from '../util/logger.js'
import type {AccessView} from './accessView.js'
import type {Address} from './address.js'
import {packWire, unpackWire} from './codec.js'
import {minerResultSchema, taskId, type MinerResult} from './messages.js'
import {addressFromPeerId} from './peerAddress.js'
import {array, object, oneOf, string, uint} from './schema.js'
import {streamProtocolId} from './topic.js'

/**
 * One stream per task and miner: `open` names the task, `token` frames carry the text as it is
 * generated, `result` closes it; the oracle answers with an ack. The oracle tells the miner to
 * stop (the client went away) with a `cancel` frame. A stream that merely breaks (the oracle
 * crashed, the connection dropped) is not a cancel: the miner finishes the work, which the
 * chain still pays.
 */
const openFrameSchema = object({kind: oneOf(['open'] as const), taskId})
const tokenFrameSchema = object({kind: oneOf(['token'] as const), text: string({maxLength: 16_384}), tokens: array(uint({max: 1 << 24}), {minLength: 1, maxLength: 1_024})})
const resultFrameSchema = object({kind: oneOf(['result'] as const), result: minerResultSchema})
const cancelFrameSchema = object({kind: oneOf(['cancel'] as const), reason: string({maxLength: 1_000})})
const ackSchema = object({status: oneOf(['accepted', 'refused'] as const), reason: string({maxLength: 1_000})})
/** How long the oracle waits for its cancel frame to leave before it drops the stream. */
const CANCEL_WRITE_TIMEOUT_MS = 1_000

export const RESULT_SERVICE_DEFAULTS = {
  /** A result frame holds the output text and its token ids. */
  maxFrameBytes: 1024 * 1024,
  /** How long a whole task stream may last: generation plus the result. */
  streamTimeoutMs: 10 * 60_000,
  /** How long opening a stream (dial + protocol negotiation + the `open` frame) may take. */
  openTimeoutMs: 10_000,
  /** Task streams one miner may have open to an oracle at once (per connection): its concurrent tasks. */
  maxInboundStreams: 64,
  /** Task streams this node may open to one oracle at once. */
  maxOutboundStreams: 64
} as const

export type ResultServiceOptions = {-readonly [K in keyof typeof RESULT_SERVICE_DEFAULTS]: number}
export type ResultServiceInit = {networkId: string} & Partial<ResultServiceOptions>

export interface ResultServiceComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  access: AccessView
  logger: Logger
}

export class ResultExchangeError extends CortensorError<{code: 'RESULT_REFUSED' | 'RESULT_UNDELIVERABLE' | 'STREAM_CANCELLED', reason: string}> {}

/** A piece of generated text and the token ids it decodes from, as a miner streams it. */
export interface StreamedChunk {
  text: string
  tokens: number[]
}

/** What the oracle does with an opened task stream. */
export interface TaskStreamSink {
  token: (chunk: StreamedChunk) => void
  /** Aborted by the oracle when nobody wants this task any more: the stream is closed. */
  cancelled: AbortSignal
}

/** The oracle's side: what it does with each stream a miner opens, and with its result. */
export interface ResultHandler {
  onOpen: (taskId: string, sender: Address) => TaskStreamSink
  onResult: (result: MinerResult, sender: Address) => void
}

/** The miner's side of one task stream. */
export interface ResultStream {
  /** Queues a token frame; never throws (a broken stream drops later tokens). */
  token: (chunk: {text: string, tokens: readonly number[]}) => void
  /** Sends the result and waits for the oracle's verdict. */
  finish: (result: MinerResult, options?: AbortOptions) => Promise<void>
  /** Aborted when the oracle cancels the task (its client left): stop working on it. */
  cancelled: AbortSignal
  abort: (err: Error) => void
}

async function readFrame (lp: LengthPrefixedStream, signal: AbortSignal): Promise<unknown> {
  return unpackWire((await lp.read({signal})).subarray())
}

/**
 * The result protocol, as a libp2p-style service: miners `open` a task stream to the task's
 * oracle; an oracle `serve`s them (admitted miners only, by their connection key), hands
 * tokens on as they arrive, checks that the result names its sender and task, then acks.
 */
export class ResultService implements Startable {
  readonly protocol: string
  private readonly components: ResultServiceComponents
  private readonly options: ResultServiceOptions
  private handler: ResultHandler | undefined
  private started = false

  constructor (components: ResultServiceComponents, init: ResultServiceInit) {
    this.components = components
    const {networkId, ...options} = init
    this.options = {...RESULT_SERVICE_DEFAULTS, ...options}
    this.protocol = streamProtocolId(networkId, 'result')
  }

  /** Accept task streams (the oracle role); call before `start`. */
  serve (handler: ResultHandler): void {
    this.handler = handler
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    if (this.handler == null) return
    const handler = this.handler
    await this.components.libp2p.handle(this.protocol, async (stream: Stream, connection: Connection) => {
      await this.onStream(handler, stream, connection)
    }, {maxInboundStreams: this.options.maxInboundStreams, runOnLimitedConnection: false})
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    if (this.handler != null) await this.components.libp2p.unhandle(this.protocol)
  }

  /** Opens the task stream to the oracle's peer, as inference starts. */
  async open (oracle: PeerId, taskId: string, options: AbortOptions = {}): Promise<ResultStream> {
    const {maxFrameBytes, openTimeoutMs, streamTimeoutMs, maxOutboundStreams} = this.options
    const openSignal = withCallerSignal(AbortSignal.timeout(openTimeoutMs), options.signal)
    let stream: Stream
    try {
      stream = await this.components.libp2p.dialProtocol(oracle, this.protocol, {signal: openSignal, maxOutboundStreams})
    } catch (err) {
      throw new ResultExchangeError({code: 'RESULT_UNDELIVERABLE', reason: (err as Error).message}, `cannot reach oracle ${oracle.toString()}: ${(err as Error).message}`, {cause: err})
    }
    const signal = withCallerSignal(AbortSignal.timeout(streamTimeoutMs), options.signal)
    const lp = lpStream(stream, {maxDataLength: maxFrameBytes})
    const cancelled = new AbortController()
    /** Set once the stream broke: tokens stop, the work goes on. */
    let broken = false
    // Frames leave in order, one write at a time.
    let writes: Promise<void> = lp.write(packWire(openFrameSchema.parse({kind: 'open', taskId}, 'open')), {signal})
    // The oracle writes nothing but a cancel or the final ack.
    const ack = readFrame(lp, signal)
    ack.then((frame) => {
      if ((frame as {kind?: unknown} | null)?.kind !== 'cancel') return
      // A cancel is a cancel even when its reason is malformed; nothing here may throw.
      let reason = 'cancelled by the oracle'
      try {
        reason = cancelFrameSchema.parse(frame, 'cancel').reason
      } catch {}
      cancelled.abort(new ResultExchangeError({code: 'STREAM_CANCELLED', reason}, `oracle cancelled task ${taskId}: ${reason}`))
    }, () => { broken = true })
    writes.catch(() => { broken = true })
    return {
      cancelled: cancelled.signal,
      token: ({text, tokens}) => {
        if (cancelled.signal.aborted || broken || tokens.length === 0) return
        writes = writes.then(async () => { await lp.write(packWire({kind: 'token', text, tokens}), {signal}) })
        writes.catch(() => { broken = true })
      },
      finish: async (result, finishOptions = {}) => {
        const finishSignal = withCallerSignal(signal, finishOptions.signal)
        let verdict
        try {
          await writes
          await lp.write(packWire(resultFrameSchema.parse({kind: 'result', result}, 'result')), {signal: finishSignal})
          verdict = ackSchema.parse(await ack, 'ack')
        } catch (err) {
          // The oracle hung up without a verdict (it does so on a miner it does not admit).
          throw new ResultExchangeError({code: 'RESULT_UNDELIVERABLE', reason: (err as Error).message}, `result of task ${taskId} not delivered: ${(err as Error).message}`, {cause: err})
        }
        await stream.close({signal: finishSignal}).catch(() => {})
        if (verdict.status === 'refused') throw new ResultExchangeError({code: 'RESULT_REFUSED', reason: verdict.reason}, `oracle refused the result: ${verdict.reason}`)
      },
      abort: (err) => {
        broken = true
        stream.abort(err)
      }
    }
  }

  private async onStream (handler: ResultHandler, stream: Stream, connection: Connection): Promise<void> {
    const {access, logger} = this.components
    const {maxFrameBytes, openTimeoutMs, streamTimeoutMs} = this.options
    const lp = lpStream(stream, {maxDataLength: maxFrameBytes})
    const peer = connection.remotePeer.toString()
    // The sender's address comes from the authenticated connection's peer key.
    const sender = addressFromPeerId(connection.remotePeer)
    let cancel: AbortSignal = new AbortController().signal
    try {
      if (sender == null || !access.roleAllowed(sender, 'miner')) {
        throw new ResultExchangeError({code: 'RESULT_REFUSED', reason: 'not an admitted miner'}, `peer ${peer} (${sender ?? 'no address'}) is not an admitted miner`)
      }
      const open = openFrameSchema.parse(await readFrame(lp, AbortSignal.timeout(openTimeoutMs)), 'open')
      const sink = handler.onOpen(open.taskId, sender)
      cancel = sink.cancelled
      const signal = AbortSignal.any([sink.cancelled, AbortSignal.timeout(streamTimeoutMs)])
      for (;;) {
        const frame = await readFrame(lp, signal) as {kind?: unknown}
        if (frame?.kind === 'token') {
          const {text, tokens} = tokenFrameSchema.parse(frame, 'token')
          sink.token({text, tokens})
          continue
        }
        const {result} = resultFrameSchema.parse(frame, 'result')
        let reason = ''
        if (result.taskId !== open.taskId) reason = `result for task ${result.taskId} on the stream of task ${open.taskId}`
        else if (result.miner !== sender) reason = `result names miner ${result.miner} but was sent by ${sender}`
        else handler.onResult(result, sender)
        await lp.write(packWire(ackSchema.parse({status: reason === '' ? 'accepted' : 'refused', reason}, 'ack')), {signal})
        if (reason !== '') logger.warn({peer, reason}, 'result refused')
        await stream.close({signal})
        return
      }
    } catch (err) {
      logger.debug({err, peer}, 'result stream ended early')
      if (cancel.aborted) {
        // Told, not just dropped: the miner stops only on this frame.
        const reason = cancel.reason instanceof Error ? cancel.reason.message : 'cancelled by the oracle'
        await lp.write(packWire(cancelFrameSchema.parse({kind: 'cancel', reason: reason.slice(0, 1_000)}, 'cancel')), {signal: AbortSignal.timeout(CANCEL_WRITE_TIMEOUT_MS)})
          .then(async () => { await stream.close({signal: AbortSignal.timeout(CANCEL_WRITE_TIMEOUT_MS)}) })
          .catch((closeErr: Error) => { stream.abort(closeErr) })
        return
      }
      stream.abort(err as Error)
    }
  }
}
