import type {Libp2p, PeerId, Stream} from '@libp2p/interface'
import {lpStream, type LengthPrefixedStream} from '@libp2p/utils'
import type {Helia} from 'helia'
import type {CID} from 'multiformats/cid'
import {packWire, unpackWire} from '../protocols/codec.js'
import type {Logger} from '../util/logger.js'
import {nodeMetrics} from '../util/metrics.js'
import {BLOCK_PROTOCOL, BLOCK_PROTOCOL_LIMITS, blockHeaderSchema, hasReplySchema} from './blockProtocol.js'
import {blockMatchesCid, verifiableCid} from './verifyBlock.js'
import {readBlock} from './readBlock.js'

export type BlockSwarmLibp2p = Pick<Libp2p, 'dialProtocol' | 'getPeers'>
type Blocks = Pick<Helia['blockstore'], 'has' | 'get' | 'put' | 'delete'>

export const BLOCK_SWARM_DEFAULTS = {
  /** Blocks one peer is asked for at once: enough to keep a loopback or LAN link busy between round trips. */
  blocksInFlightPerPeer: 8,
  /** Blocks per `get` request: small, so a slow peer holds few blocks and fast peers take the rest. */
  blocksPerRequest: 4,
  /** A peer with requests outstanding that sends nothing for this long is dropped and its blocks asked of others. */
  peerTimeoutMs: 10_000,
  /** How often peers that lacked blocks are asked again (they may be fetching them too), and new peers are tried. */
  refreshIntervalMs: 1_000,
  /**
   * Blocks a peer is asked about again per refresh, from the front of the window. Each is a
   * file check on the peer's thread pool, which its own block reads and writes share: with
   * 7 fetchers asking each other about the whole window every second, answers slowed to the
   * point of peer timeouts (measured in test/bench/ipfs.ts).
   */
  reaskBlocks: 32,
  /**
   * A peer that has sent nothing for this long while asked for blocks counts as stalled: its
   * blocks are asked of other peers too and no longer hold slots of `maxBlocksInFlight`, so a
   * stuck peer slows a fetch down by this much at most, not by `peerTimeoutMs`.
   */
  duplicateAfterMs: 1_500,
  /** Blocks chosen from among the first this many missing ones: peers pick different blocks (so they can trade them) while the file is still written roughly in order. */
  windowBlocks: 256,
  /** A peer that failed (timeout, broken stream) is not tried again for this long within the fetch; one that sent a wrong block, never. */
  retryPeerAfterMs: 5_000
} as const

export type BlockSwarmOptions = {-readonly [K in keyof typeof BLOCK_SWARM_DEFAULTS]: number}

export interface BlockSwarmInit extends Partial<BlockSwarmOptions> {
  /** Absent on a node without networking: then every missing block is asked of the blockstore (bitswap, if any). */
  libp2p?: BlockSwarmLibp2p
  /** The host's blockstore: `put` stores and announces to bitswap, `get` without `offline` fetches over bitswap. */
  blockstore: Blocks
  isAllowedPeer: (peerId: string) => boolean
  /** Blocks requested at once over all peers and bitswap: bounds the fetch's memory. */
  maxBlocksInFlight: number
  /**
   * Each block once verified and in the blockstore, before the fetch counts it as done:
   * `from` is a peer id, `bitswap`, or `local` (it was in the blockstore already). A
   * rejection fails the whole fetch.
   */
  onBlock: (cid: CID, bytes: Uint8Array, from: string) => Promise<void>
  logger: Logger
  signal: AbortSignal
}

interface Want {
  cid: CID
  key: string
  order: number
  stored: boolean
  /** Sessions this block is currently requested from (two in the end game). */
  requestedFrom: Set<PeerSession>
  requestedAt: number
  /** Being handed to `onBlock`: a second copy (end game, bitswap) is dropped. */
  stashing: boolean
  /** Where the stored copy came from: a peer id, `bitswap`, or `local`. */
  from?: string
  bitswap?: AbortController
  /** No bitswap fallback for this block before then (the last one failed). */
  bitswapNotBefore: number
  done: PromiseWithResolvers<void>
}

