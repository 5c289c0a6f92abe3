import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {RecentAnswer} from '../../src/util/recentAnswer.js'

describe('recent answer', () => {
  it('gives callers within the age the one request\'s answer, asks again once it is older, and forgets a failure at once', async () => {
    const recent = new RecentAnswer<number>()
    let asked = 0
    const ask = async (): Promise<number> => ++asked
    assert.deepEqual(await Promise.all([recent.get(60_000, ask), recent.get(60_000, ask)]), [1, 1])
    assert.equal(await recent.get(0, ask), 2)
    await assert.rejects(recent.get(0, async () => { throw new Error('rpc down') }), /rpc down/)
    assert.equal(await recent.get(60_000, ask), 3)
    assert.equal(asked, 3)
  })
})
