import {commitmentFor} from '../../chain/commitment.js'
import {COMPETING_SLOTS_TAKEN, TaskState} from '../../chain/enums.js'
import type {Address} from '../../protocols/address.js'
import {outputHashOf, type FinishReason, type MinerResult, type Task} from '../../protocols/messages.js'
import type {DecodedEvent} from '../chain/messages.js'
import {keccak256, toUtf8Bytes} from 'ethers'
import type {ModelId} from '../../protocols/modelId.js'
import type {Claim} from '../../verify/verifier.js'
import type {CompleteReply, TaskRecord, TaskRequest, TxRef, VerdictSummary} from './messages.js'
import {tallyResults, type Tally} from './tallyResults.js'
import {decideVerified} from './verifiedConsensus.js'

/** The transactions an oracle sends for a task. */
export type TxIntent =
  | {kind: 'createTask'}
  | {kind: 'reassign', from: Address, to: Address}
  /**
   * `verdicts`: a verified task settles (`Cognitive.settle`): accepted hashes are paid, rejected
   * ones recorded as faults, any other reveal unpaid without a fault. Without: `end` (majority by hash).
   */
  | {kind: 'end', verdicts?: {accepted: string[], rejected: string[]}}

/**
 * One task as its oracle sees it: the API's record plus what the machine needs to decide.
 * JSON-safe (it is journaled as is): no bigint, Map or Set.
 */
export interface OracleTask {
  record: TaskRecord
  /** The id the chain derives the task id from (Cognitive.taskIdFor). */
  requestId: string
  /** Chain deadlines, in ms (whole seconds on chain). */
  precommitDeadline: number
  commitDeadline: number
  /** The assignees createTask names: resending it after a restart must say the same. */
  createdWith: Address[]
  /** Outputs by miner (the record carries only hashes and the answer). */
  outputs: Record<string, string>
  /** What each miner's result claims beside its text: token ids and determinism class (what the verifier checks). */
  claims: Record<string, {tokenIds: number[], determinismClass: string, finishReason: FinishReason}>
  /** Outputs are verified before anyone sees them and the task settles by verdict (set at creation from the oracle's config). */
  verify: boolean
  /** Verifications in flight, by `outputHash|class` (one check serves every identical claim). */
  verifying: string[]
  /** Competing mode: the window closed; the answer weighs every result received. */
  competingClosed: boolean
  /** Miners replaced or refused on this task: never picked again for it. */
  excluded: Address[]
  /** createTask: not yet mined, mined, or refused for good. */
  onChain: 'pending' | 'created' | 'refused'
  /** Last state the chain reported (watcher or a read); undefined until one arrived. */
  chainState?: TaskState
  /** Reassignments decided (and gossiped) but not yet sent: the chain takes them once the task exists there. */
  reassignQueue: Array<{from: Address, to: Address}>
  /** A reassign transaction is in flight (they go one at a time, in order). */
  reassigning: boolean
  /** The client still waits for a reply. */
  awaitingReply: boolean
  /** Our `end` (or `settle`) transaction is in flight. */
  ending: boolean
  closing: boolean
  /** How many times in a row a transaction of this task failed transiently (backoff). */
  retries: number
}

export type OracleTaskEvent =
  | {type: 'CreateMined', tx: TxRef}
  /** The chain refused createTask (a revert: `TaskExists` after a resend means it is there). */
  | {type: 'CreateRejected', errorName: string, error: string}
  /** createTask could not reach the chain (RPC down): tried again until the deadline. */
  | {type: 'CreateFailed', error: string}
  /** A miner's result over its authenticated stream. */
  | {type: 'ResultReceived', result: MinerResult, sender: Address}
  /** The first token of the answer reached the oracle. */
  | {type: 'FirstToken'}
  | {type: 'PrecommitSeen', miner: Address, commitment: string}
  /** A miner's reveal (gossiped once its commit is mined): its whole result, checked by the gossip validator against the signer. */
  | {type: 'CommitSeen', result: MinerResult}
  /** `miner` did not deliver in time; `replacement` is the miner the actor picked, if any was ready. */
  | {type: 'ResultTimeout', miner: Address, replacement?: Address}
  | {type: 'CompetingTimeout'}
  | {type: 'ReassignMined', from: Address, to: Address, tx: TxRef}
  | {type: 'ReassignRejected', from: Address, to: Address, errorName: string, error: string}
  | {type: 'ReassignFailed', from: Address, to: Address, error: string}
  | {type: 'ClientGone'}
  /** The task's state on chain (a TaskStateChanged event, or a read while reconciling). */
  | {type: 'ChainState', state: TaskState}
  /** A read while reconciling found no such task on chain. */
  | {type: 'ChainUnknown'}
  | {type: 'ChainReadFailed', error: string}
  /** The phase deadline may have passed: close the task if the chain allows it. */
  | {type: 'SettleDue'}
  | {type: 'Resend', tx: TxIntent}
  | {type: 'EndMined', tx: TxRef}
  | {type: 'EndRejected', errorName: string, error: string}
  | {type: 'EndFailed', error: string}
  /** The chain closed the task (TaskEnded / TaskExpired), whoever sent the `end`. */
  | {type: 'Closed'}
  | {type: 'Trail', events: DecodedEvent[]}
  | {type: 'TrailFailed', error: string}
  /** The oracle process restarted: the client is gone and the chain is asked where the task is. */
  | {type: 'Restarted'}
  /** Ask the chain again where the task stands (after a failed read). */
  | {type: 'Reconcile'}
  /** The verifier judged the output of `miner` (and every identical claim of its class). */
  | {type: 'Verified', miner: Address, verdict: VerdictSummary}
  /** The verifier could not be asked (unavailable, crashed): asked again after a while. */
  | {type: 'VerifyFailed', miner: Address, error: string}
  | {type: 'Reverify', miner: Address}

