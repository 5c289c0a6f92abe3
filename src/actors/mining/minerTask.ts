import {COMPETING_SLOTS_TAKEN, TaskState} from '../../chain/enums.js'
import type {TaskEvent} from '../../chain/taskEvents.js'
import type {Address} from '../../protocols/address.js'
import type {MinerResult, Task} from '../../protocols/messages.js'
import {assertNever} from '../../util/assertNever.js'

/**
 * One task as this miner lives it, as a pure state machine (sans-IO, STYLE 17): the mining
 * actor feeds it events (inference, oracle stream, tx replies, chain watcher, timers) and
 * carries out the effects it returns. The state is plain JSON (the journal stores it after
 * every step), so a restarted miner still knows its salt and finishes what it precommitted.
 *
 *   inferring ─Inferred→ precommitting ─PrecommitMined→ awaitingReveal ─ChainState(Precommitted) or RevealDue→ committing ─CommitMined→ done
 *   any non-terminal ─(slot taken, reassigned away, oracle cancelled, task closed, deadline)→ lost
 *   inferring ─(InferenceFailed, Restarted)→ failed
 */

export type MinerTaskPhase = MinerTask['phase']

/** Why a task ended unpaid through no fault of the inference. */
export type LostReason =
  /** The oracle cancelled the stream before the result: its client left, or it answered and every competing slot is taken. */
  | 'cancelled'
  /** The oracle gave our slot to another miner. */
  | 'reassigned'
  /** The chain refused our precommit or commit (competing slots full, not assigned, ...). */
  | 'rejected'
  /** The chain moved on without us (all slots precommitted or revealed by others, ended, expired). */
  | 'taskClosed'
  /** The task's deadline passed before our reveal was mined. */
  | 'deadline'

/**
 * Where a transaction (or, while awaiting the reveal, a read) stands. `attempt` counts sends,
 * so a retry timer from an earlier attempt is recognised as stale.
 */
export type Attempt =
  /** Nothing outstanding (awaitingReveal: waiting on the watcher alone). */
  | {status: 'idle', attempt: number}
  /** Sent; its reply is awaited (a reply always comes: the chain client never loses one). */
  | {status: 'inFlight', attempt: number}
  /** A transient failure: sent again at `retryAtMs`. */
  | {status: 'backoff', attempt: number, retryAtMs: number}
  /** The chain does not know the task yet: sent again on its TaskCreated, or at `retryAtMs` at the latest. */
  | {status: 'awaitingTask', attempt: number, retryAtMs: number}

interface Held {
  /** The task as gossiped: prompt, mode, assignees, oracle, commit deadline (ms). */
  task: Task
  /** This miner: who "us" is when a reassignment or a precommit is seen on chain. */
  miner: Address
  takenAt: number
}

export type MinerTask =
  /**
   * `slotless`: a competing task whose slots others took meanwhile. The work goes on to the
   * oracle (a verifying oracle hears twice as many competitors as slots: when a fast slot holder
   * lied, an honest output is what the user gets), unpaid, and the task ends there.
   */
  | Held & {phase: 'inferring', slotless?: boolean}
  /** The result exists (salt included) and went to the oracle; the precommit tx is under way. */
  | Held & {phase: 'precommitting', result: MinerResult, tx: Attempt, revealOpen: boolean}
  /** Our precommit is mined; the reveal opens when every slot has precommitted. */
  | Held & {phase: 'awaitingReveal', result: MinerResult, read: Attempt}
  | Held & {phase: 'committing', result: MinerResult, tx: Attempt}
  | Held & {phase: 'done', result: MinerResult}
  | Held & {phase: 'lost', reason: LostReason, detail: string}
  | Held & {phase: 'failed', code: string, error: string}

/** Phases a task never leaves. */
export const FINISHED_PHASES = ['done', 'lost', 'failed'] as const
export type FinishedPhase = typeof FINISHED_PHASES[number]

/** Phases with a pending retry timer (`RetryDue.phase`). */
type RetryingPhase = 'precommitting' | 'awaitingReveal' | 'committing'

