import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {InferenceError} from '../../src/inference/inferenceError.js'
import {SlotPool} from '../../src/inference/slotPool.js'

describe('SlotPool', () => {
  it('hands slots out first come, first served', async () => {
    const pool = new SlotPool(['a'])
    const first = await pool.acquire()
    const order: number[] = []
    const waiters = [1, 2, 3].map(async n => { const slot = await pool.acquire(); order.push(n); pool.release(slot) })
    assert.equal(pool.queued, 3)
    assert.equal(pool.inUse, 1)
    pool.release(first)
    await Promise.all(waiters)
    assert.deepEqual(order, [1, 2, 3])
    assert.equal(pool.inUse, 0)
  })

  it('a waiter aborted while queued leaves the queue with ABORTED and never gets a slot', async () => {
    const pool = new SlotPool(['a'])
    const held = await pool.acquire()
    const controller = new AbortController()
    const aborted = pool.acquire(controller.signal)
    const next = pool.acquire()
    controller.abort(new Error('gone'))
    await assert.rejects(aborted, (err: unknown) => err instanceof InferenceError && err.code === 'ABORTED' && err.type.code === 'ABORTED' && err.type.reason === 'gone')
    assert.equal(pool.queued, 1)
    pool.release(held)
    assert.equal(await next, 'a')
  })

  it('refuses an already aborted signal without queueing', async () => {
    const pool = new SlotPool(['a'])
    await assert.rejects(pool.acquire(AbortSignal.abort()), {name: 'InferenceError', message: /before a slot/})
    assert.equal(pool.inUse, 0)
  })

  it('close fails waiters and refuses new requests', async () => {
    const pool = new SlotPool(['a'])
    await pool.acquire()
    const waiting = pool.acquire()
    pool.close()
    await assert.rejects(waiting, (err: unknown) => err instanceof InferenceError && err.code === 'ENGINE_DISPOSED')
    await assert.rejects(pool.acquire(), (err: unknown) => err instanceof InferenceError && err.code === 'ENGINE_DISPOSED')
  })
})