export type OracleEffect =
  | {type: 'reply', reply: CompleteReply}
  | {type: 'gossip', task: Task}
  | {type: 'send', tx: TxIntent}
  | {type: 'timer', atMs: number, event: OracleTaskEvent}
  /** Close the miners' task streams (their work is no longer wanted), but those of `keep`; the miners get `reason`. */
  | {type: 'hangUp', keep?: Address[], reason?: string}
  | {type: 'readChainState'}
  | {type: 'queryTrail'}
  /** Ask the verifier about `miner`'s claim; `reexecute`: an audit, running the task again in the miner's class. */
  | {type: 'verify', miner: Address, modelId: ModelId, claim: Claim, reexecute: boolean}
  | {type: 'log', level: 'debug' | 'info' | 'warn', msg: string, fields?: Record<string, unknown>}

export interface Stepped {
  task: OracleTask
  effects: OracleEffect[]
}

export interface OracleTaskConfig {
  oracle: Address
  resultTimeoutMs: number
  /** How long to wait before asking again for a replacement miner. */
  retryMs: number
  /** New tasks are verified before anyone sees them (false: this oracle has no verifier; tasks settle by hash majority, unverified). */
  verify: boolean
  /** Classes a verifier can re-execute exactly (its own): only their results can be audited. */
  auditableClasses: readonly string[]
  /** Probability that a k=1 or competing result of the verifier's class is audited by re-execution. */
  auditRate: number
}

export interface NewTask {
  taskId: string
  requestId: string
  request: TaskRequest
  /** Parallel mode: the k miners picked; competing mode: none. */
  assignees: Address[]
  precommitWindowS: number
  commitWindowS: number
}

/** Phases in which nothing more happens to a task. */
export const FINISHED_PHASES: ReadonlySet<TaskRecord['phase']> = new Set(['ended', 'expired', 'failed'])
/** Grace after a chain deadline before `end` is sent: block timestamps trail the wall clock a little. */
const DEADLINE_GRACE_MS = 1_500
/** Transient transaction failures back off from 1 s, doubling, up to this. */
const MAX_RETRY_MS = 10_000
/** createTask is not sent once the precommit deadline is this close: miners could not precommit anyway. */
const CREATE_CUTOFF_MS = 5_000

export function isOpen (task: OracleTask): boolean {
  return !FINISHED_PHASES.has(task.record.phase)
}

/**
 * A new task: it is gossiped at once (the oracle's signed gossip is its commitment; miners start
 * before the chain hears of it), createTask goes to the chain beside it, and the result timers
 * start now.
 */
export function createOracleTask (init: NewTask, now: number, config: OracleTaskConfig): Stepped {
  const {request, taskId} = init
  const nowS = Math.floor(now / 1000)
  const record: TaskRecord = {
    taskId, phase: 'running', mode: request.mode, k: request.redundancy, modelId: request.modelId, prompt: request.prompt,
    params: request.params, seed: request.seed, assignees: [...init.assignees], reassignments: [], precommits: [], results: [],
    reveals: [], timings: {requestedAt: now, broadcastAt: now}, txs: [], trail: []
  }
  const task: OracleTask = {
    record, requestId: init.requestId, precommitDeadline: (nowS + init.precommitWindowS) * 1000, commitDeadline: (nowS + init.commitWindowS) * 1000,
    createdWith: [...init.assignees], outputs: {}, claims: {}, verify: config.verify, verifying: [], competingClosed: false,
    excluded: [], onChain: 'pending', reassignQueue: [], reassigning: false,
    awaitingReply: true, ending: false, closing: false, retries: 0
  }
  const timers: OracleEffect[] = request.mode === 'parallel'
    ? init.assignees.map(miner => timer(now + config.resultTimeoutMs, {type: 'ResultTimeout', miner}))
    : [timer(now + config.resultTimeoutMs, {type: 'CompetingTimeout'})]
  return {
    task,
    effects: [
      gossip(task, config),
      {type: 'send', tx: {kind: 'createTask'}},
      ...timers,
      {type: 'log', level: 'info', msg: 'task gossiped', fields: {taskId, mode: record.mode, k: record.k, assignees: record.assignees}}
    ]
  }
}

