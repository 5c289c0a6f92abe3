import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {mkdtemp, readdir, rm, stat, utimes, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createHeliaLight, type Helia} from 'helia'
import {HeliaModelStore} from '../../src/model/heliaModelStore.js'
import {decodeDagPbNode} from '../../src/model/dagPbNode.js'
import {fixedSizeChunker} from '../../src/model/fixedSizeChunker.js'
import {normalizeSha256, parseDescriptor, type ModelDescriptor} from '../../src/model/modelDescriptor.js'
import {ModelError} from '../../src/model/modelError.js'
import {ProgressThrottle, type ModelProgressEvent} from '../../src/model/modelProgress.js'
import {sha256File, verifyFile} from '../../src/model/verifyFile.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {SHARED_MODEL_PATH, STORIES_260K} from '../../src/util/paths.js'

async function collect (source: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const chunk of source) out.push(chunk)
  return out
}

async function * pieces (bytes: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let offset = 0
  for (const size of sizes) {
    yield bytes.subarray(offset, offset + size)
    offset += size
  }
}

describe('fixedSizeChunker', () => {
  it('cuts any input slicing into equal chunks plus a shorter tail, bytes unchanged', async () => {
    const bytes = randomBytes(10_000)
    const chunks = await collect(fixedSizeChunker(4096)(pieces(bytes, [1, 5000, 3000, 1999])))
    assert.deepEqual(chunks.map(chunk => chunk.byteLength), [4096, 4096, 1808])
    assert.deepEqual(Buffer.concat(chunks), bytes)
  })
})

describe('ProgressThrottle', () => {
  it('emits at most once per interval and always the final total', () => {
    const events: ModelProgressEvent[] = []
    const throttle = new ProgressThrottle('fetch', 1000, event => events.push(event), () => 7, 60_000)
    for (let i = 0; i < 100; i++) throttle.add(10)
    throttle.finish()
    assert.equal(events.length, 1)
    assert.deepEqual({...events[0]!.detail, rate: 0}, {phase: 'fetch', bytes: 1000, total: 1000, rate: 0, networkBytes: 7})
    assert.equal(events[0]!.type, 'model:fetch')
  })
})

describe('descriptor checks', () => {
  it('accepts a chain bytes32 (0x, any case) and rejects anything that is not 32 bytes of hex', () => {
    assert.equal(normalizeSha256('0x' + STORIES_260K.sha256.toUpperCase()), STORIES_260K.sha256)
    assert.throws(() => normalizeSha256('abc'), (err: unknown) => err instanceof ModelError && err.code === 'INVALID_DESCRIPTOR')
    const bad: ModelDescriptor = {name: 'x', cid: 'not-a-cid', sha256: STORIES_260K.sha256, sizeBytes: 1, quantization: 'F32'}
    assert.throws(() => parseDescriptor(bad), (err: unknown) => err instanceof ModelError && err.code === 'INVALID_DESCRIPTOR')
  })
})

