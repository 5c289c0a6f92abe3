import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import type {TaskPhase} from '../../src/actors/oracle/messages.js'
import {pruneTasks} from '../../src/actors/oracle/pruneTasks.js'
import {reputationOf} from '../../src/actors/oracle/reputation.js'
import {selectMiners, type MinerView} from '../../src/actors/oracle/selectMiners.js'
import {tallyResults} from '../../src/actors/oracle/tallyResults.js'
import type {Address} from '../../src/protocols/address.js'
import {toModelId} from '../../src/protocols/modelId.js'
import {fakeAddress as addr} from '../support/fakeAddress.js'

const NOW = 1_000_000
function miner (address: Address, overrides: Partial<MinerView> = {}): MinerView {
  return {address, peerId: `peer-${address}`, models: [{id: toModelId(1), determinismClass: 'cpu', loaded: true}], freeSlots: 1, tokensPerSecond: 100, seenAt: NOW - 1_000, ...overrides}
}
const base = {modelId: toModelId(1), now: NOW, maxHeartbeatAgeMs: 10_000, isAdmitted: () => true, recentAssignments: new Map<Address, number>()}

describe('miner selection', () => {
  it('skips miners that are stale, busy, without the model, not admitted or excluded', () => {
    const miners = [
      miner(addr(0xa)),
      miner(addr(0xb), {seenAt: NOW - 60_000}),
      miner(addr(0xc), {freeSlots: 0}),
      miner(addr(0xd), {models: [{id: toModelId(2), determinismClass: 'cpu', loaded: true}]}),
      miner(addr(0xe)),
      miner(addr(0xf))
    ]
    const picked = selectMiners({...base, miners, k: 2, isAdmitted: a => a !== addr(0xe), exclude: new Set([addr(0xa)])})
    assert.equal(picked, null, 'only 0xf is eligible, so k=2 cannot be met')
    assert.deepEqual(selectMiners({...base, miners, k: 1, isAdmitted: a => a !== addr(0xe), exclude: new Set([addr(0xa)])}), [addr(0xf)])
  })

  it('prefers miners that hold the model in memory over ones that must load it first', () => {
    const unloaded = [{id: toModelId(1), determinismClass: 'cpu', loaded: false}]
    const miners = [miner(addr(0xa), {models: unloaded}), miner(addr(0xb)), miner(addr(0xc), {models: unloaded})]
    assert.deepEqual(selectMiners({...base, miners, k: 1}), [addr(0xb)])
    assert.deepEqual(selectMiners({...base, miners, k: 2}), [addr(0xb), addr(0xa)], 'an unloaded miner still serves when the loaded ones are taken')
  })

  it('spreads tasks over the least recently used miners', () => {
    const miners = [miner(addr(0xa)), miner(addr(0xb)), miner(addr(0xc))]
    const recentAssignments = new Map([[addr(0xa), 3], [addr(0xb), 1]])
    assert.deepEqual(selectMiners({...base, miners, k: 2, recentAssignments}), [addr(0xc), addr(0xb)])
  })

  it('never picks a suspended miner, and picks a proven liar only after every better miner', () => {
    const record = (agreed: number, rejected: number, suspended = false) => reputationOf({agreed: BigInt(agreed), disagreed: 0n, expired: 0n, rejected: BigInt(rejected), lastPingAt: 990n, suspended}, 1_000, 120)
    const liar = miner(addr(0xa), {reputation: record(5, 1)})
    const honest = miner(addr(0xb), {reputation: record(5, 0)})
    const suspended = miner(addr(0xc), {reputation: record(50, 3, true)})
    const recentAssignments = new Map([[addr(0xb), 5]])
    assert.deepEqual(selectMiners({...base, miners: [liar, honest, suspended], k: 1, recentAssignments}), [addr(0xb)], 'reputation outranks load')
    assert.deepEqual(selectMiners({...base, miners: [liar, honest, suspended], k: 2}), [addr(0xb), addr(0xa)])
    assert.equal(selectMiners({...base, miners: [liar, honest, suspended], k: 3}), null)
  })

  it('reputation: one proven lie weighs ten agreed tasks; a node that stopped pinging counts half', () => {
    const r = (agreed: number, rejected: number, lastPingAt: bigint) => reputationOf({agreed: BigInt(agreed), disagreed: 0n, expired: 0n, rejected: BigInt(rejected), lastPingAt, suspended: false}, 1_000, 120).score
    assert.equal(r(0, 0, 990n), 0.5, 'a new miner starts at one half')
    assert.equal(r(10, 1, 990n), 0.5, 'one lie undoes ten agreed tasks: back to a new miner\'s score')
    assert.equal(r(10, 0, 0n), r(10, 0, 990n) / 2)
  })
})

describe('result tally', () => {
  it('waits for k results', () => {
    assert.deepEqual(tallyResults([{miner: addr(0xa), outputHash: 'h1'}], 3), {status: 'pending', received: 1, needed: 3})
  })
  it('agrees when all k outputs match', () => {
    const t = tallyResults([addr(0xa), addr(0xb), addr(0xc)].map(miner => ({miner, outputHash: 'h1'})), 3)
    assert.deepEqual(t, {status: 'agreed', outputHash: 'h1', agreeing: [addr(0xa), addr(0xb), addr(0xc)], dissenting: []})
  })
  it('names the minority when a strict majority agrees', () => {
    const t = tallyResults([{miner: addr(0xa), outputHash: 'h1'}, {miner: addr(0xb), outputHash: 'h2'}, {miner: addr(0xc), outputHash: 'h1'}], 3)
    assert.deepEqual(t, {status: 'agreed', outputHash: 'h1', agreeing: [addr(0xa), addr(0xc)], dissenting: [addr(0xb)]})
  })
  it('reports disagreement without a majority', () => {
    const t = tallyResults([{miner: addr(0xa), outputHash: 'h1'}, {miner: addr(0xb), outputHash: 'h2'}], 2)
    assert.equal(t.status, 'disagreed')
    assert.equal(t.status === 'disagreed' ? t.outputHash : 'x', null)
  })
})

describe('task record pruning', () => {
  /** Task records by id in insertion order (oldest first), with only the phase pruning reads. */
  const tasksOf = (phases: TaskPhase[]): Map<string, {record: {phase: TaskPhase}}> =>
    new Map(phases.map((phase, i) => [String(i + 1), {record: {phase}}]))

  it('keeps the newest finished records, failed ones included', () => {
    const tasks = tasksOf(['failed', 'ended', 'failed', 'expired', 'failed'])
    pruneTasks(tasks, 3)
    assert.deepEqual([...tasks.keys()], ['3', '4', '5'])
    assert.deepEqual([...tasks.values()].map(t => t.record.phase), ['failed', 'expired', 'failed'])
  })

  it('never drops running or settling records, even past keep', () => {
    const mixed = tasksOf(['running', 'ended', 'failed', 'settling', 'expired'])
    pruneTasks(mixed, 3)
    assert.deepEqual([...mixed.keys()], ['1', '4', '5'], 'the two oldest finished records go')
    const live = tasksOf(['running', 'failed', 'settling', 'running', 'ended'])
    pruneTasks(live, 2)
    assert.deepEqual([...live.keys()], ['1', '3', '4'], 'every finished record goes, the live ones stay')
  })
})
