import {unixfs, type UnixFS} from '@helia/unixfs'
import type {Helia} from 'helia'
import {createHash} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir, open, rename, rm, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {Transform} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import type {CID} from 'multiformats/cid'
import {withCallerSignal} from '../util/abortable.js'
import type {Logger} from '../util/logger.js'
import {fixedSizeChunker} from './fixedSizeChunker.js'
import {parseDescriptor, type ModelDescriptor} from './modelDescriptor.js'
import {ModelError} from './modelError.js'
import {PROGRESS_INTERVAL_MS, ProgressThrottle} from './modelProgress.js'
import type {AddedFile, ModelCallOptions, ModelFile, ModelStore} from './modelStore.js'
import {verifyFile} from './verifyFile.js'

/** The helia node the store imports into and fetches through (the daemon's host). */
export type ModelHost = Pick<Helia, 'blockstore' | 'pins'>

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
 * Model files as IPFS content: imports local files (and seeds them), fetches descriptors'
 * files over bitswap from whichever connected peers have the blocks, and hands out only
 * files whose sha256 and size match the descriptor.
 *
 * Resume comes from the persistent blockstore: every block a fetch receives is stored (and
 * checked against its CID) as it arrives, so a fetch cut short by an abort or a crash is
 * followed by one that reads those blocks locally and asks peers only for the others.
 */
export class HeliaModelStore implements ModelStore {
  private readonly host: ModelHost
  private readonly modelDir: string
  private readonly log: Logger
  private readonly chunkSize: number
  private readonly fetchConcurrency: number
  private readonly stallTimeoutMs: number
  private readonly progressIntervalMs: number
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
    this.fs = unixfs(init.host)
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
   * bitswap answers every connected peer's wants for its blocks.
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
   * Fetches the descriptor's file from connected peers into `modelDir`, verified. The file
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
    const counted = countingBlockstore(this.host.blockstore, watchdog)
    const progress = new ProgressThrottle('fetch', sizeBytes, options.onProgress, () => counted.networkBytes, this.progressIntervalMs)
    const fs = unixfs({blockstore: counted})
    const hash = createHash('sha256')
    const log = this.log.child({model: descriptor.name, cid: descriptor.cid})
    log.info({sizeBytes, finalPath}, 'fetching model')

    try {
      const root = await fs.stat(cid, {signal})
      if (root.type === 'directory') {
        throw new ModelError({code: 'NOT_A_FILE', cid: descriptor.cid}, `${descriptor.cid} is a directory, not a model file`)
      }
      // The root says how long the file is: a wrong size fails here, before any download.
      if (Number(root.size) !== sizeBytes) {
        throw new ModelError({code: 'SIZE_MISMATCH', path: descriptor.cid, expected: sizeBytes, actual: Number(root.size)},
          `${descriptor.cid} is ${root.size} bytes, descriptor says ${sizeBytes}`)
      }

      let lastLogAt = performance.now()
      const tap = new Transform({
        transform (chunk: Uint8Array, _encoding, callback) {
          hash.update(chunk)
          progress.add(chunk.byteLength)
          if (performance.now() - lastLogAt >= 5000) {
            lastLogAt = performance.now()
            log.info({bytes: progress.bytesDone, total: sizeBytes, networkBytes: counted.networkBytes}, 'model fetch progress')
          }
          callback(null, chunk)
        }
      })
      // Extra exporter option: without it the exporter asks for every child of a node at once.
      const catOptions = {signal, blockReadConcurrency: this.fetchConcurrency}
      await pipeline(fs.cat(cid, catOptions), tap, createWriteStream(tempPath), {signal})
      await fsyncFile(tempPath)
      progress.finish()

      const actual = hash.digest('hex')
      const written = (await stat(tempPath)).size
      if (written !== sizeBytes) {
        throw new ModelError({code: 'SIZE_MISMATCH', path: tempPath, expected: sizeBytes, actual: written},
          `fetched ${written} bytes of ${descriptor.cid}, descriptor says ${sizeBytes}`)
      }
      if (actual !== expected) {
        throw new ModelError({code: 'HASH_MISMATCH', path: tempPath, expected, actual},
          `${descriptor.cid} has sha256 ${actual}, descriptor says ${expected}`)
      }
      await rename(tempPath, finalPath)
      const {mtimeMs} = await stat(finalPath)
      this.verified.set(finalPath, {sha256: expected, sizeBytes, mtimeMs})
      await this.pin(cid, options.signal)

      const {networkBytes, localBytes} = counted
      log.info({finalPath, networkBytes, localBytes, seconds: seconds(started)}, 'model fetched, verified and seeded')
      return {path: finalPath, descriptor, networkBytes, localBytes}
    } catch (err) {
      await rm(tempPath, {force: true})
      throw this.fetchError(err, descriptor, progress.bytesDone, sizeBytes, options.signal, watchdog)
    } finally {
      watchdog.stop()
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
    for await (const _ of this.host.pins.add(cid, {signal})) { /* walks the (local) DAG */ }
  }
}

type Blocks = Helia['blockstore']
type UnixFSBlockstore = Parameters<typeof unixfs>[0]['blockstore']

/**
 * The host's blockstore as the UnixFS exporter sees it, counting the bytes of blocks that
 * were already local and of those that had to come from a peer (what a resumed fetch
 * saves), and telling the watchdog that blocks are still arriving.
 */
function countingBlockstore (blocks: Blocks, watchdog: StallWatchdog): UnixFSBlockstore & {networkBytes: number, localBytes: number} {
  const counted = {
    networkBytes: 0,
    localBytes: 0,
    has: blocks.has.bind(blocks),
    put: blocks.put.bind(blocks),
    get: async function * (cid: CID, options?: {signal?: AbortSignal}): AsyncGenerator<Uint8Array> {
      const local = await blocks.has(cid, options)
      for await (const chunk of blocks.get(cid, options)) {
        if (local) counted.localBytes += chunk.byteLength
        else counted.networkBytes += chunk.byteLength
        yield chunk
      }
      watchdog.kick()
    }
  }
  return counted
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

/** The rename that follows must not publish a file whose bytes are still only in the page cache. */
async function fsyncFile (path: string): Promise<void> {
  const handle = await open(path, 'r+')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

function seconds (since: number): number {
  return Math.round(performance.now() - since) / 1000
}
