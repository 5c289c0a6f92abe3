import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {EnginePool, type PooledModel} from '../../src/inference/enginePool.js'
import {toModelId} from '../../src/protocols/modelId.js'
import {createSilentLogger} from '../../src/util/logger.js'

const MIB = 1024 * 1024
const model = (id: number, mib: number): PooledModel => ({id: toModelId(id), path: `/models/${id}.gguf`, sha256: String(id).repeat(64).slice(0, 64), sizeBytes: mib * MIB})

/** A pool of stand-in engines (the unit under test is the budget, not llama.cpp), with a log of opens and closes. */
function poolOf (budgetMiB: number, opts: {failOpen?: string} = {}): {pool: EnginePool<{id: string}>, events: string[]} {
  const events: string[] = []
  const pool = new EnginePool<{id: string}>({
    budgetBytes: budgetMiB * MIB,
    open: async (m) => {
      if (m.id === opts.failOpen) throw new Error(`cannot load ${m.id}`)
      events.push(`open ${m.id}`)
      return {id: m.id}
    },
    close: async (e) => { events.push(`close ${e.id}`) },
    logger: createSilentLogger()
  })
  return {pool, events}
}

describe('engine pool: models within a memory budget', () => {
  it('refuses a model larger than the whole budget, naming the setting', () => {
    const {pool} = poolOf(4)
    assert.throws(() => { pool.add(model(1, 5)) }, {code: 'MODEL_TOO_LARGE', message: /inference\.memoryBudgetMiB/})
  })

  it('keeps models that fit together loaded, and unloads the least recently used idle one to make room', async () => {
    const {pool, events} = poolOf(10)
    for (const [id, mib] of [[1, 4], [2, 4], [3, 4]] as const) pool.add(model(id, mib))
    ;(await pool.acquire(toModelId(1))).release()
    ;(await pool.acquire(toModelId(2))).release()
    ;(await pool.acquire(toModelId(1))).release()
    assert.deepEqual(pool.loaded().sort(), ['1', '2'])
    ;(await pool.acquire(toModelId(3))).release()
    assert.deepEqual(pool.loaded().sort(), ['1', '3'], 'model 2 was used least recently')
    assert.deepEqual(events, ['open 1', 'open 2', 'close 2', 'open 3'])
  })

  it('waits for a busy model to be released rather than unload it under a running task', async () => {
    const {pool, events} = poolOf(6)
    pool.add(model(1, 4))
    pool.add(model(2, 4))
    const busy = await pool.acquire(toModelId(1))
    let got = false
    const waiting = pool.acquire(toModelId(2)).then(lease => { got = true; return lease })
    await new Promise(resolve => setTimeout(resolve, 20))
    assert.equal(got, false, 'no room while model 1 runs')
    busy.release()
    const lease = await waiting
    assert.equal(lease.engine.id, '2')
    assert.deepEqual(events, ['open 1', 'close 1', 'open 2'])
  })

  it('serves callers of two models that do not fit together in turn, never unloading one under its caller', async () => {
    const {pool} = poolOf(6)
    pool.add(model(1, 4))
    pool.add(model(2, 4))
    const inUse = new Map<string, number>()
    let overlaps = 0
    const use = async (id: number): Promise<void> => {
      const lease = await pool.acquire(toModelId(id), AbortSignal.timeout(2_000))
      inUse.set(lease.engine.id, (inUse.get(lease.engine.id) ?? 0) + 1)
      if ([...inUse.values()].filter(n => n > 0).length > 1) overlaps++
      await new Promise(resolve => setTimeout(resolve, 10))
      inUse.set(lease.engine.id, (inUse.get(lease.engine.id) ?? 0) - 1)
      lease.release()
    }
    await Promise.all([use(1), use(2), use(1), use(2), use(2), use(1)])
    assert.equal(overlaps, 0, 'the two models were never loaded at once')
  })

  it('keeps a model in steady use from shutting out another one for ever', async () => {
    const {pool} = poolOf(6)
    pool.add(model(1, 4))
    pool.add(model(2, 4))
    const first = await pool.acquire(toModelId(1))
    const order: string[] = []
    const waiting = pool.acquire(toModelId(2), AbortSignal.timeout(2_000)).then(lease => { order.push('model 2'); return lease })
    await new Promise(resolve => setTimeout(resolve, 10))
    // More work for model 1 arrives while model 2 waits: it queues behind model 2 instead of keeping model 1 busy.
    const more = pool.acquire(toModelId(1), AbortSignal.timeout(2_000)).then(lease => { order.push('model 1 again'); return lease })
    await new Promise(resolve => setTimeout(resolve, 10))
    assert.deepEqual(order, [])
    first.release()
    ;(await waiting).release()
    ;(await more).release()
    assert.deepEqual(order, ['model 2', 'model 1 again'])
  })

  it('lets a waiting caller give up through its signal', async () => {
    const {pool} = poolOf(6)
    pool.add(model(1, 4))
    pool.add(model(2, 4))
    const busy = await pool.acquire(toModelId(1))
    const controller = new AbortController()
    const waiting = pool.acquire(toModelId(2), controller.signal)
    controller.abort(new Error('client left'))
    await assert.rejects(waiting, {message: 'client left'})
    busy.release()
  })

  it('preloads only what fits without unloading anything', async () => {
    const {pool} = poolOf(6)
    pool.add(model(1, 4))
    pool.add(model(2, 4))
    assert.equal(pool.preload(toModelId(1)), true)
    assert.equal(pool.preload(toModelId(2)), false)
    ;(await pool.acquire(toModelId(1))).release()
    assert.deepEqual(pool.loaded(), ['1'])
  })

  it('reports a model that fails to load to its caller, and can try it again later', async () => {
    const {pool} = poolOf(6, {failOpen: '1'})
    pool.add(model(1, 4))
    await assert.rejects(pool.acquire(toModelId(1)), {message: 'cannot load 1'})
    assert.deepEqual(pool.loaded(), [])
    await assert.rejects(pool.acquire(toModelId(9)), {code: 'MODEL_NOT_SERVED'})
  })

  it('closes every engine on dispose, and refuses new work after', async () => {
    const {pool, events} = poolOf(10)
    pool.add(model(1, 4))
    pool.add(model(2, 4))
    ;(await pool.acquire(toModelId(1))).release()
    ;(await pool.acquire(toModelId(2))).release()
    await pool.dispose()
    assert.deepEqual(events.filter(e => e.startsWith('close')).sort(), ['close 1', 'close 2'])
    await assert.rejects(pool.acquire(toModelId(1)), {code: 'POOL_DISPOSED'})
  })
})