type Pending = {kind: 'has', wants: Want[]} | {kind: 'get', wants: Want[]}

/**
 * Fetches a set of blocks from every connected peer that serves BLOCK_PROTOCOL, at once: each
 * peer is asked which blocks it holds, then sent pipelined `get`s for blocks it holds and that
 * no one else is sending, rarest first within a window near the start of the file. A block is
 * stored only after its bytes hash to its CID; a peer that sends a wrong one is dropped for the
 * rest of the fetch. A peer that disconnects or goes quiet is dropped and its blocks are asked
 * of the others; peers that lacked a block are asked again every second (they may be fetching
 * it too). Blocks no such peer holds go to the blockstore, i.e. bitswap, so peers without the
 * protocol still serve.
 */
export class BlockSwarm {
  private readonly init: BlockSwarmInit
  private readonly options: BlockSwarmOptions
  private readonly log: Logger
  private readonly wants = new Map<string, Want>()
  /** Not yet stored wants, by order; the stored ones are skipped lazily. */
  private queue: Want[] = []
  private nextOrder = 0
  private readonly sessions = new Map<string, PeerSession>()
  private readonly opening = new Set<string>()
  /** Peers seen connected during this fetch, by id string. */
  private readonly known = new Map<string, PeerId>()
  /** Peers not to try (again) before the time given; Infinity for a peer that sent a wrong block. */
  private readonly notBefore = new Map<string, number>()
  private discoveredOnce = false
  private bitswapInFlight = 0
  private readonly timer: NodeJS.Timeout
  private closed = false
  /** Bytes stored per source (peer id or `bitswap`). */
  readonly bytesFrom = new Map<string, number>()

  constructor (init: BlockSwarmInit) {
    const {libp2p: _libp2p, blockstore: _blockstore, isAllowedPeer: _isAllowedPeer, maxBlocksInFlight: _max, onBlock: _onBlock, logger, signal, ...options} = init
    this.init = init
    this.options = {...BLOCK_SWARM_DEFAULTS, ...options}
    this.log = logger
    this.timer = setInterval(() => { this.refresh() }, this.options.refreshIntervalMs)
    this.timer.unref()
    signal.addEventListener('abort', () => { this.close() }, {once: true})
    this.discover()
  }

  /** Resolves once every block of `cids` is in the local blockstore, verified. */
  async fetch (cids: CID[]): Promise<void> {
    const added: Want[] = []
    const waits: Array<Promise<void>> = []
    for (const cid of cids) {
      const key = cid.toString()
      let want = this.wants.get(key)
      if (want == null) {
        want = {cid, key, order: this.nextOrder++, stored: false, requestedFrom: new Set(), requestedAt: 0, stashing: false, bitswapNotBefore: 0, done: Promise.withResolvers()}
        // A rejection nobody awaits yet (the fetch aborts first) is not an unhandled one.
        want.done.promise.catch(() => {})
        this.wants.set(key, want)
        added.push(want)
      }
      waits.push(want.done.promise)
    }
    await this.skipLocal(added)
    const missing = added.filter(want => !want.stored)
    this.queue.push(...missing)
    for (const session of this.sessions.values()) session.ask(missing)
    this.pump()
    await Promise.all(waits)
  }

  /** Whether `cid` was received from a peer or bitswap by this fetch (rather than found in the blockstore). */
  fetchedFromNetwork (cid: CID): boolean {
    const from = this.wants.get(cid.toString())?.from
    return from != null && from !== 'local'
  }

