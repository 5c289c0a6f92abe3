import {multiaddr} from '@multiformats/multiaddr'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Writable} from 'node:stream'
import {after, before, describe, it} from 'node:test'
import {HeliaModelStore} from '../../src/model/heliaModelStore.js'
import type {ModelDescriptor} from '../../src/model/modelDescriptor.js'
import {sha256File} from '../../src/model/verifyFile.js'
import {createHost, dialAddresses, type Host} from '../../src/runtime/host.js'
import {createRootLogger, createSilentLogger, type Logger} from '../../src/util/logger.js'
import {writePseudoRandomFile} from '../support/pseudoRandomFile.js'

const MIB = 1024 * 1024
const FILE_BYTES = 32 * MIB

interface Node {
  name: string
  host: Host
  store: HeliaModelStore
  peerId: string
}

/** What the block protocol adds to bitswap: many sources per fetch, failover, block checks, admission. */
describe('model blocks from every peer that has them (block protocol on loopback)', {timeout: 90_000}, () => {
  let root: string
  let filePath: string
  let descriptor: ModelDescriptor
  const nodes: Node[] = []

  async function startNode (name: string, init: {isAllowedPeer?: (peerId: string) => boolean, logger?: Logger, progressIntervalMs?: number} = {}): Promise<Node> {
    const dataDir = join(root, name)
    const logger = init.logger ?? createSilentLogger()
    const host = await createHost({privateKey: randomBytes(32), listen: ['/ip4/127.0.0.1/tcp/0'], dataDir, logger: createSilentLogger()})
    // A silent peer is dropped after 20 s; any stall longer than that would fail the fetch.
    const store = new HeliaModelStore({host, modelDir: join(dataDir, 'models'), logger, stallTimeoutMs: 20_000, isAllowedPeer: init.isAllowedPeer, progressIntervalMs: init.progressIntervalMs})
    const node = {name, host, store, peerId: host.libp2p.peerId.toString()}
    nodes.push(node)
    return node
  }

  async function seeder (name: string): Promise<Node> {
    const node = await startNode(name)
    const added = await node.store.addFile(filePath)
    assert.equal(added.cid, descriptor.cid, 'the same bytes give the same CID on every node')
    return node
  }

  async function connect (from: Node, ...to: Node[]): Promise<void> {
    for (const peer of to) await from.host.libp2p.dial(multiaddr(dialAddresses(peer.host)[0]!))
  }

  async function assertVerified (path: string): Promise<void> {
    assert.equal((await sha256File(path)).sha256, descriptor.sha256)
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'cortensor-block-swarm-'))
    filePath = join(root, 'model.bin')
    await writePseudoRandomFile(filePath, FILE_BYTES, 0x1b873593)
    const importer = await startNode('importer')
    const added = await importer.store.addFile(filePath)
    descriptor = {name: 'swarm-32MiB', ...added, quantization: 'none'}
  })

  after(async () => {
    await Promise.allSettled(nodes.map(async node => node.host.stop()))
    await rm(root, {recursive: true, force: true, maxRetries: 3})
  })

  it('takes blocks from two seeders at once', async () => {
    const [a, b] = [nodes[0]!, await seeder('b')]
    const fetcher = await startNode('fetcher')
    await connect(fetcher, a, b)
    const result = await fetcher.store.fetch(descriptor)
    await assertVerified(result.path)
    const sources = result.sources ?? {}
    assert.ok((sources[a.peerId] ?? 0) > 0 && (sources[b.peerId] ?? 0) > 0, `both seeders served blocks: ${JSON.stringify(sources)}`)
    assert.equal(sources.bitswap, undefined, 'nothing was left to bitswap')
  })

  it('rejects a peer that serves blocks not matching their CID and takes them from another', async () => {
    const good = nodes[0]!
    // A node holding the file's DAG with every leaf's bytes altered: whichever leaf it is asked for first is wrong.
    const liar = await startNode('liar')
    for await (const {cid, bytes} of good.host.blockstore.getAll()) {
      const chunks: Uint8Array[] = []
      for await (const chunk of bytes) chunks.push(chunk)
      const block = Buffer.concat(chunks)
      // getAll names blocks by multihash only (every CID comes back raw), so leaves are told by size.
      await liar.host.blockstore.put(cid, block.byteLength === MIB ? block.map(byte => byte ^ 0xff) : block)
    }
    const lines: string[] = []
    const logger = createRootLogger({level: 'warn', destination: new Writable({write (chunk, _encoding, done) { lines.push(String(chunk)); done() }})})
    const fetcher = await startNode('fetcher-2', {logger})
    await connect(fetcher, liar, good)
    const result = await fetcher.store.fetch(descriptor)
    await assertVerified(result.path)
    const rejected = lines.map(line => JSON.parse(line) as {msg: string, peer?: string}).filter(line => line.msg === 'peer sent a block that does not match its CID')
    assert.ok(rejected.some(line => line.peer === liar.peerId), 'the altered block was caught and its sender named')
    // It may have served the DAG's inner nodes, which it holds unaltered, but no leaf.
    assert.ok((result.sources?.[liar.peerId] ?? 0) < MIB, `no leaf the liar sent was stored: ${JSON.stringify(result.sources)}`)
  })

  it('refuses the block protocol to a peer that is not admitted (bitswap still serves it)', async () => {
    const outsider = await startNode('outsider')
    const guarded = await startNode('guarded', {isAllowedPeer: peer => peer !== outsider.peerId})
    await guarded.store.addFile(filePath)
    await connect(outsider, guarded)
    const result = await outsider.store.fetch(descriptor)
    await assertVerified(result.path)
    assert.equal(result.sources?.[guarded.peerId], undefined, 'no block came over the block protocol')
    assert.ok((result.sources?.bitswap ?? 0) >= FILE_BYTES, 'every block came over bitswap instead')
  })

  it('finishes from the other seeder, without stalling, when one is stopped mid-fetch', async () => {
    const [a, b] = [nodes[0]!, nodes.find(node => node.name === 'b')!]
    const fetcher = await startNode('fetcher-3', {progressIntervalMs: 0})
    await connect(fetcher, a, b)
    let stopping: Promise<void> | undefined
    const started = performance.now()
    const result = await fetcher.store.fetch(descriptor, {
      onProgress: ({detail}) => { if (stopping == null && detail.bytes >= FILE_BYTES / 4) stopping = b.host.stop().then(() => {}) }
    })
    await stopping
    await assertVerified(result.path)
    assert.ok(stopping != null, 'the seeder was stopped during the fetch')
    assert.ok((result.sources?.[a.peerId] ?? 0) > 0)
    assert.ok(performance.now() - started < 15_000, 'no peer timeout was waited out')
  })
})
