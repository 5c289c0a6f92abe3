import type {Connection, Libp2p, PeerId, Stream} from '@libp2p/interface'
import {lpStream, type LengthPrefixedStream} from '@libp2p/utils'
import {CortensorError} from '../util/cortensorError.js'
import type {Logger} from '../util/logger.js'
import type {AccessView} from './accessView.js'
import {PROTOCOL_PREFIX} from './constants.js'
import {packWire, unpackWire} from './codec.js'
import {address, bytes32, taskId} from './messages.js'
import {float, type Infer, object, oneOf, string, uint} from './schema.js'

/** A miner's finished work, sent straight to the task's oracle (private until the reveal phase). */
export const minerResultSchema = object({
  taskId,
  miner: address,
  output: string({maxLength: 200_000}),
  salt: bytes32,
  outputHash: bytes32,
  commitment: bytes32,
  tokens: uint({max: 1 << 20}),
  timings: object({promptMs: float({min: 0, max: 86_400_000}), generateMs: float({min: 0, max: 86_400_000})})
})
export type MinerResultMessage = Infer<typeof minerResultSchema>

/**
 * One stream per task and miner: `open` names the task, `token` frames carry the text as it is
 * generated, `result` closes it; the oracle answers with an ack. The oracle aborting the
 * stream tells the miner to stop (the client went away).
 */
const openFrameSchema = object({kind: oneOf(['open'] as const), taskId})
const tokenFrameSchema = object({kind: oneOf(['token'] as const), text: string({maxLength: 16_384})})
const resultFrameSchema = object({kind: oneOf(['result'] as const), result: minerResultSchema})
const ackSchema = object({status: oneOf(['accepted', 'refused'] as const), reason: string({maxLength: 1_000})})

const MAX_FRAME_BYTES = 256 * 1024
/** How long a whole task stream may last: generation plus the result. */
const STREAM_TIMEOUT_MS = 10 * 60_000
const OPEN_TIMEOUT_MS = 10_000

export function resultProtocol (networkId: string): string {
  return `${PROTOCOL_PREFIX}/${networkId}/result/1.0.0`
}

export class ResultExchangeError extends CortensorError<{code: 'RESULT_REFUSED' | 'RESULT_UNDELIVERABLE' | 'STREAM_CANCELLED', reason: string}> {}

async function readFrame (lp: LengthPrefixedStream, signal: AbortSignal): Promise<unknown> {
  return unpackWire((await lp.read({signal})).subarray())
}

/** What the oracle does with an opened task stream. */
export interface TaskStreamSink {
  token: (text: string) => void
  /** Aborted by the oracle when nobody wants this task any more: the stream is closed. */
  cancelled: AbortSignal
}

export interface ResultServerInit {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle'>
  networkId: string
  access: AccessView
  /** The sender's address comes from the authenticated connection's peer key. */
  addressOf: (peer: PeerId) => string | null
  onOpen: (taskId: string, sender: string) => TaskStreamSink
  onResult: (result: MinerResultMessage, sender: string) => void
  logger: Logger
}

/**
 * The oracle's side: admitted miners only (by their connection key), one task per stream;
 * tokens are handed on as they arrive, the result is checked to name its sender, then acked.
 */