  /** Ends the fetch: open streams are closed, and blocks not stored yet fail with `reason`. */
  close (reason?: Error): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    reason ??= this.init.signal.reason instanceof Error ? this.init.signal.reason : new Error('block fetch closed')
    for (const session of this.sessions.values()) session.close()
    for (const want of this.wants.values()) {
      want.bitswap?.abort(reason)
      if (!want.stored) want.done.reject(reason)
    }
  }

  /**
   * Blocks already in the blockstore (a resumed fetch) are used as they are once their bytes
   * are checked: FsBlockstore writes in place, so a crash can leave a truncated block that
   * `has` reports present and that would fail the file's sha256 on every retry.
   */
  private async skipLocal (wants: Want[]): Promise<void> {
    const {blockstore} = this.init
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < wants.length) {
        const want = wants[next++]!
        if (!await blockstore.has(want.cid)) continue
        const bytes = await readBlock(blockstore, want.cid, {offline: true, signal: this.init.signal})
        if (!verifiableCid(want.cid) || await blockMatchesCid(want.cid, bytes)) {
          await this.stash(want, bytes, 'local')
        } else {
          this.log.warn({cid: want.key}, 'local block does not match its CID; fetching it again')
          await blockstore.delete(want.cid)
        }
      }
    }
    await Promise.all(Array.from({length: 4}, worker))
  }

  private markStored (want: Want): void {
    if (want.stored) return
    want.stored = true
    want.bitswap?.abort(new Error('stored'))
    want.done.resolve()
  }

  /** Assigns blocks to peers with room, and to bitswap those no peer holds; called whenever either may have changed. */
  pump (): void {
    if (this.closed) return
    const window = this.window()
    if (window.length === 0) return
    const {blocksInFlightPerPeer, blocksPerRequest, duplicateAfterMs} = this.options
    const now = performance.now()
    const sessions = [...this.sessions.values()].filter(s => !s.stalled(now, duplicateAfterMs))
    let blocksInFlight = sessions.reduce((sum, s) => sum + s.blocksInFlight, 0)
    /** Requested from a peer that is still sending: not to be asked of another. */
    const taken = (w: Want): boolean => [...w.requestedFrom].some(s => !s.stalled(now, duplicateAfterMs))
    for (let progress = true; progress;) {
      progress = false
      sessions.sort((a, b) => a.blocksInFlight - b.blocksInFlight)
      for (const session of sessions) {
        const room = Math.min(blocksPerRequest, blocksInFlightPerPeer - session.blocksInFlight, this.init.maxBlocksInFlight - blocksInFlight)
        if (room <= 0) continue
        let picked = this.rarest(window.filter(w => !w.stored && !w.requestedFrom.has(session) && !taken(w) && session.holds(w)), room)
        if (picked.length === 0) {
          // End game: nothing unrequested left for this peer, so race a slow peer for the oldest block.
          picked = window
            .filter(w => !w.stored && w.requestedFrom.size === 1 && !w.requestedFrom.has(session) && session.holds(w) && now - w.requestedAt >= duplicateAfterMs)
            .sort((a, b) => a.requestedAt - b.requestedAt)
            .slice(0, room)
        }
        if (picked.length === 0) continue
        for (const want of picked) {
          want.requestedFrom.add(session)
          want.requestedAt = now
        }
        blocksInFlight += picked.length
        session.get(picked)
        progress = true
      }
    }
    for (const want of window) {
      if (this.bitswapInFlight >= this.init.maxBlocksInFlight) break
      if (!want.stored && want.requestedFrom.size === 0 && want.bitswap == null && want.bitswapNotBefore <= now && this.noPeerCanServe(want)) this.viaBitswap(want)
    }
  }

  /** The first `windowBlocks` blocks not yet stored. */
  private window (): Want[] {
    while (this.queue.length > 0 && this.queue[0]!.stored) this.queue.shift()
    const out: Want[] = []
    for (const want of this.queue) {
      if (want.stored) continue
      out.push(want)
      if (out.length >= this.options.windowBlocks) break
    }
    return out
  }

  /** Up to `count` of `candidates`, those the fewest peers hold first, ties at random. */
  private rarest (candidates: Want[], count: number): Want[] {
    if (candidates.length <= count) return candidates
    const sessions = [...this.sessions.values()]
    return candidates
      .map(want => ({want, rank: sessions.filter(s => s.holds(want)).length + Math.random()}))
      .sort((a, b) => a.rank - b.rank)
      .slice(0, count)
      .map(({want}) => want)
  }

  private noPeerCanServe (want: Want): boolean {
    if (!this.discoveredOnce || this.opening.size > 0) return false
    for (const session of this.sessions.values()) if (!session.lacks(want)) return false
    return true
  }

  private viaBitswap (want: Want): void {
    const controller = new AbortController()
    want.bitswap = controller
    want.requestedAt = performance.now()
    this.bitswapInFlight++
    const signal = AbortSignal.any([controller.signal, this.init.signal])
    void (async () => {
      // helia checks the block against its CID and stores it before handing it out.
      const bytes = await readBlock(this.init.blockstore, want.cid, {signal})
      if (want.stored) return
      await this.stash(want, bytes, 'bitswap')
    })().then(() => {}, (err: unknown) => {
      if (want.stored || this.closed) return
      want.bitswapNotBefore = performance.now() + this.options.refreshIntervalMs
      this.log.debug({err, cid: want.key}, 'bitswap fallback failed; will retry')
    }).finally(() => {
      want.bitswap = undefined
      this.bitswapInFlight--
      this.pump()
    })
  }

  /** A block `session` sent, in answer to a `get`: verified, then stored. */
  async deliver (session: PeerSession, want: Want, bytes: Uint8Array): Promise<void> {
    try {
      if (want.stored) return
      if (!await blockMatchesCid(want.cid, bytes)) {
        this.log.warn({peer: session.peer, cid: want.key}, 'peer sent a block that does not match its CID')
        this.dropSession(session, `sent a block that does not match ${want.key}`, Infinity)
        return
      }
      if (want.stored) return
      await this.init.blockstore.put(want.cid, bytes, {signal: this.init.signal})
      await this.stash(want, bytes, session.peer)
    } catch (err) {
      // Called without being awaited (the session reads on): a block that cannot be stored ends
      // the fetch with that error, unless the fetch is already over (an abort cuts the put short).
      if (!this.closed && !this.init.signal.aborted) this.close(err as Error)
    } finally {
      this.release(session, want)
    }
  }

  /** `session` answered a `get` for `want` with "not found". */
  notFound (session: PeerSession, want: Want): void {
    this.release(session, want)
  }

  private release (session: PeerSession, want: Want): void {
    if (want.requestedFrom.delete(session)) session.blocksInFlight--
    this.pump()
  }

  /** Hands a stored block to the fetch; a failure there (the file cannot be written) ends the whole fetch. */
  private async stash (want: Want, bytes: Uint8Array, from: string): Promise<void> {
    if (want.stored || want.stashing) return
    want.stashing = true
    try {
      want.from = from
      await this.init.onBlock(want.cid, bytes, from)
    } catch (err) {
      this.close(err as Error)
      return
    }
    if (from !== 'local') {
      this.bytesFrom.set(from, (this.bytesFrom.get(from) ?? 0) + bytes.byteLength)
      nodeMetrics.modelBytes.inc({direction: 'fetched'}, bytes.byteLength)
    }
    this.markStored(want)
  }

  /** Stops asking `session`'s peer (for `retryAfterMs`, default `retryPeerAfterMs`) and asks others for its outstanding blocks. */
  dropSession (session: PeerSession, reason: string, retryAfterMs = this.options.retryPeerAfterMs): void {
    if (this.sessions.get(session.peer) !== session) return
    this.sessions.delete(session.peer)
    this.notBefore.set(session.peer, performance.now() + retryAfterMs)
    if (!this.closed) this.log.info({peer: session.peer, reason}, 'dropped a peer from the model fetch')
    session.close(new Error(reason))
    for (const want of this.wants.values()) {
      want.requestedFrom.delete(session)
    }
    this.pump()
  }

  /** Tries every connected, admitted peer not yet in the fetch; once the first round settles, blocks no peer has may go to bitswap. */
  private discover (): void {
    const {libp2p, isAllowedPeer} = this.init
    if (libp2p == null) {
      this.discoveredOnce = true
      return
    }
    const now = performance.now()
    const round: Array<Promise<void>> = []
    for (const peerId of libp2p.getPeers()) this.known.set(peerId.toString(), peerId)
    // Peers served before and now disconnected are dialled again: a connection dropped under load is not a reason to lose a source.
    for (const [peer, peerId] of this.known) {
      if (this.sessions.has(peer) || this.opening.has(peer) || (this.notBefore.get(peer) ?? 0) > now || !isAllowedPeer(peer)) continue
      round.push(this.open(peerId, peer))
    }
    void Promise.all(round).then(() => {
      this.discoveredOnce = true
      this.pump()
    })
  }

  private async open (peerId: PeerId, peer: string): Promise<void> {
    this.opening.add(peer)
    try {
      const stream = await this.init.libp2p!.dialProtocol(peerId, BLOCK_PROTOCOL, {signal: AbortSignal.any([this.init.signal, AbortSignal.timeout(this.options.peerTimeoutMs)])})
      if (this.closed) {
        stream.abort(new Error('block fetch closed'))
        return
      }
      const session = new PeerSession(this, peer, stream, this.options, this.init.signal)
      this.sessions.set(peer, session)
      session.ask(this.queue.filter(want => !want.stored))
    } catch (err) {
      // A peer without the protocol is left to bitswap and asked again much later.
      const unsupported = (err as Error).name === 'UnsupportedProtocolError'
      this.notBefore.set(peer, performance.now() + (unsupported ? 10 : 1) * this.options.retryPeerAfterMs)
      if (unsupported) this.known.delete(peer)
      this.log.debug({err, peer}, 'could not open a block stream')
    } finally {
      this.opening.delete(peer)
    }
  }

  /** Asks again the peers that lacked blocks still missing, and tries new peers. */
  private refresh (): void {
    if (this.closed) return
    const window = this.window()
    for (const session of this.sessions.values()) session.askAgain(window, this.options.reaskBlocks)
    this.discover()
    this.pump()
  }
}

