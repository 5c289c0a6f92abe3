import type {Connection, Libp2p, Stream} from '@libp2p/interface'
import {lpStream} from '@libp2p/utils'
import type {Helia} from 'helia'
import type {CID} from 'multiformats/cid'
import {packWire, unpackWire} from '../protocols/codec.js'
import type {Logger} from '../util/logger.js'
import {nodeMetrics} from '../util/metrics.js'
import {BLOCK_PROTOCOL, BLOCK_PROTOCOL_LIMITS, getRequestSchema, hasRequestSchema} from './blockProtocol.js'
import {readBlock} from './readBlock.js'

export type BlockServerLibp2p = Pick<Libp2p, 'handle' | 'unhandle'>

export interface BlockServerComponents {
  libp2p: BlockServerLibp2p
  blockstore: Pick<Helia['blockstore'], 'has' | 'get'>
  /** Whether a peer may use the protocol at all (admission); checked when its stream opens. */
  isAllowedPeer: (peerId: string) => boolean
  logger: Logger
}

/** A stream on which the peer sends nothing for this long is closed: fetchers keep theirs busy. */
const IDLE_REQUEST_TIMEOUT_MS = 120_000
/** Requests read ahead of the answers written: enough to keep the disk busy while the link sends. */
const MAX_ANSWERS_AHEAD = 2
/** One answer frame that cannot be written for this long: the peer stopped reading, and the stream goes. */
const WRITE_TIMEOUT_MS = 60_000

const FOUND = packWire({found: true})
const NOT_FOUND = packWire({found: false})

/**
 * Serves the local blockstore over BLOCK_PROTOCOL to admitted peers: whatever this node holds
 * (a model it imported, fetched, or is still fetching), never a block it would first have to
 * fetch itself (reads are offline, so a request cannot make this node download anything).
 */
export class BlockServer {
  constructor (private readonly components: BlockServerComponents) {}

  async start (): Promise<void> {
    // force: a model actor restarted by its supervisor opens a new store on the same host,
    // and the newest store must take over the protocol from the one that crashed.
    await this.components.libp2p.handle(BLOCK_PROTOCOL, async (stream: Stream, connection: Connection) => {
      await this.onStream(stream, connection)
    }, {maxInboundStreams: BLOCK_PROTOCOL_LIMITS.maxInboundStreams, runOnLimitedConnection: false, force: true})
  }

  async stop (): Promise<void> {
    await this.components.libp2p.unhandle(BLOCK_PROTOCOL)
  }

  private async onStream (stream: Stream, connection: Connection): Promise<void> {
    const {isAllowedPeer, logger} = this.components
    const peer = connection.remotePeer.toString()
    if (!isAllowedPeer(peer)) {
      logger.debug({peer}, 'block stream from a peer that is not admitted; refused')
      stream.abort(new Error('not an admitted peer'))
      return
    }
    const lp = lpStream(stream, {maxDataLength: BLOCK_PROTOCOL_LIMITS.maxRequestBytes})
    // Requests are read as they arrive and their blocks read from disk at once; answers
    // leave in request order. Reading ahead overlaps the disk with the network: a block read
    // is many small thread-pool round trips, and one at a time they, not the link, set the
    // rate. At most MAX_ANSWERS_AHEAD requests are read ahead of what was written: a peer
    // that asks and never reads stops being read (its stream backs up), instead of making this
    // node hold every block it asked for.
    const answers: Array<Promise<Array<Uint8Array | undefined> | {have: boolean[]}>> = []
    let wake: PromiseWithResolvers<void> | undefined
    let space: PromiseWithResolvers<void> | undefined
    let requestsEnded = false
    const reading = (async () => {
      try {
        for (;;) {
          while (answers.length >= MAX_ANSWERS_AHEAD) {
            space = Promise.withResolvers()
            await space.promise
          }
          const frame = await lp.read({signal: AbortSignal.timeout(IDLE_REQUEST_TIMEOUT_MS)}).catch((err: unknown) => {
            // The fetcher closing its side after its last request is the normal end.
            if (stream.remoteWriteStatus !== 'writable') return null
            throw err
          })
          if (frame == null) return
          const request = unpackWire(frame.subarray()) as {kind?: unknown}
          if (request?.kind === 'has') {
            const {cids} = hasRequestSchema.parse(request, 'has')
            answers.push(Promise.all(cids.map(async cid => this.components.blockstore.has(cid))).then(have => ({have})))
          } else {
            const {cids} = getRequestSchema.parse(request, 'get')
            answers.push(Promise.all(cids.map(async cid => this.localBlock(cid))))
          }
          // Settled answers are awaited in order by the writer; an early rejection must not count as unhandled.
          answers.at(-1)!.catch(() => {})
          wake?.resolve()
        }
      } finally {
        requestsEnded = true
        wake?.resolve()
      }
    })()
    // Awaited below; a failure that comes after the writer gave up is not unhandled.
    reading.catch(() => {})
    try {
      for (;;) {
        const answer = answers.shift()
        space?.resolve()
        if (answer == null) {
          if (requestsEnded) break
          wake = Promise.withResolvers()
          await wake.promise
          continue
        }
        const value = await answer
        if ('have' in value) {
          await lp.write(packWire(value), {signal: AbortSignal.timeout(WRITE_TIMEOUT_MS)})
          continue
        }
        for (const block of value) {
          if (block == null) {
            await lp.write(NOT_FOUND, {signal: AbortSignal.timeout(WRITE_TIMEOUT_MS)})
            continue
          }
          await lp.writeV([FOUND, block], {signal: AbortSignal.timeout(WRITE_TIMEOUT_MS)})
          nodeMetrics.modelBytes.inc({direction: 'served'}, block.byteLength)
        }
      }
      await reading
      await stream.close()
    } catch (err) {
      logger.debug({err, peer}, 'block stream ended early')
      stream.abort(err as Error)
      // The reader may be waiting for room: let it see the stream is gone.
      space?.resolve()
    }
  }

  private async localBlock (cid: CID): Promise<Uint8Array | undefined> {
    let block: Uint8Array
    try {
      block = await readBlock(this.components.blockstore, cid, {offline: true})
    } catch {
      return undefined
    }
    return block.byteLength > BLOCK_PROTOCOL_LIMITS.maxBlockBytes ? undefined : block
  }
}