export type MinerTaskEvent =
  /** Inference finished normally; the actor made the salt and commitment. */
  | {type: 'Inferred', result: MinerResult}
  | {type: 'InferenceFailed', code: string, error: string}
  /** The oracle hung up the stream, or inference stopped with finishReason `abort`. */
  | {type: 'Cancelled'}
  /** Our precommit is on chain (its tx reply, or the watcher's TaskPrecommitted of us). */
  | {type: 'PrecommitMined'}
  /** The precommit reverted with the contract's custom error `errorName`. */
  | {type: 'PrecommitRejected', errorName: string}
  /** The precommit did not get an answer from the chain (RPC down, timeout): transient. */
  | {type: 'PrecommitFailed', error: string}
  /** The watcher saw the task's TaskCreated. */
  | {type: 'TaskCreatedOnChain'}
  /** The task's chain state: a TaskStateChanged/TaskEnded/TaskExpired from the watcher, or a read. */
  | {type: 'ChainState', state: TaskState}
  /** A `readChainState` got no answer. */
  | {type: 'ChainReadFailed', error: string}
  | {type: 'Reassigned', from: Address, to: Address}
  /** Our commit is on chain (its tx reply, or the watcher's TaskCommitted of us). */
  | {type: 'CommitMined'}
  | {type: 'CommitRejected', errorName: string}
  | {type: 'CommitFailed', error: string}
  /** The timer of a retry scheduled in `phase` for `attempt`. */
  | {type: 'RetryDue', phase: RetryingPhase, attempt: number}
  /** The timer at the task's deadline. */
  | {type: 'DeadlinePassed'}
  /**
   * The timer just after the precommit deadline: a precommitted miner may then reveal even though
   * other slots never precommitted (the contract's late reveal), so our work is paid.
   */
  | {type: 'RevealDue'}
  /** The node (or the mining actor) restarted with this task open in its journal. */
  | {type: 'Restarted'}

export type MinerTaskEventType = MinerTaskEvent['type']

/** What the actor must do; data only, about the task the step was for. */
export type MinerEffect =
  /** Open the task's result stream to its oracle. */
  | {type: 'openStream'}
  /** Run the task's prompt, streaming tokens to the oracle once the stream is open. */
  | {type: 'runInference'}
  | {type: 'cancelInference'}
  /** Finish the oracle stream with the result. */
  | {type: 'deliverResult', result: MinerResult}
  | {type: 'abortStream', reason: string}
  | {type: 'gossipPrecommit', commitment: string}
  | {type: 'sendPrecommit', commitment: string}
  | {type: 'sendCommit', output: string, salt: string}
  | {type: 'gossipCommit', result: MinerResult}
  /** Read the task's state on chain; answered with ChainState or ChainReadFailed. */
  | {type: 'readChainState'}
  /** Feed `event` back at `atMs` (ms since the epoch). */
  | {type: 'timer', atMs: number, event: MinerTaskEvent}
  | {type: 'log', level: 'debug' | 'info' | 'warn', msg: string, fields?: Record<string, unknown>}

export type MinerEffectType = MinerEffect['type']

export interface MinerStep {
  task: MinerTask
  effects: MinerEffect[]
}

/** Retries of transient failures: 1 s doubling to 10 s, never at or past the task's deadline. */
export const RETRY_BACKOFF_MS = {initial: 1_000, max: 10_000} as const
/** The last retry lands at least this long before the deadline, so its tx can still be mined. */
const RETRY_DEADLINE_MARGIN_MS = 500
/** After the precommit deadline, a reveal waits this long: the next block's timestamp must be past it. */
export const LATE_REVEAL_GRACE_MS = 2_000
/** A late reveal the chain refused (no block past the deadline yet) is tried again this often. */
const LATE_REVEAL_RETRY_MS = 2_000

/** Delay before the retry that follows attempt `attempt` (1-based). */
export function retryDelayMs (attempt: number): number {
  return Math.min(RETRY_BACKOFF_MS.max, RETRY_BACKOFF_MS.initial * 2 ** Math.max(0, attempt - 1))
}