export async function serveResults (init: ResultServerInit): Promise<() => Promise<void>> {
  const protocol = resultProtocol(init.networkId)
  await init.libp2p.handle(protocol, async (stream: Stream, connection: Connection) => {
    const lp = lpStream(stream, {maxDataLength: MAX_FRAME_BYTES})
    const peer = connection.remotePeer.toString()
    const sender = init.addressOf(connection.remotePeer)
    try {
      if (sender == null || !init.access.roleAllowed(sender, 'miner')) {
        throw new ResultExchangeError({code: 'RESULT_REFUSED', reason: 'not an admitted miner'}, `peer ${peer} (${sender ?? 'no address'}) is not an admitted miner`)
      }
      const open = openFrameSchema.parse(await readFrame(lp, AbortSignal.timeout(OPEN_TIMEOUT_MS)), 'open')
      const sink = init.onOpen(open.taskId, sender)
      const signal = AbortSignal.any([sink.cancelled, AbortSignal.timeout(STREAM_TIMEOUT_MS)])
      for (;;) {
        const frame = await readFrame(lp, signal) as {kind?: unknown}
        if (frame?.kind === 'token') {
          sink.token(tokenFrameSchema.parse(frame, 'token').text)
          continue
        }
        const {result} = resultFrameSchema.parse(frame, 'result')
        let reason = ''
        if (result.taskId !== open.taskId) reason = `result for task ${result.taskId} on the stream of task ${open.taskId}`
        else if (result.miner.toLowerCase() !== sender.toLowerCase()) reason = `result names miner ${result.miner} but was sent by ${sender}`
        else init.onResult(result, sender)
        await lp.write(packWire(ackSchema.parse({status: reason === '' ? 'accepted' : 'refused', reason}, 'ack')), {signal})
        if (reason !== '') init.logger.warn({peer, reason}, 'result refused')
        await stream.close({signal})
        return
      }
    } catch (err) {
      init.logger.debug({err, peer}, 'result stream ended early')
      stream.abort(err as Error)
    }
  }, {runOnLimitedConnection: false})
  return async () => { await init.libp2p.unhandle(protocol) }
}

/** The miner's side of one task stream. */
export interface ResultStream {
  /** Queues a token frame; never throws (a broken stream shows in `cancelled`). */
  token: (text: string) => void
  /** Sends the result and waits for the oracle's verdict. */
  finish: (result: MinerResultMessage) => Promise<void>
  /** Aborted when the oracle closes the stream before the result: stop working on the task. */
  cancelled: AbortSignal
  abort: (err: Error) => void
}

/** Opens the task stream to the oracle's peer as inference starts. */
export async function openResultStream (libp2p: Pick<Libp2p, 'dialProtocol'>, networkId: string, oracle: PeerId, taskId: string): Promise<ResultStream> {
  const signal = AbortSignal.timeout(STREAM_TIMEOUT_MS)
  let stream: Stream
  try {
    stream = await libp2p.dialProtocol(oracle, resultProtocol(networkId), {signal: AbortSignal.timeout(OPEN_TIMEOUT_MS)})
  } catch (err) {
    throw new ResultExchangeError({code: 'RESULT_UNDELIVERABLE', reason: (err as Error).message}, `cannot reach oracle ${oracle.toString()}: ${(err as Error).message}`, {cause: err})
  }
  const lp = lpStream(stream, {maxDataLength: MAX_FRAME_BYTES})
  const cancelled = new AbortController()
  // Frames leave in order, one write at a time.
  let writes: Promise<void> = lp.write(packWire(openFrameSchema.parse({kind: 'open', taskId}, 'open')), {signal})
  // The oracle writes nothing but the final ack: a read that ends first means it hung up.
  let finishing = false
  const ack = readFrame(lp, signal)
  ack.catch((err: Error) => {
    if (!finishing) cancelled.abort(new ResultExchangeError({code: 'STREAM_CANCELLED', reason: err.message}, `oracle closed the stream of task ${taskId}`))
  })
  writes.catch((err: Error) => { cancelled.abort(err) })
  return {
    cancelled: cancelled.signal,
    token: (text) => {
      if (cancelled.signal.aborted || text === '') return
      writes = writes.then(async () => { await lp.write(packWire({kind: 'token', text}), {signal}) })
      writes.catch((err: Error) => { cancelled.abort(err) })
    },
    finish: async (result) => {
      finishing = true
      await writes
      await lp.write(packWire(resultFrameSchema.parse({kind: 'result', result}, 'result')), {signal})
      const verdict = ackSchema.parse(await ack, 'ack')
      await stream.close({signal}).catch(() => {})
      if (verdict.status === 'refused') throw new ResultExchangeError({code: 'RESULT_REFUSED', reason: verdict.reason}, `oracle refused the result: ${verdict.reason}`)
    },
    abort: (err) => {
      finishing = true
      stream.abort(err)
    }
  }
}
