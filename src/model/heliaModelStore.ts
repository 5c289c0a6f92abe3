import {unixfs, type UnixFS} from '@helia/unixfs'
import type {Helia} from 'helia'
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdir, open, rename, rm, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {CID} from 'multiformats/cid'
import {withCallerSignal} from '../util/abortable.js'
import type {Logger} from '../util/logger.js'
import {BlockServer, type BlockServerLibp2p} from './blockServer.js'
import {BlockSwarm, type BlockSwarmLibp2p} from './blockSwarm.js'
import {DAG_PB_CODE, decodeDagPbNode} from './dagPbNode.js'
import {readBlock} from './readBlock.js'
import {fixedSizeChunker} from './fixedSizeChunker.js'
import {parseDescriptor, type ModelDescriptor} from './modelDescriptor.js'
import {ModelError} from './modelError.js'
import {PROGRESS_INTERVAL_MS, ProgressThrottle} from './modelProgress.js'
import type {AddedFile, ModelCallOptions, ModelFile, ModelStore} from './modelStore.js'
import {unixfsFileWalker} from './unixfsFileWalker.js'
import {sha256File, verifyFile} from './verifyFile.js'

/**
 * The helia node the store imports into and fetches through (the daemon's host). With
 * `libp2p`, the store serves and fetches blocks over BLOCK_PROTOCOL as well as bitswap;
 * without it (a bare `createHeliaLight()` used only to compute a CID) it is offline.
 */
export type ModelHost = Pick<Helia, 'blockstore' | 'pins'> & {libp2p?: BlockServerLibp2p & BlockSwarmLibp2p}

export interface HeliaModelStoreInit {
  host: ModelHost
  /** Verified model files live here under `<name>-<sha256 prefix>.gguf`; fetches write `*.partial` beside them. */
  modelDir: string
  logger: Logger
  /** UnixFS leaf size. Part of the CID: every node of a network must use the same value. */
  chunkSize?: number
  /** Blocks requested at once while fetching: bounds memory to about `fetchConcurrency × chunkSize`. */
  fetchConcurrency?: number
  /** A fetch that receives no block for this long fails with `FETCH_STALLED` instead of waiting forever. */
  stallTimeoutMs?: number
  /** Least time between two progress events of one call. */
  progressIntervalMs?: number
  /**
   * Whether a peer (libp2p peer id, as a string) may fetch blocks from this node and send
   * blocks to it over BLOCK_PROTOCOL; the daemon passes its admission check. Absent: every
   * peer may (tests, benchmarks). Bitswap is not gated by it.
   */
  isAllowedPeer?: (peerId: string) => boolean
}

/**
 * 1 MiB raw leaves: the largest block every bitswap implementation accepts (boxo and helia
 * cap messages at 2 MiB), and 4× fewer blocks and wants than the 256 KiB kubo default.
 * Measured in test/bench/ipfs.ts.
 */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024
export const DEFAULT_FETCH_CONCURRENCY = 16
export const DEFAULT_STALL_TIMEOUT_MS = 60_000

/** A file at its final path as last hashed: while size and mtime hold, it is not hashed again. */
interface VerifiedStamp {
  sha256: string
  sizeBytes: number
  mtimeMs: number
}

/**
 * Model files as IPFS content: imports local files, seeds every block it holds (imported,
 * fetched, or still being fetched) over BLOCK_PROTOCOL and bitswap, fetches descriptors'
 * files from all connected peers that have the blocks at once (bitswap for the rest), and
 * hands out only files whose sha256 and size match the descriptor.
 *
 * Resume comes from the persistent blockstore: every block a fetch receives is stored (and
 * checked against its CID) as it arrives, so a fetch cut short by an abort or a crash is
 * followed by one that reads those blocks locally (checking them again) and asks peers only
 * for the others.
 */
export class HeliaModelStore implements ModelStore {
  private readonly host: ModelHost
  private readonly modelDir: string
  private readonly log: Logger
  private readonly chunkSize: number
  private readonly fetchConcurrency: number
  private readonly stallTimeoutMs: number
  private readonly progressIntervalMs: number
  private readonly isAllowedPeer: (peerId: string) => boolean
  private readonly fs: UnixFS
  private readonly verified = new Map<string, VerifiedStamp>()
  /** Two callers wanting the same model share one fetch (and one `.partial` file). */
  private readonly inFlight = new Map<string, Promise<ModelFile>>()

