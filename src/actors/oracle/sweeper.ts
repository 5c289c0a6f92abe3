import {TaskState} from '../../chain/enums.js'
import type {WatchedEvent} from '../../chain/taskEvents.js'
import type {ChainTaskRow} from '../../journal/taskJournal.js'
import type {Address} from '../../protocols/address.js'

/**
 * How long past a deadline an oracle waits before closing another oracle's task: that oracle
 * normally closes its own at once (after verifying), the contract keeps others out for its
 * ORACLE_SETTLE_GRACE (60 s), and every oracle racing for the same `end` wastes gas.
 */
export const FOREIGN_GRACE_MS = 75_000
/** Our own tasks without a live state machine (from before a crash the journal did not see). */
export const OWN_GRACE_MS = 2_000

/**
 * The open tasks of every oracle, as the chain's events tell them: what a sweeper closes once
 * their phase deadline passed, so no escrow stays locked and no honest precommitted work goes
 * unpaid because its oracle died. Applies one batch of watched events to `index` and returns
 * the rows to persist and the ids to drop.
 */
export function applyTaskEvents (index: Map<string, ChainTaskRow>, events: readonly WatchedEvent[]): {upserts: ChainTaskRow[], removes: string[]} {
  const changed = new Set<string>()
  const removed = new Set<string>()
  for (const {event} of events) {
    switch (event.type) {
      case 'TaskCreated':
        index.set(event.taskId, {taskId: event.taskId, oracle: event.oracle, precommitDeadline: event.precommitDeadline, commitDeadline: event.commitDeadline, state: TaskState.Created, precommits: 0})
        changed.add(event.taskId)
        removed.delete(event.taskId)
        break
      case 'TaskStateChanged': {
        const row = index.get(event.taskId)
        if (row == null) break
        if (event.state === TaskState.Ended || event.state === TaskState.Expired) {
          index.delete(event.taskId)
          removed.add(event.taskId)
          changed.delete(event.taskId)
        } else {
          row.state = event.state
          changed.add(event.taskId)
        }
        break
      }
      case 'TaskPrecommitted': {
        // A reassignment may take a precommit back; counting it anyway only makes the sweeper wait longer.
        const row = index.get(event.taskId)
        if (row == null) break
        row.precommits++
        changed.add(event.taskId)
        break
      }
      case 'TaskEnded':
      case 'TaskExpired':
        index.delete(event.taskId)
        removed.add(event.taskId)
        changed.delete(event.taskId)
        break
      default:
        break
    }
  }
  return {upserts: [...changed].flatMap(id => index.get(id) ?? []), removes: [...removed]}
}

/** Tasks whose current phase deadline passed (plus grace): anyone may `end` them now. */
export function dueForSweep (index: ReadonlyMap<string, ChainTaskRow>, nowMs: number, self: Address, skip: (taskId: string) => boolean): string[] {
  const due: string[] = []
  for (const row of index.values()) {
    if (skip(row.taskId)) continue
    // Once anyone precommitted, the contract keeps the task open for (late) reveals until the commit deadline.
    const deadlineS = row.state < TaskState.Precommitted && row.precommits === 0 ? row.precommitDeadline : row.commitDeadline
    const grace = row.oracle === self ? OWN_GRACE_MS : FOREIGN_GRACE_MS
    if (nowMs > deadlineS * 1000 + grace) due.push(row.taskId)
  }
  return due
}