/** One peer's stream for the length of a fetch: requests go out in order, answers come back in the same order. */
class PeerSession {
  private readonly lp: LengthPrefixedStream<Stream>
  private readonly timeoutMs: number
  private readonly pending: Pending[] = []
  private wake: PromiseWithResolvers<void> | undefined
  private writes: Promise<void> = Promise.resolve()
  /** Blocks the peer said it holds, and those it said it lacks; neither means not asked yet (or being asked). */
  private readonly have = new Set<string>()
  private readonly lacking = new Set<string>()
  blocksInFlight = 0
  /** When the peer last sent a frame, or was last sent a request while it owed nothing. */
  private lastProgressAt = performance.now()
  private answered = false
  private ended = false

  constructor (
    private readonly swarm: BlockSwarm,
    readonly peer: string,
    private readonly stream: Stream,
    options: Pick<BlockSwarmOptions, 'peerTimeoutMs' | 'blocksInFlightPerPeer'>,
    private readonly signal: AbortSignal
  ) {
    const {maxBlockBytes, maxHasCids} = BLOCK_PROTOCOL_LIMITS
    const maxFrame = Math.max(maxBlockBytes, maxHasCids + 64)
    this.timeoutMs = options.peerTimeoutMs
    this.lp = lpStream(stream, {
      maxDataLength: maxFrame,
      // Every block asked for (two copies in the end game) may arrive before this session reads it.
      maxBufferSize: (options.blocksInFlightPerPeer * 2 + 2) * maxFrame
    })
    // A stream that broke after serving is tried again at the next refresh (the peer may still
    // be there); a silent one, or one refused before any answer (not admitted), later.
    void this.run().catch((err: unknown) => {
      const retry = (err as Error).name === 'TimeoutError' || !this.answered ? undefined : 0
      this.swarm.dropSession(this, `stream failed: ${(err as Error).message}`, retry)
    })
  }