/** The oracle's task machine: the only place a task changes. */
export function step (task: OracleTask, event: OracleTaskEvent, now: number, config: OracleTaskConfig): Stepped {
  // A finished task takes no event but the receipt of its own createTask: the tx queue polls for
  // receipts, and a short task can be seen through on chain, ended and settled before it comes.
  if (!isOpen(task)) {
    if (event.type !== 'CreateMined') return unchanged(task)
    const draft = structuredClone(task)
    return recordCreateTx(draft, event.tx, now) ? {task: draft, effects: []} : unchanged(task)
  }
  const draft = structuredClone(task)
  const effects: OracleEffect[] = []
  const out: Stepped = {task: draft, effects}
  // Chain bookkeeping is the same in every open phase.
  switch (event.type) {
    case 'CreateMined':
      // The chain watcher may have shown the task created already (ChainState): the tx still goes on record.
      if (!recordCreateTx(draft, event.tx, now) && draft.onChain === 'created') return unchanged(task)
      if (draft.onChain !== 'created') {
        draft.onChain = 'created'
        draft.retries = 0
        nextReassign(draft, effects)
      }
      return out
    case 'CreateFailed':
      if (draft.onChain !== 'pending') return unchanged(task)
      if (now + CREATE_CUTOFF_MS >= draft.precommitDeadline) return chainRefused(draft, effects, `the chain could not be reached before the task's deadline: ${event.error}`, 'CHAIN_UNAVAILABLE')
      effects.push(retry(draft, now, {type: 'Resend', tx: {kind: 'createTask'}}), {type: 'log', level: 'warn', msg: 'createTask did not reach the chain; retrying', fields: {taskId: draft.record.taskId, error: event.error}})
      return out
    case 'CreateRejected':
      if (draft.onChain !== 'pending') return unchanged(task)
      // A resend after a restart finds the first copy already mined.
      if (event.errorName === 'TaskExists') {
        draft.onChain = 'created'
        nextReassign(draft, effects)
        return out
      }
      return chainRefused(draft, effects, `the chain refused the task: ${event.errorName}: ${event.error}`, 'TASK_NOT_CREATED')
    case 'Resend':
      // Reassignments go one at a time from their queue, where a failed one went back.
      if (event.tx.kind === 'reassign') {
        nextReassign(draft, effects)
        return effects.length === 0 ? unchanged(task) : out
      }
      if (event.tx.kind === 'createTask' && draft.onChain !== 'pending') return unchanged(task)
      if (event.tx.kind === 'end' && (draft.record.phase !== 'settling' || draft.ending)) return unchanged(task)
      if (event.tx.kind === 'end') draft.ending = true
      effects.push({type: 'send', tx: event.tx.kind === 'end' ? endTx(draft) : event.tx})
      return out
    case 'ReassignMined':
      draft.reassigning = false
      draft.retries = 0
      draft.record.txs.push({...event.tx, label: `reassign ${event.from} → ${event.to}`})
      nextReassign(draft, effects)
      return out
    case 'ReassignRejected':
      // The chain keeps the old miner in the slot (e.g. a reveal already started); the off-chain
      // answer still counts the replacement's result.
      draft.reassigning = false
      effects.push({type: 'log', level: 'warn', msg: 'reassign refused by the chain', fields: {taskId: draft.record.taskId, from: event.from, to: event.to, error: `${event.errorName}: ${event.error}`}})
      nextReassign(draft, effects)
      return out
    case 'ReassignFailed':
      draft.reassigning = false
      draft.reassignQueue.unshift({from: event.from, to: event.to})
      effects.push(retry(draft, now, {type: 'Resend', tx: {kind: 'reassign', from: event.from, to: event.to}}))
      return out
    case 'FirstToken':
      if (draft.record.timings.firstTokenAt != null) return unchanged(task)
      draft.record.timings.firstTokenAt = now
      return out
    case 'PrecommitSeen':
      if (draft.record.precommits.some(p => p.miner === event.miner)) return unchanged(task)
      draft.record.precommits.push({miner: event.miner, commitment: event.commitment, at: now})
      return out
    case 'CommitSeen': {
      const {miner, outputHash} = event.result
      if (draft.record.reveals.some(r => r.miner === miner)) return unchanged(task)
      draft.record.reveals.push({miner, outputHash, at: now})
      // A miner whose stream broke is heard through its reveal: the same result, signed by it.
      if (draft.record.phase === 'running') return running(draft, {type: 'ResultReceived', result: event.result, sender: miner}, now, config, out) ?? out
      // Answered already: a verified task still checks it, so that settlement pays only verified work.
      if (draft.verify && draft.outputs[miner] == null && takeResult(draft, event.result, miner, now) == null) requestVerification(draft, miner, config, effects)
      return out
    }
    case 'Verified': {
      const claim = draft.claims[event.miner]
      if (claim == null) return unchanged(task)
      const key = verificationKey(draft, event.miner)
      draft.verifying = draft.verifying.filter(k => k !== key)
      for (const r of draft.record.results) if (r.verdict == null && verificationKey(draft, r.miner) === key) r.verdict = event.verdict
      if (!event.verdict.accepted) effects.push({type: 'log', level: 'warn', msg: 'output failed verification', fields: {taskId: draft.record.taskId, miner: event.miner, method: event.verdict.method, reason: event.verdict.reason}})
      if (draft.record.phase === 'running') decide(draft, now, effects, config)
      else if (draft.verifying.length === 0) maybeEnd(draft, now, effects)
      return out
    }
    case 'VerifyFailed':
      // The check stays in flight (settlement waits for it) and is asked again.
      effects.push(timer(now + config.retryMs, {type: 'Reverify', miner: event.miner}),
        {type: 'log', level: 'warn', msg: 'verifier unavailable; asking again', fields: {taskId: draft.record.taskId, miner: event.miner, error: event.error}})
      return out
    case 'Reverify': {
      if (draft.record.results.find(r => r.miner === event.miner)?.verdict != null) return unchanged(task)
      if (now > draft.commitDeadline) {
        // Unchecked, it is neither paid nor counted against its miner (see endTx).
        draft.verifying = draft.verifying.filter(k => k !== verificationKey(draft, event.miner))
        effects.push({type: 'log', level: 'warn', msg: 'output left unverified: no verifier answered before the deadline', fields: {taskId: draft.record.taskId, miner: event.miner}})
        if (draft.record.phase === 'running') return fail(draft, now, effects, 503, 'VERIFIER_UNAVAILABLE', 'no verifier could check the results before the task\'s deadline')
        maybeEnd(draft, now, effects)
        return out
      }
      const verify = verifyEffect(draft, event.miner, config)
      if (verify == null) return unchanged(task)
      // Still in flight since the failed attempt (settlement waits for it).
      if (!draft.verifying.includes(verificationKey(draft, event.miner))) draft.verifying.push(verificationKey(draft, event.miner))
      effects.push(verify)
      return out
    }
    case 'ChainState':
      if (draft.chainState === event.state) return unchanged(task)
      draft.chainState = event.state
      if (draft.onChain === 'pending') {
        draft.onChain = 'created'
        nextReassign(draft, effects)
      }
      if (event.state === TaskState.Ended || event.state === TaskState.Expired) return closed(draft, effects)
      releaseSurplus(draft, effects)
      if (draft.record.phase === 'settling') maybeEnd(draft, now, effects)
      return out
    case 'Closed':
      return closed(draft, effects)
    default:
      break
  }
  const next = draft.record.phase === 'running' ? running(draft, event, now, config, out) : settling(draft, event, now, config, out)
  return next ?? unchanged(task)
}

