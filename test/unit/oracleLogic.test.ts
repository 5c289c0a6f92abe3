import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {selectMiners, type MinerView} from '../../src/actors/oracle/selectMiners.js'
import {tallyResults} from '../../src/actors/oracle/tallyResults.js'

const NOW = 1_000_000
function miner (address: string, overrides: Partial<MinerView> = {}): MinerView {
  return {address, peerId: `peer-${address}`, modelsReady: [1], freeSlots: 1, tokensPerSecond: 100, determinismClass: 'cpu', seenAt: NOW - 1_000, ...overrides}
}
const base = {modelId: 1, now: NOW, maxHeartbeatAgeMs: 10_000, isAdmitted: () => true, recentAssignments: new Map<string, number>()}

describe('miner selection', () => {
  it('skips miners that are stale, busy, without the model, not admitted or excluded', () => {
    const miners = [
      miner('0xa'),
      miner('0xb', {seenAt: NOW - 60_000}),
      miner('0xc', {freeSlots: 0}),
      miner('0xd', {modelsReady: [2]}),
      miner('0xe'),
      miner('0xf')
    ]
    const picked = selectMiners({...base, miners, k: 2, isAdmitted: a => a !== '0xe', exclude: new Set(['0xa'])})
    assert.equal(picked, null, 'only 0xf is eligible, so k=2 cannot be met')
    assert.deepEqual(selectMiners({...base, miners, k: 1, isAdmitted: a => a !== '0xe', exclude: new Set(['0xa'])}), ['0xf'])
  })

  it('spreads tasks over the least recently used miners', () => {
    const miners = [miner('0xa'), miner('0xb'), miner('0xc')]
    const recentAssignments = new Map([['0xa', 3], ['0xb', 1]])
    assert.deepEqual(selectMiners({...base, miners, k: 2, recentAssignments}), ['0xc', '0xb'])
  })
})

describe('result tally', () => {
  it('waits for k results', () => {
    assert.deepEqual(tallyResults([{miner: 'a', outputHash: 'h1'}], 3), {status: 'pending', received: 1, needed: 3})
  })
  it('agrees when all k outputs match', () => {
    const t = tallyResults(['a', 'b', 'c'].map(miner => ({miner, outputHash: 'h1'})), 3)
    assert.deepEqual(t, {status: 'agreed', outputHash: 'h1', agreeing: ['a', 'b', 'c'], dissenting: []})
  })
  it('names the minority when a strict majority agrees', () => {
    const t = tallyResults([{miner: 'a', outputHash: 'h1'}, {miner: 'b', outputHash: 'h2'}, {miner: 'c', outputHash: 'h1'}], 3)
    assert.deepEqual(t, {status: 'agreed', outputHash: 'h1', agreeing: ['a', 'c'], dissenting: ['b']})
  })
  it('reports disagreement without a majority', () => {
    const t = tallyResults([{miner: 'a', outputHash: 'h1'}, {miner: 'b', outputHash: 'h2'}], 2)
    assert.equal(t.status, 'disagreed')
    assert.equal(t.status === 'disagreed' ? t.outputHash : 'x', null)
  })
})
