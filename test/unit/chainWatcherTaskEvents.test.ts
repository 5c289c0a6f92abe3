import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import type {DecodedEvent} from '../../src/chain/chainWatcher.js'
import {TaskState} from '../../src/chain/enums.js'
import {toTaskEvent, type TaskEvent, type TaskEventType} from '../../src/chain/taskEvents.js'
import {fakeAddress} from '../support/fakeAddress.js'

const decoded = (name: string, args: Record<string, unknown>): DecodedEvent =>
  ({contract: 'cognitive', name, args, txHash: '0x' + '00'.repeat(32), blockNumber: 5, logIndex: 0})

const A = fakeAddress(1)
const B = fakeAddress(2)
const HASH = '0x' + 'ab'.repeat(32)

/** Every task event: the decoded log (integers as decimal strings, as the decoder gives them) and its domain form. */
const CASES: {[K in TaskEventType]: [DecodedEvent, Extract<TaskEvent, {type: K}>]} = {
  TaskCreated: [
    decoded('TaskCreated', {taskId: '12', oracle: A, modelId: '3', mode: '1', k: '2', input: 'hi', params: '0x', seed: '9', escrow: '1000', precommitDeadline: '100', commitDeadline: '200'}),
    {type: 'TaskCreated', taskId: '12', oracle: A, modelId: '3', mode: 'competing', k: 2, input: 'hi', params: '0x', seed: 9, precommitDeadline: 100, commitDeadline: 200, escrow: '1000'}
  ],
  TaskStateChanged: [decoded('TaskStateChanged', {taskId: '12', state: '3'}), {type: 'TaskStateChanged', taskId: '12', state: TaskState.Precommitted}],
  MinerAssigned: [decoded('MinerAssigned', {taskId: '12', miner: A, slot: '1'}), {type: 'MinerAssigned', taskId: '12', miner: A, slot: 1}],
  MinerReassigned: [decoded('MinerReassigned', {taskId: '12', from: A, to: B, slot: '0'}), {type: 'MinerReassigned', taskId: '12', from: A, to: B}],
  TaskPrecommitted: [decoded('TaskPrecommitted', {taskId: '12', miner: A, commitment: HASH.toUpperCase().replace('0X', '0x')}), {type: 'TaskPrecommitted', taskId: '12', miner: A, commitment: HASH}],
  TaskCommitted: [decoded('TaskCommitted', {taskId: '12', miner: B, output: 'out', outputHash: HASH}), {type: 'TaskCommitted', taskId: '12', miner: B, outputHash: HASH}],
  TaskEnded: [
    decoded('TaskEnded', {taskId: '12', winningOutputHash: HASH, winners: [A, B], payoutEach: '500', refund: '0', reveals: '2'}),
    {type: 'TaskEnded', taskId: '12', winners: [A, B], payoutEach: '500', refund: '0'}
  ],
  TaskExpired: [decoded('TaskExpired', {taskId: '12', refund: '1000'}), {type: 'TaskExpired', taskId: '12', refund: '1000'}]
}

describe('task events from decoded logs', () => {
  for (const [type, [input, expected]] of Object.entries(CASES)) {
    it(`converts ${type}`, () => { assert.deepEqual(toTaskEvent(input), expected) })
  }

  it('skips other events, other contracts and codes this build does not know', () => {
    assert.equal(toTaskEvent(decoded('Withdrawn', {account: A, amount: '1'})), undefined)
    assert.equal(toTaskEvent({...decoded('TaskExpired', {taskId: '1', refund: '0'}), contract: 'nodeStats'}), undefined)
    assert.equal(toTaskEvent(decoded('TaskStateChanged', {taskId: '1', state: '42'})), undefined)
    assert.equal(toTaskEvent(decoded('TaskCreated', {...CASES.TaskCreated[0].args, mode: '7'})), undefined)
  })
})