/** Working: results come in, late miners are replaced, the first agreeing k results answer. */
/** Each phase returns the stepped task, or null when the event changes nothing in this phase. */
function running (task: OracleTask, event: OracleTaskEvent, now: number, config: OracleTaskConfig, out: Stepped): Stepped | null {
  const {record} = task
  const effects = out.effects
  switch (event.type) {
    case 'ResultReceived': {
      const {result, sender: miner} = event
      const log = (msg: string): Stepped => ({task: out.task, effects: [{type: 'log', level: 'warn', msg, fields: {taskId: record.taskId, miner}}]})
      // The stream's peer is authenticated; a result naming another miner is forged.
      if (result.miner !== miner) return log('result names another miner than its sender; ignored')
      if (record.mode === 'parallel' && !record.assignees.includes(miner)) return log('result from a miner not assigned; ignored')
      if (task.outputs[miner] != null) return null
      if (outputHashOf(result.output) !== result.outputHash || commitmentFor(BigInt(record.taskId), result.miner, result.outputHash, result.salt) !== result.commitment) {
        return log('result does not match its own hash or commitment; ignored')
      }
      const precommit = record.precommits.find(p => p.miner === miner)
      if (precommit != null && precommit.commitment !== result.commitment) return log('result contradicts the miner\'s gossiped precommit; ignored')
      // Verified competing tasks hear up to 2k competitors: a fast liar's rejected result must not shut out the honest ones.
      if (record.mode === 'competing' && Object.keys(task.outputs).length >= (task.verify ? 2 * record.k : record.k)) return null
      const refused = takeResult(task, result, miner, now)
      if (refused != null) return log(refused)
      if (record.mode === 'competing' && !record.assignees.includes(miner)) record.assignees.push(miner)
      if (task.verify) {
        requestVerification(task, miner, config, effects)
        decide(task, now, effects, config)
        return out
      }
      const tally = tallyResults(relevantResults(task), record.k)
      if (tally.status !== 'pending') answer(task, tally, now, effects)
      return out
    }
    case 'ResultTimeout': {
      const {miner, replacement} = event
      if (task.outputs[miner] != null || !record.assignees.includes(miner)) return null
      // It did the work (its precommit is out) and only its stream failed: replacing it would
      // void honest work. Its reveal brings the result, late reveals included.
      if (record.precommits.some(p => p.miner === miner)) {
        if (now > task.commitDeadline) return fail(task, now, effects, 504, 'MINERS_MISSED_DEADLINE', `miner ${miner} precommitted but never revealed`)
        effects.push(timer(now + config.resultTimeoutMs, {type: 'ResultTimeout', miner}),
          {type: 'log', level: 'info', msg: 'miner precommitted without delivering its result; waiting for its reveal', fields: {taskId: record.taskId, miner}})
        return out
      }
      if (now > task.precommitDeadline) return fail(task, now, effects, 504, 'MINERS_MISSED_DEADLINE', `miner ${miner} did not deliver before the precommit deadline and no replacement was found`)
      if (replacement == null || record.assignees.includes(replacement) || task.excluded.includes(replacement)) {
        effects.push(timer(now + config.retryMs, {type: 'ResultTimeout', miner}),
          {type: 'log', level: 'warn', msg: 'miner is late and no replacement is ready yet; waiting', fields: {taskId: record.taskId, miner}})
        return out
      }
      // Decided now and gossiped at once: the new miner starts before the chain hears of it.
      task.excluded.push(miner)
      record.assignees = record.assignees.map(a => a === miner ? replacement : a)
      record.reassignments.push({from: miner, to: replacement, reason: 'result timeout'})
      task.reassignQueue.push({from: miner, to: replacement})
      nextReassign(task, effects)
      effects.push(gossip(task, config), timer(now + config.resultTimeoutMs, {type: 'ResultTimeout', miner: replacement}),
        {type: 'log', level: 'warn', msg: 'miner missed its deadline; reassigned', fields: {taskId: record.taskId, from: miner, to: replacement}})
      return out
    }
    case 'CompetingTimeout': {
      // An output that failed verification counts as none: the window stays open for the
      // competitors still working (a fast liar must not end the task for an honest, slower one).
      const standing = record.results.filter(r => r.verdict?.accepted !== false)
      if (standing.length > 0 || (record.results.length > 0 && now > task.precommitDeadline)) {
        // Fewer than k competitors answered in time: answer with what agrees (or verifies) so far.
        task.competingClosed = true
        if (task.verify) decide(task, now, effects, config)
        else answer(task, tallyResults(record.results, record.results.length), now, effects)
      } else if (now > task.precommitDeadline) {
        return fail(task, now, effects, 504, 'MINERS_MISSED_DEADLINE', 'no miner delivered a result before the precommit deadline')
      } else {
        effects.push(timer(now + config.resultTimeoutMs, {type: 'CompetingTimeout'}))
      }
      return out
    }
    case 'ClientGone':
      effects.push({type: 'log', level: 'info', msg: 'client gone: cancelling the task on its miners', fields: {taskId: record.taskId}})
      return fail(task, now, effects, 499, 'CLIENT_GONE', 'cancelled: the client disconnected')
    case 'Restarted':
      task.awaitingReply = false
      delete task.chainState
      record.phase = 'settling'
      record.error = 'the oracle restarted before the task was answered'
      effects.push({type: 'readChainState'})
      reverifyAll(task, config, effects)
      return out
    default:
      return null
  }
}

