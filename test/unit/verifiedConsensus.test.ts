import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {decideVerified, type WeighedResult} from '../../src/actors/oracle/verifiedConsensus.js'
import {fakeAddress as addr} from '../support/fakeAddress.js'

const [A, B, C] = [addr(0xa), addr(0xb), addr(0xc)]
const CPU = 'cpu-class'
const GPU = 'gpu-class'
const r = (miner: typeof A, outputHash: string, determinismClass: string, accepted?: boolean): WeighedResult => ({miner, outputHash, determinismClass, accepted})

describe('verified consensus', () => {
  it('waits for all k results and every verdict', () => {
    assert.equal(decideVerified([r(A, 'h', CPU, true)], 2, CPU).status, 'pending')
    assert.equal(decideVerified([r(A, 'h', CPU, true), r(B, 'h', CPU)], 2, CPU).status, 'pending')
  })

  it('two colluders agreeing on a lie lose to one honest miner the verifier accepts', () => {
    const d = decideVerified([r(A, 'lie', CPU, false), r(B, 'lie', CPU, false), r(C, 'truth', CPU, true)], 3, CPU)
    assert.deepEqual(d, {status: 'decided', answerMiner: C, accepted: [C], rejected: [A, B], outvoted: []})
  })

  it('within one class a strict majority outvotes an output the teacher-forced check let through', () => {
    const d = decideVerified([r(A, 'x', CPU, true), r(B, 'x', CPU, true), r(C, 'y', CPU, true)], 3, CPU)
    assert.equal(d.status, 'decided')
    assert.deepEqual(d.status === 'decided' ? [d.accepted, d.outvoted] : [], [[A, B], [C]])
  })

  it('different hashes across classes are all accepted; the answer prefers the verifier\'s class', () => {
    const d = decideVerified([r(A, 'gpu-text', GPU, true), r(B, 'cpu-text', CPU, true)], 2, CPU)
    assert.equal(d.status, 'decided')
    assert.deepEqual(d.status === 'decided' ? [d.answerMiner, d.accepted, d.rejected] : [], [B, [A, B], []])
  })

  it('none when every output failed', () => {
    assert.deepEqual(decideVerified([r(A, 'lie', CPU, false)], 1, CPU), {status: 'none', rejected: [A], outvoted: []})
  })
})