export function isFinished (task: MinerTask): task is MinerTask & {phase: FinishedPhase} {
  return (FINISHED_PHASES as readonly string[]).includes(task.phase)
}

/** A task just taken: open the oracle stream, start inference, and time the deadline. */
export function takeTask (task: Task, miner: Address, now: number): MinerStep {
  return {
    task: {phase: 'inferring', task, miner, takenAt: now},
    effects: [
      {type: 'openStream'},
      {type: 'runInference'},
      deadlineTimer(task),
      log('info', 'task taken', {mode: task.mode})
    ]
  }
}

/** The task after `event`, and what to do about it. An event that does not apply returns `task` itself. */
export function step (task: MinerTask, event: MinerTaskEvent, now: number): MinerStep {
  switch (task.phase) {
    case 'inferring': return inferring(task, event)
    case 'precommitting': return precommitting(task, event, now)
    case 'awaitingReveal': return awaitingReveal(task, event, now)
    case 'committing': return committing(task, event, now)
    case 'done':
    case 'lost':
    case 'failed':
      return ignore(task, event)
    default:
      return assertNever(task, 'miner task phase')
  }
}

/**
 * The miner event a chain event stands for, for a task this miner holds; undefined when it
 * means nothing to a miner. TaskEnded/TaskExpired arrive as states (the contract also emits a
 * TaskStateChanged for them; the second is a no-op).
 */
export function minerEventOf (event: TaskEvent, miner: Address): MinerTaskEvent | undefined {
  switch (event.type) {
    case 'TaskCreated': return {type: 'TaskCreatedOnChain'}
    case 'TaskStateChanged': return {type: 'ChainState', state: event.state}
    case 'MinerReassigned': return {type: 'Reassigned', from: event.from, to: event.to}
    // Our own tx seen by the watcher: settles a tx whose reply was lost (RPC failure after broadcast).
    case 'TaskPrecommitted': return event.miner === miner ? {type: 'PrecommitMined'} : undefined
    case 'TaskCommitted': return event.miner === miner ? {type: 'CommitMined'} : undefined
    case 'TaskEnded': return {type: 'ChainState', state: TaskState.Ended}
    case 'TaskExpired': return {type: 'ChainState', state: TaskState.Expired}
    // Our assignment is known from the gossiped task (a reassignment to us is re-gossiped).
    case 'MinerAssigned': return undefined
    default: return assertNever(event, 'task event')
  }
}

type Of<P extends MinerTaskPhase> = MinerTask & {phase: P}

