import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {VerifiedStream} from '../../src/actors/oracle/verifiedStream.js'
import {fakeAddress as addr} from '../support/fakeAddress.js'

const [A, B, C] = [addr(0xa), addr(0xb), addr(0xc)]
const chunk = (i: number, text = `t${i} `): {text: string, tokens: number[]} => ({text, tokens: [i]})
const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

describe('verified stream (what a client sees while miners generate)', () => {
  it('k=3 without a verifier: only chunks a majority streamed identically go out', () => {
    const seen: string[] = []
    const s = new VerifiedStream({k: 3, release: t => seen.push(t)})
    s.push(A, chunk(1))
    assert.deepEqual(seen, [], 'one miner of three is no majority')
    s.push(C, chunk(1, 'lie '))
    assert.deepEqual(seen, [])
    s.push(B, chunk(1))
    assert.deepEqual(seen, ['t1 '])
    s.push(C, chunk(2))
    s.push(A, chunk(2))
    assert.deepEqual(seen, ['t1 '], 'C left the majority when it streamed another chunk')
    s.push(B, chunk(2))
    assert.deepEqual(seen, ['t1 ', 't2 '])
  })

  it('k=1 with a verifier: text goes out only once a check of its prefix passed, at doublings', async () => {
    const seen: string[] = []
    const checks: number[] = []
    const s = new VerifiedStream({k: 1, firstCheckTokens: 2, release: t => seen.push(t), check: async (_m, tokens) => { checks.push(tokens.length); return true }})
    s.push(A, chunk(1))
    await tick()
    assert.deepEqual(seen, [])
    s.push(A, chunk(2))
    await tick()
    assert.deepEqual(seen, ['t1 t2 '])
    s.push(A, chunk(3))
    await tick()
    assert.deepEqual(seen, ['t1 t2 '], 'the next check waits for the prefix to double')
    s.push(A, chunk(4))
    await tick()
    assert.deepEqual([seen.join(''), checks], ['t1 t2 t3 t4 ', [2, 4]])
  })

  it('a failed check stops the stream: the lie is never shown, and the verified answer comes whole', async () => {
    const seen: string[] = []
    const s = new VerifiedStream({k: 1, firstCheckTokens: 1, release: t => seen.push(t), check: async () => false})
    s.push(A, chunk(1, 'invented '))
    await tick()
    s.push(A, chunk(2, 'more '))
    await tick()
    assert.deepEqual(seen, [])
    assert.equal(s.finish('the honest answer'), true)
    assert.deepEqual(seen, ['the honest answer'])
  })

  it('finish refuses an answer that does not continue what was streamed', async () => {
    const seen: string[] = []
    const s = new VerifiedStream({k: 1, firstCheckTokens: 1, release: t => seen.push(t), check: async () => true})
    s.push(A, chunk(1, 'Once'))
    await tick()
    assert.equal(s.finish('Twice'), false)
    assert.deepEqual(seen, ['Once'])
  })

  it('finish sends the rest of the verified answer after the streamed prefix', async () => {
    const seen: string[] = []
    const s = new VerifiedStream({k: 1, firstCheckTokens: 1, release: t => seen.push(t), check: async () => true})
    s.push(A, chunk(1, 'Once'))
    await tick()
    assert.equal(s.finish('Once upon a time'), true)
    assert.deepEqual(seen, ['Once', ' upon a time'])
    assert.equal(s.text, 'Once upon a time')
  })
  it('text sent while a check runs, or without tokens, is not let through by that check', async () => {
    const seen: string[] = []
    let pass: (ok: boolean) => void = () => {}
    const s = new VerifiedStream({k: 1, firstCheckTokens: 2, release: t => seen.push(t), check: async () => await new Promise<boolean>(resolve => { pass = resolve })})
    s.push(A, chunk(1))
    s.push(A, chunk(2))
    s.push(A, {text: 'EVIL ', tokens: []})
    s.push(A, chunk(3, 'unchecked '))
    pass(true)
    await tick()
    assert.deepEqual(seen, ['t1 t2 '])
  })
})
