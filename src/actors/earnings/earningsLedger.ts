import type {Address} from '../../protocols/address.js'
import type {TaskMode} from '../../protocols/messages.js'
import type {TaskEvent} from '../../chain/taskEvents.js'
import type {StoredLedger} from '../../journal/taskJournal.js'
import {TASK_OUTCOMES, type LedgerEntry, type LedgerStatus, type TaskOutcome} from '../../operator/earningReport.js'

/** Outcomes kept for the report: enough to see a streak and each reason. */
export const LEDGER_RECENT = 50
/** Open tasks followed at once; the oldest is dropped beyond (a miner works on a few at a time). */
export const LEDGER_MAX_FOLLOWED = 256

/** One open task this miner may take part in, as its chain events tell it so far. */
export interface FollowedTask {
  taskId: string
  /** The block its events are looked up from: a little before the chain watch's latest block when the node began to follow it. */
  fromBlock: number
  mode?: TaskMode
  assigned: boolean
  precommitted: boolean
  committed: boolean
  reassignedTo?: Address
}

/** A task the chain closed, before its entry is written (a payout or a rejection may need the task's other events). */
export type Closing =
  | {type: 'ended', task: FollowedTask, winners: Address[], payoutEach: bigint}
  | {type: 'expired', task: FollowedTask}

/** What the task's full event list adds to a closing: the escrow (for the first winner's remainder) and whether the oracle rejected this miner's output. */
export interface ClosingDetail {
  escrowWei?: bigint
  rejected: boolean
}

export interface LedgerState {
  me: Address
  /** Which chain, contracts and miner the ledger counts for (`ledgerKey`): a journal kept for another is not this ledger. */
  key: string
  /** Where a task newly followed has its events looked up from: a little before the chain watch's latest block. */
  watchFrom: number
  followed: Map<string, FollowedTask>
  totals: {[K in TaskOutcome]: number}
  earnedWei: bigint
  recent: LedgerEntry[]
  /** When this data folder's ledger began (ms): the totals count from then, across restarts. */
  since: number
}

/** The ledger's totals as the journal keeps them. */
export interface LedgerTotals {
  key: string
  totals: {[K in TaskOutcome]: number}
  earnedWei: string
  since: number
}

/** Blocks before the chain watch's latest that a newly followed task is looked up from: its TaskCreated came a little before its gossip. */
export const FOLLOW_MARGIN_BLOCKS = 64

/** What a ledger counts for: one chain, one Cognitive contract, one miner. */
export function ledgerKey (chainId: number, cognitive: Address, me: Address): string {
  return `${chainId}/${cognitive}/${me}`
}

export function emptyLedger (me: Address, key: string, watchFrom: number, now: number): LedgerState {
  return {me, key, watchFrom, followed: new Map(), totals: Object.fromEntries(TASK_OUTCOMES.map(o => [o, 0])) as {[K in TaskOutcome]: number}, earnedWei: 0n, recent: [], since: now}
}

/**
 * The ledger a restarted node carries on with, from what its journal kept; an empty one (since
 * `now`) when the journal has none. Throws `TypeError` naming the part that is not a ledger's,
 * or saying whose ledger it is when it counts for another chain, contract or miner.
 */
export function restoreLedger (me: Address, key: string, stored: StoredLedger, watchFrom: number, now: number): LedgerState {
  const ledger = emptyLedger(me, key, watchFrom, now)
  if (stored.totals == null) return ledger
  const t = stored.totals as Partial<LedgerTotals>
  if (typeof t.since !== 'number' || typeof t.earnedWei !== 'string' || !/^\d+$/.test(t.earnedWei) || t.totals == null || !TASK_OUTCOMES.every(o => Number.isSafeInteger(t.totals?.[o]))) {
    throw new TypeError(`the ledger's totals are not {totals, earnedWei, since}: ${JSON.stringify(stored.totals).slice(0, 200)}`)
  }
  if (t.key !== key) throw new TypeError(`the ledger in the journal counts for ${String(t.key)} (chain/contract/miner), this node is ${key}`)
  for (const task of stored.followed as FollowedTask[]) {
    if (typeof task?.taskId !== 'string' || !/^\d{1,78}$/.test(task.taskId) || !Number.isSafeInteger(task.fromBlock)) throw new TypeError(`a followed task is not {taskId, fromBlock, ...}: ${JSON.stringify(task).slice(0, 200)}`)
    ledger.followed.set(task.taskId, task)
  }
  for (const entry of stored.recent as LedgerEntry[]) {
    if (typeof entry?.taskId !== 'string' || !(TASK_OUTCOMES as readonly string[]).includes(entry.outcome)) throw new TypeError(`a ledger entry is not {taskId, outcome, ...}: ${JSON.stringify(entry).slice(0, 200)}`)
  }
  return {...ledger, totals: {...t.totals}, earnedWei: BigInt(t.earnedWei), since: t.since, recent: stored.recent as LedgerEntry[]}
}

export function ledgerTotals (ledger: LedgerState): LedgerTotals {
  return {key: ledger.key, totals: {...ledger.totals}, earnedWei: ledger.earnedWei.toString(), since: ledger.since}
}

/** The totals once `entry` is booked (the ledger itself unchanged: the journal is written first). */
export function totalsWith (ledger: LedgerState, entry: LedgerEntry): LedgerTotals {
  const totals = ledgerTotals(ledger)
  totals.totals[entry.outcome]++
  totals.earnedWei = (ledger.earnedWei + BigInt(entry.payoutWei)).toString()
  return totals
}