/** Answered or failed: the chain settles it (end at Committed, or once the phase deadline passed). */
function settling (task: OracleTask, event: OracleTaskEvent, now: number, config: OracleTaskConfig, out: Stepped): Stepped | null {
  const effects = out.effects
  switch (event.type) {
    case 'SettleDue':
      maybeEnd(task, now, effects)
      return out
    case 'EndMined':
      task.retries = 0
      task.ending = false
      task.record.txs.push({...event.tx, label: 'end'})
      return readTrailOnceClosed(task, out) ?? closed(task, effects)
    case 'EndRejected':
      task.ending = false
      if (readTrailOnceClosed(task, out) != null) return out
      // Someone else (a sweeper) closed it first, or it was never created: the trail tells.
      if (event.errorName === 'WrongState') return closed(task, effects)
      if (event.errorName === 'UnknownTask') return notOnChain(task, now, effects)
      effects.push(timer(now + MAX_RETRY_MS, {type: 'SettleDue'}), {type: 'log', level: 'warn', msg: 'end refused; trying again later', fields: {taskId: task.record.taskId, error: `${event.errorName}: ${event.error}`}})
      return out
    case 'EndFailed':
      task.ending = false
      if (readTrailOnceClosed(task, out) != null) return out
      effects.push(retry(task, now, {type: 'Resend', tx: {kind: 'end'}}))
      return out
    case 'Trail': {
      task.record.trail = event.events
      task.record.phase = event.events.some(e => e.name === 'TaskEnded') ? 'ended' : 'expired'
      task.record.timings.settledAt = now
      effects.push({type: 'log', level: 'info', msg: 'task settled', fields: {taskId: task.record.taskId, phase: task.record.phase, events: event.events.length}})
      return out
    }
    case 'TrailFailed':
      task.record.phase = 'ended'
      task.record.error = `trail unavailable: ${event.error}`
      task.record.timings.settledAt = now
      return out
    case 'Restarted':
    case 'Reconcile':
      // Whatever was in flight died with the process, and the state read must count even when
      // it says what the journal last heard.
      task.ending = false
      task.closing = false
      delete task.chainState
      effects.push({type: 'readChainState'})
      if (event.type === 'Restarted') reverifyAll(task, config, effects)
      return out
    case 'ChainUnknown':
      return notOnChain(task, now, effects)
    case 'ChainReadFailed':
      effects.push(timer(now + MAX_RETRY_MS, {type: 'Reconcile'}))
      return out
    default:
      return null
  }
}

