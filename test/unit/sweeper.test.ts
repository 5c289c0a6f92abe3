import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {TaskState} from '../../src/chain/enums.js'
import type {TaskEvent, WatchedEvent} from '../../src/chain/taskEvents.js'
import {applyTaskEvents, dueForSweep, FOREIGN_GRACE_MS, OWN_GRACE_MS} from '../../src/actors/oracle/sweeper.js'
import type {ChainTaskRow} from '../../src/journal/taskJournal.js'
import {fakeAddress as addr} from '../support/fakeAddress.js'

const SELF = addr(0x1)
const OTHER = addr(0x2)
let block = 0
const watched = (event: TaskEvent): WatchedEvent => ({event, blockNumber: ++block, txHash: '0x00', logIndex: 0})
const created = (taskId: string, oracle = SELF): WatchedEvent => watched({type: 'TaskCreated', taskId, oracle, modelId: '1', mode: 'parallel', k: 1, input: 'hi', params: '0x7b7d', seed: 1, precommitDeadline: 100, commitDeadline: 200, escrow: '1'})

describe('sweeper', () => {
  it('indexes tasks of every oracle from creation to close, and reports what to persist', () => {
    const index = new Map<string, ChainTaskRow>()
    const first = applyTaskEvents(index, [created('1'), created('2', OTHER), watched({type: 'TaskStateChanged', taskId: '1', state: TaskState.Precommitted})])
    assert.deepEqual(first.upserts.map(r => [r.taskId, r.state]).sort(), [['1', TaskState.Precommitted], ['2', TaskState.Created]])
    assert.deepEqual(first.removes, [])
    const second = applyTaskEvents(index, [watched({type: 'TaskExpired', taskId: '2', refund: '1'}), watched({type: 'TaskStateChanged', taskId: '1', state: TaskState.Ended})])
    assert.deepEqual(second.removes.sort(), ['1', '2'])
    assert.equal(index.size, 0)
  })

  it('is due once the current phase deadline passed: own tasks soon, other oracles\' after a grace', () => {
    const index = new Map<string, ChainTaskRow>()
    applyTaskEvents(index, [created('own'), created('foreign', OTHER), created('revealing'), watched({type: 'TaskStateChanged', taskId: 'revealing', state: TaskState.Precommitted})])
    const at = (ms: number): string[] => dueForSweep(index, ms, SELF, () => false).sort()
    assert.deepEqual(at(100_000), [])
    assert.deepEqual(at(100_000 + OWN_GRACE_MS + 1), ['own'])
    assert.deepEqual(at(100_000 + FOREIGN_GRACE_MS + 1), ['foreign', 'own'])
    assert.deepEqual(at(200_000 + FOREIGN_GRACE_MS + 1), ['foreign', 'own', 'revealing'], 'a precommitted task waits for the commit deadline')
    applyTaskEvents(index, [created('late'), watched({type: 'TaskPrecommitted', taskId: 'late', miner: OTHER, commitment: '0x01'})])
    assert.ok(!at(100_000 + FOREIGN_GRACE_MS + 1).includes('late'), 'one precommit keeps a task open for its late reveal')
    assert.ok(at(200_000 + OWN_GRACE_MS + 1).includes('late'))
    assert.ok(!dueForSweep(index, 300_000, SELF, id => id === 'own').includes('own'), 'tasks with a live machine are left to it')
  })
})
