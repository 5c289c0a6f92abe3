import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {hexlify, toUtf8Bytes} from 'ethers'
import {taskFromChain} from '../../src/actors/mining/taskFromChain.js'
import {greedy} from '../../src/protocols/messages.js'
import {toModelId} from '../../src/protocols/modelId.js'
import {fakeAddress as addr} from '../support/fakeAddress.js'

const US = addr(0xa)
const created = {
  type: 'TaskCreated' as const, taskId: '77', oracle: addr(0x1), modelId: '3', mode: 'parallel' as const, k: 2, input: 'Once upon a time',
  params: hexlify(toUtf8Bytes(JSON.stringify(greedy(24)))), seed: 42, precommitDeadline: 1_800_000_000, commitDeadline: 1_800_000_060, escrow: '1'
}

describe('a task taken from the chain', () => {
  it('is the task the oracle gossiped, as far as this miner needs: prompt, params, seed, deadlines in ms, our slot', () => {
    const task = taskFromChain(created, US, 1_799_999_990_000)
    assert.deepEqual(task, {
      taskId: '77', modelId: toModelId(3), prompt: 'Once upon a time', params: greedy(24), seed: 42, mode: 'parallel', k: 2,
      assignees: [US], precommitDeadline: 1_800_000_000_000, deadline: 1_800_000_060_000, oracle: addr(0x1), createdAt: 1_799_999_990_000
    })
  })

  it('is refused when the params on chain are not sampling params we can run', () => {
    assert.equal(taskFromChain({...created, params: hexlify(toUtf8Bytes('{"maxTokens": -1}'))}, US, 0), undefined)
    assert.equal(taskFromChain({...created, params: '0xff'}, US, 0), undefined)
  })
})