function inferring (task: Of<'inferring'>, event: MinerTaskEvent): MinerStep {
  // Inference stops and the oracle stream closes whenever the task ends here.
  const stop = (reason: LostReason, detail: string, level: 'info' | 'warn' = 'info'): MinerStep => ({
    task: lost(task, reason, detail),
    effects: [{type: 'cancelInference'}, {type: 'abortStream', reason: detail}, log(level, 'task lost while inferring', {reason, detail})]
  })
  switch (event.type) {
    case 'Inferred': {
      const result = event.result
      if (task.slotless === true) {
        return {
          task: lost(task, 'taskClosed', 'every competing slot was taken; the result went to the oracle, unpaid'),
          effects: [{type: 'deliverResult', result}, log('info', 'inference done after every competing slot was taken; result given to the oracle')]
        }
      }
      return {
        task: {...held(task), phase: 'precommitting', result, tx: {status: 'inFlight', attempt: 1}, revealOpen: false},
        effects: [
          {type: 'deliverResult', result},
          {type: 'gossipPrecommit', commitment: result.commitment},
          {type: 'sendPrecommit', commitment: result.commitment},
          log('info', 'inference done; precommitting', {tokens: result.tokenIds.length})
        ]
      }
    }
    case 'InferenceFailed':
      return {
        task: {...held(task), phase: 'failed', code: event.code, error: event.error},
        effects: [{type: 'abortStream', reason: `inference failed: ${event.code}`}, log('warn', 'inference failed; the oracle will reassign', {code: event.code, error: event.error})]
      }
    case 'Cancelled':
      // A partial answer is never committed.
      return stop('cancelled', 'cancelled by the oracle')
    case 'Reassigned':
      return event.from === task.miner ? stop('reassigned', `slot reassigned to ${event.to}`) : ignore(task, event)
    case 'ChainState': {
      if (isClosed(event.state)) return stop('taskClosed', `chain state ${stateName(event.state)} before our result`)
      // Competing slots are taken at precommit: all taken while we still infer means none is ours.
      // The output still goes to the oracle, which may need it to answer (see `slotless`).
      if (task.task.mode === 'competing' && COMPETING_SLOTS_TAKEN.has(event.state)) {
        return task.slotless === true ? ignore(task, event) : {task: {...task, slotless: true}, effects: [log('info', 'every competing slot taken; finishing the output for the oracle')]}
      }
      // Every slot held by miners that have precommitted or are past it: not us.
      if (event.state === TaskState.Precommitted) return stop('taskClosed', `chain state ${stateName(event.state)} before our result`)
      return ignore(task, event)
    }
    case 'DeadlinePassed':
      return stop('deadline', 'deadline passed during inference', 'warn')
    case 'Restarted':
      // The work and its stream died with the process; the oracle reassigns the slot.
      return {
        task: {...held(task), phase: 'failed', code: 'RESTARTED', error: 'the miner restarted during inference'},
        effects: [{type: 'cancelInference'}, {type: 'abortStream', reason: 'restarted'}, log('warn', 'restarted during inference; task failed')]
      }
    case 'PrecommitMined':
    case 'PrecommitRejected':
    case 'PrecommitFailed':
    case 'TaskCreatedOnChain':
    case 'ChainReadFailed':
    case 'CommitMined':
    case 'CommitRejected':
    case 'CommitFailed':
    case 'RetryDue':
    case 'RevealDue':
      return ignore(task, event)
    default:
      return assertNever(event, 'miner task event')
  }
}

function precommitting (task: Of<'precommitting'>, event: MinerTaskEvent, now: number): MinerStep {
  const send = (attempt: number): MinerStep => ({
    task: {...task, tx: {status: 'inFlight', attempt}},
    effects: [{type: 'sendPrecommit', commitment: task.result.commitment}]
  })
  switch (event.type) {
    case 'PrecommitMined':
      return precommitted(task, false)
    case 'PrecommitRejected': {
      if (task.tx.status !== 'inFlight') return ignore(task, event)
      // The oracle gossips a task before its createTask is mined (even through a chain outage).
      if (event.errorName === 'UnknownTask') return retry(task, 'awaitingTask', now, 'task not on chain yet; precommit waits for it')
      // Likewise a reassignment: the gossip naming us may outrun the oracle's reassign tx.
      if (event.errorName === 'NotAssigned' && task.task.mode === 'parallel' && task.task.assignees.includes(task.miner)) {
        return retry(task, 'awaitingTask', now, 'our assignment is not on chain yet; precommit waits for it')
      }
      // Our earlier attempt made it (its reply was lost, or the node restarted after sending).
      if (event.errorName === 'AlreadyPrecommitted') return precommitted(task, true)
      // Other competing miners filled the slots first: expected, not an error.
      const level = event.errorName === 'SlotsFull' ? 'info' : 'warn'
      return {task: lost(task, 'rejected', event.errorName), effects: [log(level, 'precommit refused', {errorName: event.errorName})]}
    }
    case 'PrecommitFailed':
      if (task.tx.status !== 'inFlight') return ignore(task, event)
      return retry(task, 'backoff', now, 'precommit failed; retrying', {error: event.error})
    case 'TaskCreatedOnChain':
      return task.tx.status === 'awaitingTask' ? send(task.tx.attempt + 1) : ignore(task, event)
    case 'RetryDue':
      return isDue(task.tx, 'precommitting', event) ? send(task.tx.attempt + 1) : ignore(task, event)
    case 'ChainState': {
      if (isClosed(event.state) || event.state === TaskState.Committed) {
        return {task: lost(task, 'taskClosed', `chain state ${stateName(event.state)} before our precommit`), effects: [log('warn', 'task moved on before our precommit', {state: stateName(event.state)})]}
      }
      // Every slot precommitted: if ours is one of them (the tx reply says), commit at once. A
      // reassignment sends the state back to Assigned, closing the reveal again.
      const revealOpen = event.state === TaskState.Precommitted
      return revealOpen === task.revealOpen ? ignore(task, event) : {task: {...task, revealOpen}, effects: []}
    }
    case 'Reassigned':
      if (event.from === task.miner) return reassignedAway(task, event.to)
      // The reassignment to us is on chain now: the precommit waiting for it goes.
      return event.to === task.miner && task.tx.status === 'awaitingTask' ? send(task.tx.attempt + 1) : ignore(task, event)
    case 'DeadlinePassed':
      // The precommit deadline comes first: a precommit mined now could not be revealed.
      return {task: lost(task, 'deadline', 'deadline passed before the precommit was mined'), effects: [log('warn', 'deadline passed while precommitting')]}
    case 'Restarted':
      return {task: {...task, tx: {status: 'inFlight', attempt: task.tx.attempt + 1}}, effects: [{type: 'sendPrecommit', commitment: task.result.commitment}, deadlineTimer(task.task), log('info', 'restarted; precommitting again')]}
    case 'Inferred':
    case 'InferenceFailed':
    case 'Cancelled':
    case 'ChainReadFailed':
    case 'CommitMined':
    case 'CommitRejected':
    case 'CommitFailed':
    // Our precommit is not mined yet: the late reveal is armed once it is.
    case 'RevealDue':
      return ignore(task, event)
    default:
      return assertNever(event, 'miner task event')
  }
}

