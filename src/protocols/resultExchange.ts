import type {Libp2p, PeerId, Stream, Connection} from '@libp2p/interface'
import {lpStream} from '@libp2p/utils'
import {Packr} from 'msgpackr'
import {CortensorError} from '../util/cortensorError.js'
import type {Logger} from '../util/logger.js'
import type {AccessView} from './accessView.js'
import {PROTOCOL_PREFIX} from './constants.js'
import {float, type Infer, object, oneOf, string, uint} from './schema.js'

const bytes32 = string({minLength: 66, maxLength: 66, pattern: /^0x[0-9a-fA-F]{64}$/})

/** A miner's finished work, sent straight to the task's oracle (private until the reveal phase). */
export const minerResultSchema = object({
  taskId: string({minLength: 1, maxLength: 78, pattern: /^(0|[1-9][0-9]*)$/}),
  miner: string({minLength: 42, maxLength: 42, pattern: /^0x[0-9a-fA-F]{40}$/}),
  output: string({maxLength: 200_000}),
  salt: bytes32,
  outputHash: bytes32,
  commitment: bytes32,
  tokens: uint({max: 1 << 20}),
  timings: object({promptMs: float({min: 0, max: 86_400_000}), generateMs: float({min: 0, max: 86_400_000})})
})
export type MinerResultMessage = Infer<typeof minerResultSchema>

const ackSchema = object({status: oneOf(['accepted', 'refused'] as const), reason: string({maxLength: 1_000})})

/** Largest result frame: the output plus a little structure. */
const MAX_RESULT_BYTES = 256 * 1024
const RESULT_TIMEOUT_MS = 10_000

export function resultProtocol (networkId: string): string {
  return `${PROTOCOL_PREFIX}/${networkId}/result/1.0.0`
}

export class ResultExchangeError extends CortensorError<{code: 'RESULT_REFUSED' | 'RESULT_UNDELIVERABLE', reason: string}> {}

// Same plain-msgpack settings as the gossip codec: no records, no extension types.
const packr = new Packr({useRecords: false, structuredClone: false, moreTypes: false, bundleStrings: false, mapsAsObjects: true, int64AsType: 'number'})

export interface ResultServerInit {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle'>
  networkId: string
  access: AccessView
  /** The sender's address comes from the authenticated connection's peer key. */
  addressOf: (peer: PeerId) => string | null
  onResult: (result: MinerResultMessage, sender: string) => void
  logger: Logger
}

/**
 * The oracle's side: accepts one result frame per stream from admitted miners whose
 * connection key is the result's `miner`, and acknowledges it.
 */
export async function serveResults (init: ResultServerInit): Promise<() => Promise<void>> {
  const protocol = resultProtocol(init.networkId)
  await init.libp2p.handle(protocol, async (stream: Stream, connection: Connection) => {
    const lp = lpStream(stream, {maxDataLength: MAX_RESULT_BYTES})
    const signal = AbortSignal.timeout(RESULT_TIMEOUT_MS)
    let reason = ''
    try {
      const frame = await lp.read({signal})
      const result = minerResultSchema.parse(packr.unpack(frame.subarray()), 'result')
      const sender = init.addressOf(connection.remotePeer)
      if (sender == null || !init.access.roleAllowed(sender, 'miner')) reason = `sender ${sender ?? connection.remotePeer.toString()} is not an admitted miner`
      else if (sender.toLowerCase() !== result.miner.toLowerCase()) reason = `result names miner ${result.miner} but was sent by ${sender}`
      else init.onResult(result, sender)
      await lp.write(packr.pack(ackSchema.parse({status: reason === '' ? 'accepted' : 'refused', reason}, 'ack')), {signal})
      await stream.close({signal})
    } catch (err) {
      init.logger.debug({err, peer: connection.remotePeer.toString()}, 'bad result stream')
      stream.abort(err as Error)
    }
    if (reason !== '') init.logger.warn({peer: connection.remotePeer.toString(), reason}, 'result refused')
  }, {runOnLimitedConnection: false})
  return async () => { await init.libp2p.unhandle(protocol) }
}

/** The miner's side: sends one result to the oracle's peer and waits for its verdict. */
export async function sendResult (libp2p: Pick<Libp2p, 'dialProtocol'>, networkId: string, oracle: PeerId, result: MinerResultMessage, options: {signal?: AbortSignal} = {}): Promise<void> {
  const signal = options.signal ?? AbortSignal.timeout(RESULT_TIMEOUT_MS)
  let stream: Stream
  try {
    stream = await libp2p.dialProtocol(oracle, resultProtocol(networkId), {signal})
  } catch (err) {
    throw new ResultExchangeError({code: 'RESULT_UNDELIVERABLE', reason: (err as Error).message}, `cannot reach oracle ${oracle.toString()}: ${(err as Error).message}`, {cause: err})
  }
  const lp = lpStream(stream, {maxDataLength: MAX_RESULT_BYTES})
  await lp.write(packr.pack(minerResultSchema.parse(result, 'result')), {signal})
  const ack = ackSchema.parse(packr.unpack((await lp.read({signal})).subarray()), 'ack')
  await stream.close({signal}).catch(() => {})
  if (ack.status === 'refused') throw new ResultExchangeError({code: 'RESULT_REFUSED', reason: ack.reason}, `oracle refused the result: ${ack.reason}`)
}