/** Follows a task (or updates it); returns the followed task. */
export function follow (ledger: LedgerState, taskId: string, fields: Partial<FollowedTask>): FollowedTask {
  const task = {...ledger.followed.get(taskId) ?? {taskId, fromBlock: ledger.watchFrom, assigned: false, precommitted: false, committed: false}, ...fields}
  ledger.followed.set(taskId, task)
  return task
}

/** Drops the oldest followed tasks beyond `LEDGER_MAX_FOLLOWED`; returns their ids (for the journal). */
export function dropOverflow (ledger: LedgerState): string[] {
  const dropped: string[] = []
  for (const taskId of ledger.followed.keys()) {
    if (ledger.followed.size <= LEDGER_MAX_FOLLOWED) break
    ledger.followed.delete(taskId)
    dropped.push(taskId)
  }
  return dropped
}

/**
 * One chain event of a followed task (or an assignment to this miner): updates what the miner
 * did on it; a close comes back as a `Closing` (the task is no longer followed).
 */
export function onTaskEvent (ledger: LedgerState, event: TaskEvent): Closing | undefined {
  const {me} = ledger
  if (event.type === 'MinerAssigned' && event.miner === me) follow(ledger, event.taskId, {assigned: true})
  const task = ledger.followed.get(event.taskId)
  if (task == null) return undefined
  switch (event.type) {
    case 'TaskPrecommitted': if (event.miner === me) task.precommitted = true; return undefined
    case 'TaskCommitted': if (event.miner === me) task.committed = true; return undefined
    case 'MinerReassigned': if (event.from === me) task.reassignedTo = event.to; return undefined
    case 'TaskEnded':
      ledger.followed.delete(event.taskId)
      return {type: 'ended', task, winners: event.winners, payoutEach: BigInt(event.payoutEach)}
    case 'TaskExpired':
      ledger.followed.delete(event.taskId)
      return {type: 'expired', task}
    default:
      return undefined
  }
}

/** Does writing this closing's entry need the task's other events? */
export function needsDetail (closing: Closing, me: Address): boolean {
  return closing.type === 'ended' && (closing.winners[0] === me || (!closing.winners.includes(me) && closing.task.committed))
}

/**
 * The entry of a closed task, or undefined for a task this miner had no part in (a competing
 * task of its model that expired without anyone, or that it never tried for while others won).
 */
export function entryOf (closing: Closing, me: Address, at: number, detail?: ClosingDetail): LedgerEntry | undefined {
  const {task} = closing
  const base = {taskId: task.taskId, at, ...(task.mode == null ? {} : {mode: task.mode})}
  const tookPart = task.assigned || task.precommitted
  if (closing.type === 'expired') {
    if (!tookPart) return undefined
    return {...base, outcome: 'expired', winners: [], payoutWei: '0', reason: task.precommitted ? 'nobody revealed before the deadline (your reveal did not make it)' : 'assigned, but no precommit made it before the deadline'}
  }
  const {winners} = closing
  if (winners.includes(me)) {
    const remainder = winners[0] === me && detail?.escrowWei != null ? detail.escrowWei - closing.payoutEach * BigInt(winners.length) : 0n
    const payout = closing.payoutEach + (remainder > 0n ? remainder : 0n)
    return {...base, outcome: 'won', winners, payoutWei: payout.toString(), reason: `paid ${payout} wei`}
  }
  if (task.committed) {
    return detail?.rejected === true
      ? {...base, outcome: 'rejected', winners, payoutWei: '0', reason: 'the oracle rejected your output (OutputRejected)'}
      : {...base, outcome: 'disagreed', winners, payoutWei: '0', reason: 'your output was not among those paid (outvoted or not checked)'}
  }
  if (task.reassignedTo != null) return {...base, outcome: 'lost', winners, payoutWei: '0', reason: `your slot was reassigned to ${task.reassignedTo} (no precommit in time)`}
  if (task.precommitted || task.assigned) return {...base, outcome: 'expired', winners, payoutWei: '0', reason: 'your reveal did not make it before the deadline'}
  if (task.mode !== 'competing' || winners.length === 0) return undefined
  return {...base, outcome: 'lost', winners, payoutWei: '0', reason: `the slots went to ${winners.join(', ')}: they precommitted first`}
}

/** Is this task among the recent ones booked? (A task is booked once.) */
export function isBooked (ledger: LedgerState, taskId: string): boolean {
  return ledger.recent.some(e => e.taskId === taskId)
}

/** Books an entry; false (nothing changes) when its task is booked already. */
export function record (ledger: LedgerState, entry: LedgerEntry): boolean {
  if (isBooked(ledger, entry.taskId)) return false
  ledger.totals[entry.outcome]++
  ledger.earnedWei += BigInt(entry.payoutWei)
  ledger.recent.unshift(entry)
  ledger.recent.length = Math.min(ledger.recent.length, LEDGER_RECENT)
  return true
}

export function ledgerStatus (ledger: LedgerState): LedgerStatus {
  return {totals: {...ledger.totals}, earnedWei: ledger.earnedWei.toString(), since: ledger.since, recent: ledger.recent.map(e => ({...e, winners: [...e.winners]}))}
}