/** Our precommit is on chain: commit now if the reveal is known open, else wait (reading the state when `check`). */
function precommitted (task: Of<'precommitting'>, check: boolean): MinerStep {
  if (task.revealOpen) return startCommit(task)
  return {
    task: {...held(task), phase: 'awaitingReveal', result: task.result, read: check ? {status: 'inFlight', attempt: 1} : {status: 'idle', attempt: 0}},
    effects: [...(check ? [{type: 'readChainState'} as const] : []), revealTimer(task.task), log('info', 'precommit mined; awaiting the reveal phase')]
  }
}

function awaitingReveal (task: Of<'awaitingReveal'>, event: MinerTaskEvent, now: number): MinerStep {
  switch (event.type) {
    case 'ChainState': {
      if (event.state === TaskState.Precommitted) return startCommit(task)
      if (isClosed(event.state) || event.state === TaskState.Committed) {
        return {task: lost(task, 'taskClosed', `chain state ${stateName(event.state)} before our reveal`), effects: [log('warn', 'task moved on without our reveal', {state: stateName(event.state)})]}
      }
      // Not yet (or again not: a reassignment reopened precommits); the watcher will tell.
      return task.read.status === 'inFlight' ? {task: {...task, read: {status: 'idle', attempt: task.read.attempt}}, effects: []} : ignore(task, event)
    }
    case 'ChainReadFailed':
      if (task.read.status !== 'inFlight') return ignore(task, event)
      return retry(task, 'backoff', now, 'chain state read failed; retrying', {error: event.error})
    case 'RetryDue':
      return isDue(task.read, 'awaitingReveal', event) ? readState(task, task.read.attempt + 1) : ignore(task, event)
    case 'Reassigned':
      return event.from === task.miner ? reassignedAway(task, event.to) : ignore(task, event)
    case 'RevealDue':
      // Past the precommit deadline every precommitted slot may reveal; the chain refuses
      // (WrongState) if ours somehow may not, and we wait again.
      return startCommit(task)
    case 'DeadlinePassed':
      return {task: lost(task, 'deadline', 'the reveal phase never opened before the deadline'), effects: [log('warn', 'deadline passed awaiting the reveal')]}
    case 'Restarted': {
      // The state change may have been delivered while we were down: ask once.
      const next = readState(task, task.read.attempt + 1)
      return {task: next.task, effects: [...next.effects, deadlineTimer(task.task), revealTimer(task.task), log('info', 'restarted; reading the task state')]}
    }
    case 'Inferred':
    case 'InferenceFailed':
    case 'Cancelled':
    case 'PrecommitMined':
    case 'PrecommitRejected':
    case 'PrecommitFailed':
    case 'TaskCreatedOnChain':
    case 'CommitMined':
    case 'CommitRejected':
    case 'CommitFailed':
      return ignore(task, event)
    default:
      return assertNever(event, 'miner task event')
  }
}