  constructor (init: HeliaModelStoreInit) {
    this.host = init.host
    this.modelDir = init.modelDir
    this.log = init.logger
    this.chunkSize = init.chunkSize ?? DEFAULT_CHUNK_SIZE
    this.fetchConcurrency = init.fetchConcurrency ?? DEFAULT_FETCH_CONCURRENCY
    this.stallTimeoutMs = init.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS
    this.progressIntervalMs = init.progressIntervalMs ?? PROGRESS_INTERVAL_MS
    this.isAllowedPeer = init.isAllowedPeer ?? (() => true)
    this.fs = unixfs(init.host)
    if (init.host.libp2p != null) {
      // Registered as the store is made, not on a first fetch: a node whose model is already
      // on disk (or that imported it) must seed it too. The handler is in place synchronously.
      const server = new BlockServer({libp2p: init.host.libp2p, blockstore: init.host.blockstore, isAllowedPeer: this.isAllowedPeer, logger: this.log.child({component: 'blockServer'})})
      server.start().catch((err: unknown) => { this.log.warn({err}, 'could not register the model block protocol; serving over bitswap only') })
    }
  }

  /** Where the verified file of `descriptor` lives (whether or not it is there yet). */
  pathFor (descriptor: ModelDescriptor): string {
    const {sha256} = parseDescriptor(descriptor)
    const safeName = descriptor.name.replace(/[^A-Za-z0-9._-]/g, '_')
    return join(this.modelDir, `${safeName}-${sha256.slice(0, 16)}.gguf`)
  }

