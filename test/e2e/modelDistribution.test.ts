import {multiaddr} from '@multiformats/multiaddr'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {mkdtemp, readdir, rm, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {HeliaModelStore} from '../../src/model/heliaModelStore.js'
import type {ModelDescriptor} from '../../src/model/modelDescriptor.js'
import {ModelError} from '../../src/model/modelError.js'
import type {ModelProgressEvent} from '../../src/model/modelProgress.js'
import {sha256File} from '../../src/model/verifyFile.js'
import {createHost, dialAddresses, type Host} from '../../src/runtime/host.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {SHARED_MODEL_PATH, STORIES_260K} from '../../src/util/paths.js'
import {writePseudoRandomFile} from '../support/pseudoRandomFile.js'

const MIB = 1024 * 1024
const BIG_FILE_BYTES = 64 * MIB

interface Node {
  name: string
  key: Uint8Array
  dataDir: string
  host: Host
  store: HeliaModelStore
}

/** Same bytes on every run, incompressible: xorshift32 over 32-bit words, written 1 MiB at a time. */

describe('model distribution over IPFS (helia + bitswap on loopback)', {timeout: 120_000}, () => {
  let root: string
  const nodes: Node[] = []
  let seeder: Node
  let stories: ModelDescriptor
  let big: ModelDescriptor

  async function startNode (name: string, reuse?: {key: Uint8Array, dataDir: string}, progressIntervalMs?: number): Promise<Node> {
    const key = reuse?.key ?? randomBytes(32)
    const dataDir = reuse?.dataDir ?? join(root, name)
    const logger = createSilentLogger()
    const host = await createHost({privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], dataDir, logger})
    const store = new HeliaModelStore({host, modelDir: join(dataDir, 'models'), logger, stallTimeoutMs: 20_000, progressIntervalMs})
    const node = {name, key, dataDir, host, store}
    nodes.push(node)
    return node
  }

  async function connect (from: Node, ...to: Node[]): Promise<void> {
    for (const peer of to) {
      await from.host.libp2p.dial(multiaddr(dialAddresses(peer.host)[0]!))
    }
  }

  async function stopNode (node: Node): Promise<void> {
    await node.host.stop()
    nodes.splice(nodes.indexOf(node), 1)
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'cortensor-models-'))
    const bigPath = join(root, 'big.bin')
    await writePseudoRandomFile(bigPath, BIG_FILE_BYTES)
    seeder = await startNode('seeder')
    const added = await seeder.store.addFile(SHARED_MODEL_PATH)
    assert.equal(added.sha256, STORIES_260K.sha256, 'import hashes the file on the way in')
    assert.equal(added.sizeBytes, STORIES_260K.sizeBytes)
    stories = {name: STORIES_260K.name, cid: added.cid, sha256: added.sha256, sizeBytes: added.sizeBytes, quantization: STORIES_260K.quantization}
    const addedBig = await seeder.store.addFile(bigPath)
    big = {name: 'pseudo-random-64MiB', cid: addedBig.cid, sha256: addedBig.sha256, sizeBytes: addedBig.sizeBytes, quantization: 'none'}
  })

  after(async () => {
    await Promise.allSettled(nodes.map(async node => node.host.stop()))
    await rm(root, {recursive: true, force: true})
  })

  it('three nodes fetch both files at once and each gets byte-identical, verified copies', async () => {
    const fetchers = await Promise.all(['b', 'c', 'd'].map(async name => startNode(name)))
    for (const fetcher of fetchers) await connect(fetcher, seeder)
    const events: ModelProgressEvent[] = []
    const results = await Promise.all(fetchers.flatMap(fetcher => [
      fetcher.store.fetch(stories),
      fetcher.store.fetch(big, {onProgress: event => { if (fetcher.name === 'b') events.push(event) }})
    ]))
    for (const result of results) {
      const onDisk = await sha256File(result.path)
      assert.equal(onDisk.sha256, result.descriptor.sha256, `${result.path} hashes to its descriptor`)
      assert.equal(onDisk.sizeBytes, result.descriptor.sizeBytes)
    }
    assert.equal((await sha256File(results[0]!.path)).sha256, STORIES_260K.sha256)

    // Progress: typed, bounded in rate, ending at the total.
    const last = events.at(-1)!
    assert.equal(last.type, 'model:fetch')
    assert.equal(last.detail.bytes, BIG_FILE_BYTES)
    assert.equal(last.detail.total, BIG_FILE_BYTES)
    assert.ok(events.every(event => event.detail.rate >= 0 && event.detail.bytes <= event.detail.total))
    assert.ok(events.length < 10 + 4 * 60, `at most ~4 events a second (${events.length})`)
  })

  it('a fetch aborted half-way resumes after a restart and pulls only the missing blocks', async () => {
    // An event per block, so the abort lands at 50 % and not at the next quarter second.
    const first = await startNode('resumer', undefined, 0)
    await connect(first, seeder)
    const controller = new AbortController()
    await assert.rejects(first.store.fetch(big, {
      signal: controller.signal,
      onProgress: event => { if (event.detail.bytes >= BIG_FILE_BYTES / 2) controller.abort() }
    }), (err: unknown) => {
      assert.ok(err instanceof ModelError, String(err))
      assert.equal(err.code, 'FETCH_ABORTED')
      return true
    })
    const finalPath = first.store.pathFor(big)
    assert.deepEqual(await readdir(join(first.dataDir, 'models')), [], 'neither a final nor a .partial file is left')

    // A crash is a restart on the same data dir: only the blockstore survives.
    await stopNode(first)
    const again = await startNode('resumer', {key: first.key, dataDir: first.dataDir})
    await connect(again, seeder)
    const resumed = await again.store.fetch(big)
    assert.equal(resumed.path, finalPath)
    assert.equal((await sha256File(resumed.path)).sha256, big.sha256)
    assert.ok(resumed.localBytes >= 0.4 * BIG_FILE_BYTES, `blocks from the first attempt are reused (${resumed.localBytes} bytes local)`)
    assert.ok(resumed.networkBytes <= 0.6 * BIG_FILE_BYTES, `only the rest is transferred (${resumed.networkBytes} of ${BIG_FILE_BYTES} bytes)`)

    // Once on disk, ensureModel neither fetches nor re-hashes.
    const ensured = await again.store.ensureModel(big)
    assert.equal(ensured.networkBytes, 0)
    assert.equal(ensured.path, finalPath)
  })

  it('refuses a file whose sha256 does not match the descriptor and leaves nothing loadable', async () => {
    const [fetcher] = nodes.filter(node => node.name === 'b')
    const forged: ModelDescriptor = {...stories, name: 'forged', sha256: '00'.repeat(32)}
    await assert.rejects(fetcher!.store.fetch(forged), (err: unknown) => {
      assert.ok(err instanceof ModelError)
      assert.equal(err.type.code, 'HASH_MISMATCH')
      assert.ok(err.type.code === 'HASH_MISMATCH' && err.type.expected === forged.sha256 && err.type.actual === STORIES_260K.sha256)
      return true
    })
    const finalPath = fetcher!.store.pathFor(forged)
    await assert.rejects(stat(finalPath), {code: 'ENOENT'})
    await assert.rejects(stat(`${finalPath}.partial`), {code: 'ENOENT'})

    const wrongSize: ModelDescriptor = {...stories, name: 'wrong-size', sizeBytes: stories.sizeBytes + 1}
    await assert.rejects(fetcher!.store.fetch(wrongSize), (err: unknown) => err instanceof ModelError && err.code === 'SIZE_MISMATCH')
  })

  it('a node that fetched the file seeds it to a newcomer after the original seeder is gone', async () => {
    await stopNode(seeder)
    const [b, c] = nodes.filter(node => node.name === 'b' || node.name === 'c')
    const newcomer = await startNode('e')
    await connect(newcomer, b!, c!)
    const result = await newcomer.store.ensureModel(big)
    assert.equal(result.networkBytes >= BIG_FILE_BYTES, true)
    assert.equal((await sha256File(result.path)).sha256, big.sha256)
  })
})