function answer (task: OracleTask, tally: Tally, now: number, effects: OracleEffect[]): void {
  if (tally.status === 'pending') return
  const {record} = task
  const winner = tally.outputHash == null ? undefined : tally.agreeing[0]
  record.answer = winner == null ? undefined : task.outputs[winner]
  record.agreement = {status: tally.status, agreeing: tally.agreeing, dissenting: tally.dissenting, verified: false, rejected: []}
  record.phase = 'settling'
  record.timings.answeredAt = now
  effects.push(
    {type: 'log', level: 'info', msg: 'answered', fields: {taskId: record.taskId, agreement: tally.status, ms: now - record.timings.requestedAt}},
    ...replyOnce(task, {type: 'Answered', record: structuredClone(record)}))
  releaseSurplus(task, effects)
  maybeEnd(task, now, effects)
}

/**
 * A competing task answered, with every slot taken on chain (the chain's state, not gossiped
 * precommits: a gossiped one may never be mined): a competitor still working can no longer be
 * paid, and the answer does not need its output, so its stream is closed (its miner stops
 * inferring). Slot holders and miners whose output arrived keep theirs.
 */
function releaseSurplus (task: OracleTask, effects: OracleEffect[]): void {
  const {record} = task
  if (record.mode !== 'competing' || record.timings.answeredAt == null || task.chainState == null || !COMPETING_SLOTS_TAKEN.has(task.chainState)) return
  const keep = [...new Set([...Object.keys(task.outputs) as Address[], ...record.precommits.map(p => p.miner)])]
  effects.push({type: 'hangUp', keep, reason: 'the task is answered and every competing slot is taken'})
}

/** Stores a result (integrity already checked by the caller); returns why it was refused, or null. */
function takeResult (task: OracleTask, result: MinerResult, miner: Address, now: number): string | null {
  if (result.tokenIds.length === 0 && result.output !== '') return 'result has text but no token ids; ignored'
  task.outputs[miner] = result.output
  task.claims[miner] = {tokenIds: result.tokenIds, determinismClass: result.determinismClass, finishReason: result.finishReason}
  task.record.results.push({miner, outputHash: result.outputHash, tokens: result.tokenIds.length, determinismClass: result.determinismClass, receivedAt: now})
  task.record.timings.firstResultAt ??= now
  return null
}

function relevantResults (task: OracleTask): TaskRecord['results'] {
  const {record} = task
  return record.mode === 'parallel' ? record.results.filter(r => record.assignees.includes(r.miner)) : record.results
}

/** What a verdict holds for: the same text, token ids and class (ids that decode to honest text can still be bogus). */
function verificationKey (task: OracleTask, miner: Address): string {
  const result = task.record.results.find(r => r.miner === miner)
  return `${result?.outputHash ?? ''}|${result?.determinismClass ?? ''}|${task.claims[miner]?.tokenIds.join(',') ?? ''}`
}

function claimOf (task: OracleTask, miner: Address): Claim | undefined {
  const claim = task.claims[miner]
  const output = task.outputs[miner]
  if (claim == null || output == null) return undefined
  const {record} = task
  return {prompt: record.prompt, params: record.params, seed: record.seed, tokenIds: claim.tokenIds, output, determinismClass: claim.determinismClass, finishReason: claim.finishReason}
}

/**
 * Asks the verifier about `miner`'s claim, unless an identical claim of the same class was
 * judged (its verdict is copied) or is being judged (its verdict will cover this one).
 */
function requestVerification (task: OracleTask, miner: Address, config: OracleTaskConfig, effects: OracleEffect[]): void {
  const key = verificationKey(task, miner)
  const result = task.record.results.find(r => r.miner === miner)
  const verify = verifyEffect(task, miner, config)
  if (result == null || verify == null || result.verdict != null) return
  const judged = task.record.results.find(r => r.verdict != null && verificationKey(task, r.miner) === key)
  if (judged?.verdict != null) {
    result.verdict = judged.verdict
    return
  }
  if (task.verifying.includes(key)) return
  task.verifying.push(key)
  effects.push(verify)
}

/** The check of `miner`'s claim: re-executed when the task is drawn for an audit. */
function verifyEffect (task: OracleTask, miner: Address, config: OracleTaskConfig): OracleEffect | undefined {
  const claim = claimOf(task, miner)
  return claim == null ? undefined : {type: 'verify', miner, modelId: task.record.modelId, reexecute: audited(task, claim.determinismClass, config), claim}
}

/** After a restart the checks in flight are lost: ask again for every result without a verdict. */
function reverifyAll (task: OracleTask, config: OracleTaskConfig, effects: OracleEffect[]): void {
  if (!task.verify) return
  task.verifying = []
  for (const r of task.record.results) requestVerification(task, r.miner, config, effects)
}

/**
 * k=1 and competing results (nobody to compare with) of the verifier's own class are re-executed
 * with probability `auditRate`. The draw is a hash of the task id: a pure function the miner
 * cannot predict before the task exists, and the same after a restart.
 */
function audited (task: OracleTask, minerClass: string, config: OracleTaskConfig): boolean {
  const {record} = task
  if (config.auditRate <= 0 || !config.auditableClasses.includes(minerClass) || (record.k > 1 && record.mode === 'parallel')) return false
  const draw = Number(BigInt(keccak256(toUtf8Bytes(`audit:${record.taskId}`))) >> 204n) / 2 ** 52
  return draw < config.auditRate
}