describe('ModelStore on one offline node', () => {
  let dir: string
  let helia: Helia
  let store: HeliaModelStore
  let descriptor: ModelDescriptor

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cortensor-model-unit-'))
    helia = createHeliaLight()
    await helia.start()
    store = new HeliaModelStore({host: helia, modelDir: join(dir, 'models'), logger: createSilentLogger()})
    const added = await store.addFile(SHARED_MODEL_PATH)
    descriptor = {name: STORIES_260K.name, ...added, quantization: STORIES_260K.quantization}
  })

  after(async () => {
    await helia.stop()
    await rm(dir, {recursive: true, force: true})
  })

  it('addFile gives the sha256 and size of the file and pins its root', async () => {
    assert.equal(descriptor.sha256, STORIES_260K.sha256)
    assert.equal(descriptor.sizeBytes, STORIES_260K.sizeBytes)
    assert.ok(descriptor.cid.startsWith('bafy'), 'CIDv1, dag-pb root over raw leaves')
    const {CID} = await import('multiformats/cid')
    assert.ok(await helia.pins.isPinned(CID.parse(descriptor.cid)))
  })

  it('verifyFile names expected and actual on a mismatch', async () => {
    await verifyFile(SHARED_MODEL_PATH, STORIES_260K.sha256, STORIES_260K.sizeBytes)
    await assert.rejects(verifyFile(SHARED_MODEL_PATH, 'ab'.repeat(32), STORIES_260K.sizeBytes), (err: unknown) =>
      err instanceof ModelError && err.type.code === 'HASH_MISMATCH' && err.type.actual === STORIES_260K.sha256 && err.type.expected === 'ab'.repeat(32))
    await assert.rejects(verifyFile(SHARED_MODEL_PATH, STORIES_260K.sha256, 1), (err: unknown) =>
      err instanceof ModelError && err.type.code === 'SIZE_MISMATCH' && err.type.actual === STORIES_260K.sizeBytes)
    await assert.rejects(verifyFile(join(dir, 'absent'), STORIES_260K.sha256, 1), (err: unknown) =>
      err instanceof ModelError && err.code === 'FILE_NOT_FOUND')
  })

  it('an abort that lands after the file is complete still reports FETCH_ABORTED, as a ModelError', async () => {
    const controller = new AbortController()
    await assert.rejects(store.fetch(descriptor, {
      signal: controller.signal,
      onProgress: event => { if (event.detail.bytes === event.detail.total) controller.abort() }
    }), (err: unknown) => {
      assert.ok(err instanceof ModelError, `a ModelError, not ${String(err)}`)
      assert.equal(err.code, 'FETCH_ABORTED')
      return true
    })
  })

  it('ensureModel uses a good file in place, and replaces a corrupted one', async () => {
    const first = await store.ensureModel(descriptor)
    assert.equal(first.networkBytes, 0)
    assert.equal((await sha256File(first.path)).sha256, STORIES_260K.sha256)

    // Same size, new mtime, wrong bytes: the cached verification must not vouch for it.
    await writeFile(first.path, randomBytes(STORIES_260K.sizeBytes))
    const later = new Date(Date.now() + 5000)
    await utimes(first.path, later, later)
    const again = await store.ensureModel(descriptor)
    assert.equal(again.path, first.path)
    assert.equal((await sha256File(again.path)).sha256, STORIES_260K.sha256)
    assert.ok((await stat(again.path)).size === STORIES_260K.sizeBytes)
    assert.deepEqual((await readdir(join(dir, 'models'))).filter(name => name.endsWith('.partial')), [])
  })
})

describe('UnixFS DAG reading (what a fetch lays out and a pin walks)', () => {
  let dir: string
  let helia: Helia

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cortensor-dag-unit-'))
    helia = createHeliaLight()
    await helia.start()
  })

  after(async () => {
    await helia.stop()
    await rm(dir, {recursive: true, force: true})
  })

  // The CID the code before the block protocol gave for this file (checked against that commit): the registry stores it.
  it('the root CID of a file is unchanged: 1 MiB raw leaves, balanced DAG', async () => {
    const store = new HeliaModelStore({host: helia, modelDir: join(dir, 'models'), logger: createSilentLogger()})
    const added = await store.addFile(SHARED_MODEL_PATH)
    assert.equal(added.cid, 'bafybeih24igyjrodvbs4vv4xxcr573hlqu7yxnmxfjfowtazt47cqszc5i')
  })

  it('decodeDagPbNode gives the links and per-child sizes the importer wrote, and the pin covers every leaf', async () => {
    const path = join(dir, 'three-chunks.bin')
    await writeFile(path, randomBytes(3000))
    const store = new HeliaModelStore({host: helia, modelDir: join(dir, 'models'), logger: createSilentLogger(), chunkSize: 1024})
    const {cid} = await store.addFile(path)
    const {CID} = await import('multiformats/cid')
    const chunks: Uint8Array[] = []
    for await (const chunk of helia.blockstore.get(CID.parse(cid))) chunks.push(chunk)
    const node = decodeDagPbNode(Buffer.concat(chunks))
    assert.deepEqual(node.blocksizes, [1024, 1024, 952])
    assert.equal(node.links.length, 3)
    assert.equal(node.data.byteLength, 0, 'a file root over raw leaves carries no bytes itself')
    for (const link of node.links) {
      assert.equal(link.code, 0x55, 'raw leaf')
      assert.ok(await helia.pins.isPinned(link), 'pinned without its bytes being read')
    }
  })
})