function readState (task: Of<'awaitingReveal'>, attempt: number): MinerStep {
  return {task: {...task, read: {status: 'inFlight', attempt}}, effects: [{type: 'readChainState'}]}
}

function startCommit (task: Of<'precommitting'> | Of<'awaitingReveal'>): MinerStep {
  return {
    task: {...held(task), phase: 'committing', result: task.result, tx: {status: 'inFlight', attempt: 1}},
    effects: [{type: 'sendCommit', output: task.result.output, salt: task.result.salt}, log('info', 'reveal phase open; committing')]
  }
}

function committing (task: Of<'committing'>, event: MinerTaskEvent, now: number): MinerStep {
  const send = (attempt: number): MinerStep => ({
    task: {...task, tx: {status: 'inFlight', attempt}},
    effects: [{type: 'sendCommit', output: task.result.output, salt: task.result.salt}]
  })
  switch (event.type) {
    case 'CommitMined':
      return committed(task)
    case 'CommitRejected':
      if (task.tx.status !== 'inFlight') return ignore(task, event)
      // An earlier attempt made it (reply lost, or sent before a restart).
      if (event.errorName === 'AlreadyCommitted') return committed(task)
      // Not in the reveal phase after all: a reassignment reopened precommits (or the RPC node
      // lags the watcher). Back to waiting; the read tells which.
      if (event.errorName === 'WrongState') {
        // Past the precommit deadline the chain may just not have a block that late yet: try
        // the late reveal again shortly, until the deadline.
        const again = Math.max(now + LATE_REVEAL_RETRY_MS, task.task.precommitDeadline + LATE_REVEAL_GRACE_MS)
        return {
          task: {...held(task), phase: 'awaitingReveal', result: task.result, read: {status: 'inFlight', attempt: 1}},
          effects: [
            {type: 'readChainState'},
            ...(again < task.task.deadline - RETRY_DEADLINE_MARGIN_MS ? [{type: 'timer', atMs: again, event: {type: 'RevealDue'}} as const] : []),
            log('info', 'commit refused: reveal phase not open; waiting again')
          ]
        }
      }
      return {task: lost(task, 'rejected', event.errorName), effects: [log('warn', 'commit refused', {errorName: event.errorName})]}
    case 'CommitFailed':
      if (task.tx.status !== 'inFlight') return ignore(task, event)
      return retry(task, 'backoff', now, 'commit failed; retrying', {error: event.error})
    case 'RetryDue':
      return isDue(task.tx, 'committing', event) ? send(task.tx.attempt + 1) : ignore(task, event)
    case 'Reassigned':
      // Only possible before any reveal, so our commit has not landed: it will revert NotAssigned.
      return event.from === task.miner ? reassignedAway(task, event.to) : ignore(task, event)
    case 'DeadlinePassed':
      // A commit in flight may still have been mined in time: its reply settles the task.
      if (task.tx.status === 'inFlight') return ignore(task, event)
      return {task: lost(task, 'deadline', 'deadline passed before the commit was mined'), effects: [log('warn', 'deadline passed while committing')]}
    case 'Restarted':
      // Sent again even past the deadline: AlreadyCommitted (checked first on chain) tells us it made it.
      return {task: {...task, tx: {status: 'inFlight', attempt: task.tx.attempt + 1}}, effects: [{type: 'sendCommit', output: task.result.output, salt: task.result.salt}, deadlineTimer(task.task), log('info', 'restarted; committing again')]}
    case 'ChainState':
      // The commit's reply settles it (a last reveal moves the state to Committed before we hear).
      return ignore(task, event)
    case 'Inferred':
    case 'InferenceFailed':
    case 'Cancelled':
    case 'PrecommitMined':
    case 'PrecommitRejected':
    case 'PrecommitFailed':
    case 'TaskCreatedOnChain':
    case 'ChainReadFailed':
    case 'RevealDue':
      return ignore(task, event)
    default:
      return assertNever(event, 'miner task event')
  }
}