/** A verified task answers once every result it waits for is judged (see verifiedConsensus.ts). */
function decide (task: OracleTask, now: number, effects: OracleEffect[], config: OracleTaskConfig): void {
  const {record} = task
  const all = relevantResults(task).map(r => ({miner: r.miner, outputHash: r.outputHash, determinismClass: r.determinismClass, accepted: r.verdict?.accepted}))
  let results = all
  let quorum = record.k
  const fallen = record.mode === 'competing' ? all.filter(r => r.accepted === false).map(r => r.miner) : []
  if (record.mode === 'competing') {
    // While the competing window is open, the first k outputs still standing decide; once it
    // closed, everything received is weighed.
    if (!task.competingClosed) results = all.filter(r => r.accepted !== false)
    else quorum = all.length
  }
  const verifierClass = record.results.find(r => r.verdict?.sameClass === true)?.determinismClass
  const decision = decideVerified(results, quorum, verifierClass)
  if (decision.status === 'pending') return
  const rejected = [...new Set([...decision.rejected, ...decision.outvoted, ...fallen])]
  if (decision.status === 'none') {
    if (record.mode === 'competing' && task.competingClosed && now <= task.precommitDeadline) {
      // The window closed on outputs that have all failed verification since: as good as none,
      // so it reopens for the competitors still working, until the precommit deadline.
      task.competingClosed = false
      effects.push(timer(now + config.resultTimeoutMs, {type: 'CompetingTimeout'}))
      return
    }
    const reasons = record.results.filter(r => rejected.includes(r.miner)).map(r => `${r.miner}: ${r.verdict?.reason ?? 'outvoted within its class'}`)
    record.agreement = {status: 'disagreed', agreeing: [], dissenting: rejected, verified: true, rejected}
    fail(task, now, effects, 502, 'RESULT_REJECTED', `no miner's output passed verification (${reasons.join('; ')})`)
    return
  }
  const agreeing = [decision.answerMiner, ...decision.accepted.filter(m => m !== decision.answerMiner)]
  record.answer = task.outputs[decision.answerMiner]
  record.agreement = {status: rejected.length === 0 ? 'agreed' : 'disagreed', agreeing, dissenting: rejected, verified: true, rejected}
  record.phase = 'settling'
  record.timings.answeredAt = now
  effects.push(
    {type: 'log', level: 'info', msg: 'answered', fields: {taskId: record.taskId, agreement: record.agreement.status, verified: true, rejected, ms: now - record.timings.requestedAt}},
    ...replyOnce(task, {type: 'Answered', record: structuredClone(record)}))
  releaseSurplus(task, effects)
  maybeEnd(task, now, effects)
}

/**
 * The settling transaction. A verified task pays what passed verification and was not outvoted
 * in its class; it records as faults what failed or was outvoted; an output never checked (the
 * verifier was unavailable, the reveal never reached this oracle) is named in neither list, so
 * it is unpaid without a fault.
 */
function endTx (task: OracleTask): TxIntent {
  if (!task.verify) return {kind: 'end'}
  const {record} = task
  const refused = new Set(record.agreement?.rejected ?? [])
  const accepted = new Set(record.results.filter(r => r.verdict?.accepted === true && !refused.has(r.miner)).map(r => r.outputHash))
  const rejected = new Set(record.results.filter(r => (r.verdict?.accepted === false || refused.has(r.miner)) && !accepted.has(r.outputHash)).map(r => r.outputHash))
  // Nothing verified (the results came while this oracle was down, or no verifier answered):
  // the chain's majority rule pays the reveals rather than leave every one of them unpaid.
  if (accepted.size === 0 && rejected.size === 0) return {kind: 'end'}
  // Revealed hashes first: only those are on chain, and the contract takes at most k in all.
  const revealed = new Set(record.reveals.map(r => r.outputHash))
  const judged = [...accepted, ...rejected].sort((a, b) => Number(revealed.has(b)) - Number(revealed.has(a))).slice(0, record.k)
  return {kind: 'end', verdicts: {accepted: judged.filter(h => accepted.has(h)), rejected: judged.filter(h => rejected.has(h))}}
}

/**
 * A task journaled by an older build, before verification: it carries on unverified (its miners
 * were told nothing else), with the fields this build expects.
 */
export function upgradeTask (task: OracleTask): OracleTask {
  const t = task as Partial<OracleTask> & OracleTask
  t.claims ??= {}
  t.verify ??= false
  t.verifying ??= []
  t.competingClosed ??= false
  return t
}

function fail (task: OracleTask, now: number, effects: OracleEffect[], status: number, code: string, error: string): Stepped {
  task.record.phase = 'settling'
  task.record.error = error
  effects.push(...replyOnce(task, {type: 'Rejected', status, code, error, record: structuredClone(task.record)}), {type: 'hangUp'})
  maybeEnd(task, now, effects)
  return {task, effects}
}