  /** Owes answers and has sent nothing for `afterMs`. */
  stalled (now: number, afterMs: number): boolean {
    return this.pending.length > 0 && now - this.lastProgressAt > afterMs
  }

  holds (want: Want): boolean {
    return this.have.has(want.key)
  }

  /** Said it lacks `want` at its last answer (an unasked block does not count as lacking). */
  lacks (want: Want): boolean {
    return this.lacking.has(want.key)
  }

  ask (wants: Want[]): void {
    const unknown = wants.filter(w => !this.have.has(w.key) && !this.lacking.has(w.key))
    for (let i = 0; i < unknown.length; i += BLOCK_PROTOCOL_LIMITS.maxHasCids) {
      const batch = unknown.slice(i, i + BLOCK_PROTOCOL_LIMITS.maxHasCids)
      // Being asked: neither held nor lacking until the answer.
      for (const want of batch) this.lacking.delete(want.key)
      this.send({kind: 'has', wants: batch})
    }
  }

  askAgain (window: Want[], limit: number): void {
    const again = window.filter(w => !w.stored && w.requestedFrom.size === 0 && this.lacking.has(w.key)).slice(0, limit)
    for (const want of again) this.lacking.delete(want.key)
    if (again.length > 0) this.ask(again)
  }

  get (wants: Want[]): void {
    this.blocksInFlight += wants.length
    this.send({kind: 'get', wants})
  }