  /**
   * Imports a local file as a UnixFS file (CIDv1, raw 1 MiB leaves, no mtime/mode, so the
   * CID depends on the bytes only), hashing it in the same pass, then pins it: from then on
   * the block protocol and bitswap serve its blocks to every connected peer.
   */
  async addFile (path: string, options: ModelCallOptions = {}): Promise<AddedFile> {
    const {size: total} = await statOrNotFound(path)
    const hash = createHash('sha256')
    const progress = new ProgressThrottle('import', total, options.onProgress, undefined, this.progressIntervalMs)
    const started = performance.now()
    const source = createReadStream(path, {highWaterMark: this.chunkSize, signal: options.signal})
    async function * hashing (): AsyncGenerator<Uint8Array> {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        hash.update(chunk)
        progress.add(chunk.byteLength)
        yield chunk
      }
    }
    const cid = await this.fs.addByteStream(hashing(), {
      cidVersion: 1,
      rawLeaves: true,
      chunker: fixedSizeChunker(this.chunkSize),
      signal: options.signal
    })
    progress.finish()
    const added = {cid: cid.toString(), sha256: hash.digest('hex'), sizeBytes: progress.bytesDone}
    await this.pin(cid, options.signal)
    this.log.info({...added, path, seconds: seconds(started)}, 'model file added and seeded')
    return added
  }

  /**
   * Fetches the descriptor's file from connected peers into `modelDir`, verified: blocks come
   * from every peer that has them (BlockSwarm), each checked against its CID. The file
   * is written to `<final>.partial`, hashed on the way, and renamed into place only when its
   * sha256 and size match; otherwise it is deleted and `HASH_MISMATCH`/`SIZE_MISMATCH`
   * thrown, so a bad file can never be found at the final path. Afterwards the file is
   * pinned, so this node seeds it to the next ones.
   */
  async fetch (descriptor: ModelDescriptor, options: ModelCallOptions = {}): Promise<ModelFile> {
    const finalPath = this.pathFor(descriptor)
    const running = this.inFlight.get(finalPath)
    if (running != null) return running
    const fetching = this.fetchOnce(descriptor, finalPath, options).finally(() => this.inFlight.delete(finalPath))
    this.inFlight.set(finalPath, fetching)
    return fetching
  }

  /**
   * The file for `descriptor`, fetching it only when the final path does not already hold
   * the right bytes. A file found there is hashed once; later calls trust it while its size
   * and mtime are unchanged. A wrong file there is deleted and fetched again.
   */
  async ensureModel (descriptor: ModelDescriptor, options: ModelCallOptions = {}): Promise<ModelFile> {
    const {sha256, sizeBytes} = parseDescriptor(descriptor)
    const path = this.pathFor(descriptor)
    const found = await stat(path).catch(() => undefined)
    if (found == null) return this.fetch(descriptor, options)

    const stamp = this.verified.get(path)
    const unchanged = stamp?.sha256 === sha256 && stamp.sizeBytes === found.size && stamp.mtimeMs === found.mtimeMs
    if (!unchanged) {
      try {
        await verifyFile(path, sha256, sizeBytes, options)
      } catch (err) {
        if (!(err instanceof ModelError)) throw err
        this.log.warn({path, err}, 'model file at final path does not match its descriptor; fetching it again')
        this.verified.delete(path)
        await rm(path, {force: true})
        return this.fetch(descriptor, options)
      }
      this.verified.set(path, {sha256, sizeBytes, mtimeMs: found.mtimeMs})
    }
    return {path, descriptor, networkBytes: 0, localBytes: sizeBytes}
  }

  private async fetchOnce (descriptor: ModelDescriptor, finalPath: string, options: ModelCallOptions): Promise<ModelFile> {
    const {cid, sha256: expected, sizeBytes} = parseDescriptor(descriptor)
    const started = performance.now()
    await mkdir(this.modelDir, {recursive: true})
    const tempPath = `${finalPath}.partial`
    // A `.partial` left by a crash is not resumed from: its blocks are in the blockstore,
    // which, unlike the file, is checked block by block against the CID.
    await rm(tempPath, {force: true})

    const watchdog = new StallWatchdog(this.stallTimeoutMs)
    const signal = withCallerSignal(watchdog.signal, options.signal)
    const log = this.log.child({model: descriptor.name, cid: descriptor.cid})
    const counted = {networkBytes: 0, localBytes: 0}
    const progress = new ProgressThrottle('fetch', sizeBytes, options.onProgress, () => counted.networkBytes, this.progressIntervalMs)
    /** File offsets of each leaf, by CID: known before any leaf is asked for. */
    const placements = new Map<string, number[]>()
    const file = await open(tempPath, 'w')
    let lastLogAt = performance.now()
    const place = async (bytes: Uint8Array, offset: number, local: boolean): Promise<void> => {
      if (offset + bytes.byteLength > sizeBytes) {
        throw new ModelError({code: 'SIZE_MISMATCH', path: tempPath, expected: sizeBytes, actual: offset + bytes.byteLength},
          `${descriptor.cid} has bytes past ${sizeBytes}, the descriptor's size`)
      }
      await file.write(bytes, 0, bytes.byteLength, offset)
      if (local) counted.localBytes += bytes.byteLength
      else counted.networkBytes += bytes.byteLength
      progress.add(bytes.byteLength)
      if (performance.now() - lastLogAt >= 5000) {
        lastLogAt = performance.now()
        log.info({bytes: progress.bytesDone, total: sizeBytes, ...counted}, 'model fetch progress')
      }
    }
    const swarm = new BlockSwarm({
      libp2p: this.host.libp2p,
      blockstore: this.host.blockstore,
      isAllowedPeer: this.isAllowedPeer,
      maxBlocksInFlight: this.fetchConcurrency,
      // Leaves land in any order: each is written at its offset as soon as it is verified and stored.
      onBlock: async (blockCid, bytes, from) => {
        watchdog.kick()
        for (const offset of placements.get(blockCid.toString()) ?? []) await place(bytes, offset, from === 'local')
      },
      logger: log,
      signal
    })
    const fs = unixfs({blockstore: this.host.blockstore})
    log.info({sizeBytes, finalPath}, 'fetching model')

    try {
      await swarm.fetch([cid])
      const root = await fs.stat(cid, {signal, offline: true})
      if (root.type === 'directory') {
        throw new ModelError({code: 'NOT_A_FILE', cid: descriptor.cid}, `${descriptor.cid} is a directory, not a model file`)
      }
      // The root says how long the file is: a wrong size fails here, before any download.
      if (Number(root.size) !== sizeBytes) {
        throw new ModelError({code: 'SIZE_MISMATCH', path: descriptor.cid, expected: sizeBytes, actual: Number(root.size)},
          `${descriptor.cid} is ${root.size} bytes, descriptor says ${sizeBytes}`)
      }
      await layOut(cid, {swarm, blocks: this.host.blockstore, placements, place, signal, descriptorCid: descriptor.cid})
      await swarm.fetch([...placements.keys()].map(key => CID.parse(key)))
      await file.sync()
      progress.finish()
      // The last progress event may be what made the caller abort.
      signal.throwIfAborted()

      const written = (await file.stat()).size
      if (written !== sizeBytes) {
        throw new ModelError({code: 'SIZE_MISMATCH', path: tempPath, expected: sizeBytes, actual: written},
          `fetched ${written} bytes of ${descriptor.cid}, descriptor says ${sizeBytes}`)
      }
      // Leaves were written out of order, so the file is hashed once it is whole.
      const {sha256: actual} = await sha256File(tempPath, {signal})
      if (actual !== expected) {
        throw new ModelError({code: 'HASH_MISMATCH', path: tempPath, expected, actual},
          `${descriptor.cid} has sha256 ${actual}, descriptor says ${expected}`)
      }
      await file.close()
      await rename(tempPath, finalPath)
      const {mtimeMs} = await stat(finalPath)
      this.verified.set(finalPath, {sha256: expected, sizeBytes, mtimeMs})
      await this.pin(cid, options.signal)

      const {networkBytes, localBytes} = counted
      const sources = Object.fromEntries(swarm.bytesFrom)
      log.info({finalPath, networkBytes, localBytes, sources, seconds: seconds(started)}, 'model fetched, verified and seeded')
      return {path: finalPath, descriptor, networkBytes, localBytes, sources}
    } catch (err) {
      await file.close().catch(() => {})
      await rm(tempPath, {force: true})
      throw this.fetchError(err, descriptor, progress.bytesDone, sizeBytes, options.signal, watchdog)
    } finally {
      watchdog.stop()
      swarm.close()
      await file.close().catch(() => {})
    }
  }

  private fetchError (err: unknown, descriptor: ModelDescriptor, bytes: number, total: number, signal: AbortSignal | undefined, watchdog: StallWatchdog): ModelError {
    if (err instanceof ModelError) return err
    const cid = descriptor.cid
    if (signal?.aborted === true) {
      return new ModelError({code: 'FETCH_ABORTED', cid, bytes, total}, `fetch of ${cid} aborted after ${bytes} of ${total} bytes`, {cause: signal.reason})
    }
    if (watchdog.signal.aborted) {
      return new ModelError({code: 'FETCH_STALLED', cid, bytes, total, stallTimeoutMs: this.stallTimeoutMs},
        `no block of ${cid} arrived for ${this.stallTimeoutMs} ms (${bytes} of ${total} bytes done)`, {cause: err})
    }
    return new ModelError({code: 'FETCH_FAILED', cid}, `fetch of ${cid} failed: ${(err as Error).message}`, {cause: err})
  }

  private async pin (cid: CID, signal: AbortSignal | undefined): Promise<void> {
    if (await this.host.pins.isPinned(cid, {signal})) return
    for await (const _ of this.host.pins.add(cid, {signal, walker: unixfsFileWalker()})) { /* walks the (local) DAG */ }
  }
}