/** Nothing exists on chain to settle: the task ends here (answered or not). */
function chainRefused (task: OracleTask, effects: OracleEffect[], error: string, code: string): Stepped {
  task.onChain = 'refused'
  task.record.error = error
  effects.push({type: 'log', level: 'warn', msg: 'task not on chain', fields: {taskId: task.record.taskId, error}})
  if (task.record.phase === 'running') effects.push(...replyOnce(task, {type: 'Rejected', status: 503, code, error, record: structuredClone({...task.record, phase: 'failed' as const})}), {type: 'hangUp'})
  task.record.phase = 'failed'
  return {task, effects}
}

/** The chain does not know the task: create it again while miners could still precommit, else give up. */
function notOnChain (task: OracleTask, now: number, effects: OracleEffect[]): Stepped {
  if (task.onChain === 'created') {
    // It was mined once: only a chain reset forgets it. Nothing left to settle.
    return chainRefused(task, effects, 'the chain no longer knows this task', 'TASK_NOT_CREATED')
  }
  if (now + CREATE_CUTOFF_MS >= task.precommitDeadline) return chainRefused(task, effects, 'the task never reached the chain before its deadline', 'TASK_NOT_CREATED')
  task.onChain = 'pending'
  effects.push({type: 'send', tx: {kind: 'createTask'}})
  return {task, effects}
}

/** Sends `end` once the chain allows it, else sets a timer for the moment it will. */
function maybeEnd (task: OracleTask, now: number, effects: OracleEffect[]): void {
  if (task.ending || task.closing || task.onChain === 'refused') return
  // Settlement pays by verdict: it waits for the checks in flight (a Verified event calls back;
  // the timer covers a verdict lost with a restart, whose check is asked again on restart).
  if (task.verify && task.verifying.length > 0) {
    effects.push(timer(now + MAX_RETRY_MS, {type: 'SettleDue'}))
    return
  }
  const state = task.chainState ?? TaskState.Created
  // Once anyone precommitted, the contract keeps the task open for (late) reveals until the commit deadline.
  const deadline = state < TaskState.Precommitted && task.record.precommits.length === 0 ? task.precommitDeadline : task.commitDeadline
  if (task.onChain === 'created' && (state === TaskState.Committed || now > deadline + DEADLINE_GRACE_MS)) {
    task.ending = true
    effects.push({type: 'send', tx: endTx(task)})
    return
  }
  effects.push(timer(Math.max(now, deadline) + DEADLINE_GRACE_MS + 1, {type: 'SettleDue'}))
}

function closed (task: OracleTask, effects: OracleEffect[]): Stepped {
  if (task.closing) return {task, effects}
  task.closing = true
  task.onChain = 'created'
  if (task.record.phase === 'running') {
    task.record.phase = 'settling'
    task.record.error ??= 'the task was closed on chain before it was answered'
    effects.push(...replyOnce(task, {type: 'Rejected', status: 504, code: 'TASK_CLOSED', error: task.record.error, record: structuredClone(task.record)}), {type: 'hangUp'})
  }
  // The chain watcher often sees our own `end` land before its receipt comes back: the trail
  // (which finishes the task) is read once that reply is in, so the record keeps the end's tx.
  if (!task.ending) effects.push({type: 'queryTrail'})
  return {task, effects}
}

/** Our own `end` answered after the chain was seen closed: now the trail is read. Null when the task was not closed yet. */
function readTrailOnceClosed (task: OracleTask, out: Stepped): Stepped | null {
  if (!task.closing) return null
  out.effects.push({type: 'queryTrail'})
  return out
}

function nextReassign (task: OracleTask, effects: OracleEffect[]): void {
  if (task.onChain !== 'created' || task.reassigning) return
  const next = task.reassignQueue.shift()
  if (next == null) return
  task.reassigning = true
  effects.push({type: 'send', tx: {kind: 'reassign', from: next.from, to: next.to}})
}

function replyOnce (task: OracleTask, reply: CompleteReply): OracleEffect[] {
  if (!task.awaitingReply) return []
  task.awaitingReply = false
  return [{type: 'reply', reply}]
}

function retry (task: OracleTask, now: number, event: OracleTaskEvent): OracleEffect {
  const delay = Math.min(MAX_RETRY_MS, 1_000 * 2 ** task.retries)
  task.retries++
  return timer(now + delay, event)
}

function timer (atMs: number, event: OracleTaskEvent): OracleEffect {
  return {type: 'timer', atMs, event}
}

function gossip (task: OracleTask, config: OracleTaskConfig): OracleEffect {
  const r = task.record
  return {
    type: 'gossip',
    task: {
      taskId: r.taskId, modelId: r.modelId, prompt: r.prompt, params: r.params, seed: r.seed, mode: r.mode, k: r.k,
      assignees: r.mode === 'parallel' ? r.assignees : [], precommitDeadline: task.precommitDeadline, deadline: task.commitDeadline,
      oracle: config.oracle, createdAt: r.timings.requestedAt
    }
  }
}

/** Puts the createTask tx on the draft's record (once), with when the oracle learnt it was mined; false when it was there. */
function recordCreateTx (draft: OracleTask, tx: TxRef, now: number): boolean {
  if (draft.record.txs.some(t => t.label === 'createTask')) return false
  draft.record.timings.createdAt ??= now
  draft.record.txs.unshift({...tx, label: 'createTask'})
  return true
}

function unchanged (task: OracleTask): Stepped {
  return {task, effects: []}
}