  close (err?: Error): void {
    if (this.ended) return
    this.ended = true
    this.wake?.resolve()
    if (err != null) {
      this.stream.abort(err)
      return
    }
    // Its last answers may still be in flight; closing our write side lets the peer finish and close.
    this.stream.close().catch((closeErr: Error) => { this.stream.abort(closeErr) })
  }

  private send (request: Pending): void {
    if (this.ended) return
    if (this.pending.length === 0) this.lastProgressAt = performance.now()
    this.pending.push(request)
    const frame = packWire({kind: request.kind, cids: request.wants.map(w => w.key)})
    this.writes = this.writes.then(async () => { await this.lp.write(frame, {signal: this.signal}) })
    this.writes.catch((err: unknown) => { this.swarm.dropSession(this, `write failed: ${(err as Error).message}`, 0) })
    this.wake?.resolve()
  }

  private async read (): Promise<Uint8Array> {
    const frame = await this.lp.read({signal: AbortSignal.any([this.signal, AbortSignal.timeout(this.timeoutMs)])})
    this.lastProgressAt = performance.now()
    this.answered = true
    return frame.subarray()
  }

  private async run (): Promise<void> {
    while (!this.ended) {
      const request = this.pending[0]
      if (request == null) {
        this.wake = Promise.withResolvers()
        await this.wake.promise
        continue
      }
      if (request.kind === 'has') {
        const {have} = hasReplySchema.parse(unpackWire(await this.read()), 'has reply')
        if (have.length !== request.wants.length) throw new Error(`answered ${have.length} of ${request.wants.length} has queries`)
        request.wants.forEach((want, i) => { (have[i] === true ? this.have : this.lacking).add(want.key) })
      } else {
        for (const want of request.wants) {
          const {found} = blockHeaderSchema.parse(unpackWire(await this.read()), 'block header')
          if (!found) {
            this.have.delete(want.key)
            this.lacking.add(want.key)
            this.swarm.notFound(this, want)
            continue
          }
          void this.swarm.deliver(this, want, await this.read())
        }
      }
      this.pending.shift()
      this.swarm.pump()
    }
  }
}