function committed (task: Of<'committing'>): MinerStep {
  return {
    task: {...held(task), phase: 'done', result: task.result},
    effects: [{type: 'gossipCommit', result: task.result}, log('info', 'task committed')]
  }
}

function reassignedAway (task: MinerTask, to: Address): MinerStep {
  return {task: lost(task, 'reassigned', `slot reassigned to ${to}`), effects: [log('warn', 'our slot was reassigned', {to})]}
}

/**
 * Schedules the next attempt of the phase's tx (or read) after a backoff, at the latest a margin
 * before the deadline; a task with no time left for one is lost.
 */
function retry<T extends Of<'precommitting'> | Of<'awaitingReveal'> | Of<'committing'>> (
  task: T, status: 'backoff' | 'awaitingTask', now: number, msg: string, fields: Record<string, unknown> = {}
): MinerStep {
  const current = task.phase === 'awaitingReveal' ? task.read : task.tx
  const retryAtMs = Math.min(now + retryDelayMs(current.attempt), task.task.deadline - RETRY_DEADLINE_MARGIN_MS)
  if (retryAtMs <= now) {
    return {task: lost(task, 'deadline', `no time left to retry: ${msg}`), effects: [log('warn', 'giving up: the deadline is too close', {phase: task.phase, ...fields})]}
  }
  const attempt: Attempt = {status, attempt: current.attempt, retryAtMs}
  const next: MinerTask = task.phase === 'awaitingReveal' ? {...task, read: attempt} : {...task, tx: attempt}
  return {
    task: next,
    effects: [{type: 'timer', atMs: retryAtMs, event: {type: 'RetryDue', phase: task.phase, attempt: current.attempt}}, log(status === 'backoff' ? 'warn' : 'info', msg, {attempt: current.attempt, retryInMs: retryAtMs - now, ...fields})]
  }
}

/** A retry timer for the attempt now waiting, not a stale one from an attempt already replaced. */
function isDue (attempt: Attempt, phase: RetryingPhase, event: {phase: RetryingPhase, attempt: number}): boolean {
  return event.phase === phase && (attempt.status === 'backoff' || attempt.status === 'awaitingTask') && attempt.attempt === event.attempt
}

/** Ended or expired: nothing left to do on chain. */
function isClosed (state: TaskState): boolean {
  return state === TaskState.Ended || state === TaskState.Expired
}

function stateName (state: TaskState): string {
  return Object.entries(TaskState).find(([, code]) => code === state)?.[0] ?? String(state)
}

function held (task: MinerTask): Held {
  return {task: task.task, miner: task.miner, takenAt: task.takenAt}
}

function lost (task: MinerTask, reason: LostReason, detail: string): MinerTask {
  return {...held(task), phase: 'lost', reason, detail}
}

function revealTimer (task: Task): MinerEffect {
  return {type: 'timer', atMs: task.precommitDeadline + LATE_REVEAL_GRACE_MS, event: {type: 'RevealDue'}}
}

function deadlineTimer (task: Task): MinerEffect {
  return {type: 'timer', atMs: task.deadline, event: {type: 'DeadlinePassed'}}
}

function ignore (task: MinerTask, event: MinerTaskEvent): MinerStep {
  return {task, effects: [log('debug', `${event.type} ignored while ${task.phase}`)]}
}

function log (level: 'debug' | 'info' | 'warn', msg: string, fields?: Record<string, unknown>): MinerEffect {
  return fields === undefined ? {type: 'log', level, msg} : {type: 'log', level, msg, fields}
}