type Blocks = Helia['blockstore']

interface LayOutContext {
  swarm: BlockSwarm
  blocks: Blocks
  placements: Map<string, number[]>
  /** Writes bytes the DAG's nodes carry themselves (a raw root, dag-pb leaves), which are local by then. */
  place: (bytes: Uint8Array, offset: number, local: boolean) => Promise<void>
  signal: AbortSignal
  descriptorCid: string
}

/**
 * Fills `placements` with the file offset of every leaf of the file `root`, fetching the
 * DAG's inner nodes level by level (two levels for files up to 174² MiB): each child starts
 * where the previous one's `blocksizes` entry ends.
 */
async function layOut (root: CID, context: LayOutContext): Promise<void> {
  const {swarm, blocks, placements, place, signal, descriptorCid} = context
  if (root.code !== DAG_PB_CODE) {
    // A file of one block: the root is the file.
    await place(await readBlock(blocks, root, {offline: true, signal}), 0, !swarm.fetchedFromNetwork(root))
    return
  }
  for (let level = [{cid: root, offset: 0}]; level.length > 0;) {
    await swarm.fetch(level.filter(({cid}) => cid.code === DAG_PB_CODE).map(({cid}) => cid))
    const next: typeof level = []
    for (const {cid, offset} of level) {
      if (cid.code !== DAG_PB_CODE) {
        const key = cid.toString()
        placements.set(key, [...placements.get(key) ?? [], offset])
        continue
      }
      const node = decodeDagPbNode(await readBlock(blocks, cid, {offline: true, signal}))
      if (node.links.length === 0) {
        await place(node.data, offset, !swarm.fetchedFromNetwork(cid))
        continue
      }
      if (node.blocksizes.length !== node.links.length || node.data.byteLength > 0) {
        throw new ModelError({code: 'FETCH_FAILED', cid: descriptorCid}, `${descriptorCid} is not a UnixFS file DAG this node can lay out (node ${cid.toString()})`)
      }
      let childOffset = offset
      node.links.forEach((link, i) => {
        next.push({cid: link, offset: childOffset})
        childOffset += node.blocksizes[i]!
      })
    }
    level = next
  }
}

/** Aborts its signal when `kick` has not been called for `timeoutMs`. */
class StallWatchdog {
  private readonly controller = new AbortController()
  private timer: NodeJS.Timeout

  constructor (private readonly timeoutMs: number) {
    this.timer = this.arm()
  }

  get signal (): AbortSignal {
    return this.controller.signal
  }

  kick (): void {
    clearTimeout(this.timer)
    this.timer = this.arm()
  }

  stop (): void {
    clearTimeout(this.timer)
  }

  private arm (): NodeJS.Timeout {
    const timer = setTimeout(() => this.controller.abort(new Error(`no block for ${this.timeoutMs} ms`)), this.timeoutMs)
    timer.unref()
    return timer
  }
}

async function statOrNotFound (path: string): Promise<{size: number}> {
  try {
    return await stat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ModelError({code: 'FILE_NOT_FOUND', path}, `no file at ${path}`, {cause: err})
    }
    throw err
  }
}

function seconds (since: number): number {
  return Math.round(performance.now() - since) / 1000
}
