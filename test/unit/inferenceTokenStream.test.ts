import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {setImmediate as nextTurn} from 'node:timers/promises'
import {createTokenStream, type OnToken} from '../../src/inference/tokenStream.js'

/** A fake run that emits `count` chunks, one per event-loop turn, until its signal aborts. */
function fakeRun (count: number) {
  return async ({signal, onToken}: {signal: AbortSignal, onToken: OnToken}): Promise<{emitted: number, aborted: boolean}> => {
    let emitted = 0
    while (emitted < count && !signal.aborted) {
      await nextTurn()
      onToken(`t${emitted}`, {text: `t${emitted}`, tokens: [emitted]})
      emitted++
    }
    return {emitted, aborted: signal.aborted}
  }
}

describe('createTokenStream', () => {
  it('yields every chunk in order, then settles result', async () => {
    const stream = createTokenStream(fakeRun(5))
    const texts: string[] = []
    for await (const chunk of stream) texts.push(chunk.text)
    assert.deepEqual(texts, ['t0', 't1', 't2', 't3', 't4'])
    assert.deepEqual(await stream.result, {emitted: 5, aborted: false})
  })

  it('leaving the loop early aborts the run', async () => {
    const stream = createTokenStream(fakeRun(1000))
    for await (const _chunk of stream) break
    const result = await stream.result
    assert.ok(result.aborted && result.emitted < 1000)
  })

  it('the caller signal reaches the run', async () => {
    const controller = new AbortController()
    const stream = createTokenStream(fakeRun(1000), controller.signal)
    let seen = 0
    for await (const _chunk of stream) if (++seen === 2) controller.abort()
    assert.ok((await stream.result).aborted)
  })

  it('a refused run throws from the iteration and from result, with no unhandled rejection', async () => {
    const stream = createTokenStream(async () => { throw new Error('refused') })
    await assert.rejects((async () => { for await (const _chunk of stream) ; })(), /refused/)
    await assert.rejects(stream.result, /refused/)
    const ignored = createTokenStream(async () => { throw new Error('nobody listens') })
    await nextTurn()
    assert.ok(ignored)
  })
})
