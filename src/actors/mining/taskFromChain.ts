import {toUtf8String} from 'ethers'
import type {TaskEvent} from '../../chain/taskEvents.js'
import type {Address} from '../../protocols/address.js'
import {samplingParamsSchema, type Task} from '../../protocols/messages.js'
import {toModelId} from '../../protocols/modelId.js'

type TaskCreated = Extract<TaskEvent, {type: 'TaskCreated'}>

/**
 * The task a miner finds assigned to it on chain, as if it had come by gossip. The gossip is the
 * fast path; this is the one that cannot be lost: an oracle that crashed right after createTask,
 * or a miner that was cut off, still sees its assignment in the chain's events, which carry the
 * prompt, the sampling params and the seed. Undefined when the params are not ones we can run.
 */
export function taskFromChain (created: TaskCreated, assignee: Address, now: number): Task | undefined {
  let params
  try {
    params = samplingParamsSchema.parse(JSON.parse(toUtf8String(created.params)), 'params')
  } catch {
    return undefined
  }
  return {
    taskId: created.taskId, modelId: toModelId(created.modelId), prompt: created.input, params, seed: created.seed,
    mode: created.mode, k: created.k,
    // Only our own slot is known here; the task machine needs no more.
    assignees: created.mode === 'parallel' ? [assignee] : [],
    precommitDeadline: created.precommitDeadline * 1000, deadline: created.commitDeadline * 1000,
    // The block's time is not in the event; when we learnt of it is close enough for a task already running.
    oracle: created.oracle, createdAt: now
  }
}
