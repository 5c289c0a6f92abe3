import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {commitmentFor} from '../../src/chain/commitment.js'
import {TaskState} from '../../src/chain/enums.js'
import type {TaskEvent} from '../../src/chain/taskEvents.js'
import {
  LATE_REVEAL_GRACE_MS, minerEventOf, retryDelayMs, RETRY_BACKOFF_MS, step, takeTask,
  type MinerEffect, type MinerStep, type MinerTask, type MinerTaskEvent, type MinerTaskPhase
} from '../../src/actors/mining/minerTask.js'
import type {Address} from '../../src/protocols/address.js'
import {greedy, outputHashOf, type MinerResult, type Task} from '../../src/protocols/messages.js'
import {toModelId} from '../../src/protocols/modelId.js'
import {minerTaskEnd} from '../../src/actors/mining/minerStages.js'
import {fakeAddress as addr} from '../support/fakeAddress.js'

const T0 = 1_700_000_000_000
const PRECOMMIT_DEADLINE = T0 + 30_000
const DEADLINE = T0 + 60_000
const US = addr(0xa)
const OTHER = addr(0xb)
const ORACLE = addr(0x1)
const TASK_ID = '4242'
const NOW = T0 + 1_000

function gossipTask (mode: Task['mode'] = 'parallel', deadline = DEADLINE): Task {
  return {
    taskId: TASK_ID, modelId: toModelId(1), prompt: 'Once upon a time', params: greedy(16), seed: 7, mode,
    k: 2, assignees: mode === 'parallel' ? [US, OTHER] : [], precommitDeadline: PRECOMMIT_DEADLINE, deadline, oracle: ORACLE, createdAt: T0
  }
}

function minerResult (output = 'a story', salt = '0x' + '33'.repeat(32)): MinerResult {
  const outputHash = outputHashOf(output)
  return {taskId: TASK_ID, miner: US, output, salt, outputHash, commitment: commitmentFor(BigInt(TASK_ID), US, outputHash, salt), tokenIds: [1, 2, 3], finishReason: 'length', determinismClass: `${'ab'.repeat(32)}/node-llama-cpp-3.21.1/cpu-linux-x64`, timings: {promptMs: 1, generateMs: 2}}
}

const RESULT = minerResult()

/** Runs events in order from `task` at `now`; returns the last task and every effect produced. */
function run (task: MinerTask, events: MinerTaskEvent[], now = NOW): MinerStep {
  const effects: MinerEffect[] = []
  for (const event of events) {
    const next = step(task, event, now)
    task = next.task
    effects.push(...next.effects)
  }
  return {task, effects}
}

/** Effect types, logs left out. */
const types = (effects: MinerEffect[]): string[] => effects.filter(e => e.type !== 'log').map(e => e.type)
const timers = (effects: MinerEffect[]): Array<MinerEffect & {type: 'timer'}> => effects.flatMap(e => e.type === 'timer' ? [e] : [])

/** A task in each phase, reached through the machine itself. */
function taken (mode: Task['mode'] = 'parallel', deadline = DEADLINE): MinerTask {
  return takeTask(gossipTask(mode, deadline), US, T0).task
}
function inPhase (phase: MinerTaskPhase, mode: Task['mode'] = 'parallel'): MinerTask {
  const paths: {[P in MinerTaskPhase]: MinerTaskEvent[]} = {
    inferring: [],
    precommitting: [{type: 'Inferred', result: RESULT}],
    awaitingReveal: [{type: 'Inferred', result: RESULT}, {type: 'PrecommitMined'}],
    committing: [{type: 'Inferred', result: RESULT}, {type: 'PrecommitMined'}, {type: 'ChainState', state: TaskState.Precommitted}],
    done: [{type: 'Inferred', result: RESULT}, {type: 'PrecommitMined'}, {type: 'ChainState', state: TaskState.Precommitted}, {type: 'CommitMined'}],
    lost: [{type: 'Cancelled'}],
    failed: [{type: 'InferenceFailed', code: 'ENGINE', error: 'boom'}]
  }
  const task = run(taken(mode), paths[phase]).task
  assert.equal(task.phase, phase)
  return task
}

/** The retry timer a step scheduled, as the actor would feed it back. */
function retryOf (effects: MinerEffect[]): MinerTaskEvent {
  const timer = timers(effects).find(t => t.event.type === 'RetryDue')
  assert.ok(timer, 'a retry timer')
  return timer.event
}

describe('miner task: the happy path', () => {
  it('takes, infers, precommits, waits for the reveal, commits', () => {
    const start = takeTask(gossipTask(), US, T0)
    assert.equal(start.task.phase, 'inferring')
    assert.deepEqual(types(start.effects), ['openStream', 'runInference', 'timer'])
    assert.deepEqual(timers(start.effects).map(t => [t.atMs, t.event.type]), [[DEADLINE, 'DeadlinePassed']])

    let s = step(start.task, {type: 'Inferred', result: RESULT}, NOW)
    assert.equal(s.task.phase, 'precommitting')
    assert.deepEqual(types(s.effects), ['deliverResult', 'gossipPrecommit', 'sendPrecommit'])
    assert.deepEqual(s.effects.find(e => e.type === 'sendPrecommit'), {type: 'sendPrecommit', commitment: RESULT.commitment})

    s = step(s.task, {type: 'PrecommitMined'}, NOW)
    assert.equal(s.task.phase, 'awaitingReveal')
    assert.deepEqual(timers(s.effects).map(t => [t.atMs, t.event.type]), [[PRECOMMIT_DEADLINE + LATE_REVEAL_GRACE_MS, 'RevealDue']], 'the late reveal is armed')

    s = step(s.task, {type: 'ChainState', state: TaskState.Precommitted}, NOW)
    assert.equal(s.task.phase, 'committing')
    assert.deepEqual(s.effects.filter(e => e.type !== 'log'), [{type: 'sendCommit', output: RESULT.output, salt: RESULT.salt}])

    s = step(s.task, {type: 'CommitMined'}, NOW)
    assert.equal(s.task.phase, 'done')
    assert.deepEqual(s.effects.filter(e => e.type !== 'log'), [{type: 'gossipCommit', result: RESULT}])
  })

  it('commits at once when every slot precommitted before our precommit reply came', () => {
    const {task, effects} = run(inPhase('precommitting'), [{type: 'ChainState', state: TaskState.Precommitted}, {type: 'PrecommitMined'}])
    assert.equal(task.phase, 'committing')
    assert.deepEqual(types(effects), ['sendCommit'])
  })

  it('a reassignment that reopens precommits closes that shortcut again', () => {
    const {task} = run(inPhase('precommitting'), [{type: 'ChainState', state: TaskState.Precommitted}, {type: 'ChainState', state: TaskState.Assigned}, {type: 'PrecommitMined'}])
    assert.equal(task.phase, 'awaitingReveal')
  })
})

describe('miner task: precommit retries', () => {
  it('UnknownTask waits for the chain, and TaskCreatedOnChain sends the precommit at once', () => {
    let s = step(inPhase('precommitting'), {type: 'PrecommitRejected', errorName: 'UnknownTask'}, NOW)
    assert.equal(s.task.phase, 'precommitting')
    assert.equal(s.task.phase === 'precommitting' && s.task.tx.status, 'awaitingTask')
    assert.deepEqual(types(s.effects), ['timer'], 'a fallback retry, in case TaskCreated was seen before')
    s = step(s.task, {type: 'TaskCreatedOnChain'}, NOW + 100)
    assert.deepEqual(types(s.effects), ['sendPrecommit'])
    assert.deepEqual(s.task.phase === 'precommitting' && s.task.tx, {status: 'inFlight', attempt: 2})
  })

  it('UnknownTask retries on its fallback timer too, and a stale timer sends nothing', () => {
    const waiting = step(inPhase('precommitting'), {type: 'PrecommitRejected', errorName: 'UnknownTask'}, NOW)
    const retry = retryOf(waiting.effects)
    const sent = step(waiting.task, retry, NOW + 1_000)
    assert.deepEqual(types(sent.effects), ['sendPrecommit'])
    // The same timer again (or TaskCreatedOnChain now that a send is in flight): nothing.
    assert.equal(step(sent.task, retry, NOW + 1_000).task, sent.task)
    assert.equal(step(sent.task, {type: 'TaskCreatedOnChain'}, NOW + 1_000).task, sent.task)
  })

  it('a transient failure retries with a doubling backoff capped at 10 s, none past the deadline', () => {
    let task = inPhase('precommitting')
    let now = NOW
    const delays: number[] = []
    const atMs: number[] = []
    for (let i = 0; i < 100 && task.phase === 'precommitting'; i++) {
      const failed = step(task, {type: 'PrecommitFailed', error: 'ECONNREFUSED'}, now)
      task = failed.task
      if (task.phase !== 'precommitting') break
      const timer = timers(failed.effects)[0]!
      delays.push(timer.atMs - now)
      atMs.push(timer.atMs)
      now = timer.atMs
      const resent = step(task, timer.event, now)
      assert.deepEqual(types(resent.effects), ['sendPrecommit'])
      task = resent.task
    }
    assert.deepEqual(delays.slice(0, 6), [1_000, 2_000, 4_000, 8_000, 10_000, 10_000])
    assert.ok(atMs.every(at => at < DEADLINE), 'no retry at or past the deadline')
    assert.equal(task.phase, 'lost')
    assert.equal(task.phase === 'lost' && task.reason, 'deadline')
  })

  it('the backoff table', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 9].map(retryDelayMs), [1_000, 2_000, 4_000, 8_000, 10_000, 10_000])
    assert.equal(retryDelayMs(50), RETRY_BACKOFF_MS.max)
  })

  it('a failure reply while no precommit is in flight is stale', () => {
    const backoff = step(inPhase('precommitting'), {type: 'PrecommitFailed', error: 'x'}, NOW).task
    assert.equal(step(backoff, {type: 'PrecommitFailed', error: 'x'}, NOW).task, backoff)
    assert.equal(step(backoff, {type: 'PrecommitRejected', errorName: 'SlotsFull'}, NOW).task, backoff)
  })
})

describe('miner task: a competing task whose slots others took', () => {
  it('finishes its output for the oracle (which may need it when a slot holder lied), unpaid: no precommit, the task ends lost', () => {
    const competing = inPhase('inferring', 'competing')
    const taken = step(competing, {type: 'ChainState', state: TaskState.Precommitted}, NOW)
    assert.equal(taken.task.phase, 'inferring')
    assert.deepEqual(types(taken.effects), [], 'inference goes on, the stream stays open')
    const done = step(taken.task, {type: 'Inferred', result: RESULT}, NOW + 10)
    assert.equal(done.task.phase, 'lost')
    assert.deepEqual(types(done.effects), ['deliverResult'], 'the result goes to the oracle; no precommit, no gossip')
    const closed = step(competing, {type: 'ChainState', state: TaskState.Ended}, NOW)
    assert.deepEqual(types(closed.effects), ['cancelInference', 'abortStream'], 'a closed task stops the work')
  })
})

describe('miner task: phase × event', () => {
  interface Row {
    from: MinerTaskPhase
    event: MinerTaskEvent
    mode?: Task['mode']
    to: MinerTaskPhase
    effects: string[]
  }
  const rows: Row[] = [
    // inferring
    {from: 'inferring', event: {type: 'InferenceFailed', code: 'ENGINE', error: 'boom'}, to: 'failed', effects: ['abortStream']},
    {from: 'inferring', event: {type: 'Cancelled'}, to: 'lost', effects: ['cancelInference', 'abortStream']},
    {from: 'inferring', event: {type: 'Reassigned', from: US, to: OTHER}, to: 'lost', effects: ['cancelInference', 'abortStream']},
    {from: 'inferring', event: {type: 'Reassigned', from: OTHER, to: addr(0xc)}, to: 'inferring', effects: []},
    {from: 'inferring', event: {type: 'ChainState', state: TaskState.Assigned}, to: 'inferring', effects: []},
    {from: 'inferring', event: {type: 'ChainState', state: TaskState.Assigned}, mode: 'competing', to: 'inferring', effects: []},
    {from: 'inferring', event: {type: 'ChainState', state: TaskState.Precommitted}, mode: 'competing', to: 'inferring', effects: []},
    {from: 'inferring', event: {type: 'ChainState', state: TaskState.Precommitted}, to: 'lost', effects: ['cancelInference', 'abortStream']},
    {from: 'inferring', event: {type: 'ChainState', state: TaskState.Ended}, to: 'lost', effects: ['cancelInference', 'abortStream']},
    {from: 'inferring', event: {type: 'TaskCreatedOnChain'}, to: 'inferring', effects: []},
    {from: 'inferring', event: {type: 'PrecommitMined'}, to: 'inferring', effects: []},
    // precommitting
    {from: 'precommitting', event: {type: 'PrecommitMined'}, to: 'awaitingReveal', effects: ['timer']},
    {from: 'precommitting', event: {type: 'PrecommitRejected', errorName: 'AlreadyPrecommitted'}, to: 'awaitingReveal', effects: ['readChainState', 'timer']},
    {from: 'precommitting', event: {type: 'RevealDue'}, to: 'precommitting', effects: []},
    {from: 'precommitting', event: {type: 'PrecommitRejected', errorName: 'SlotsFull'}, mode: 'competing', to: 'lost', effects: []},
    // Gossip names us before the oracle's reassign tx is mined: wait for it (the task gossip lists us).
    {from: 'precommitting', event: {type: 'PrecommitRejected', errorName: 'NotAssigned'}, to: 'precommitting', effects: ['timer']},
    {from: 'precommitting', event: {type: 'PrecommitRejected', errorName: 'NotAssigned'}, mode: 'competing', to: 'lost', effects: []},
    {from: 'precommitting', event: {type: 'PrecommitRejected', errorName: 'DeadlinePassed'}, to: 'lost', effects: []},
    {from: 'precommitting', event: {type: 'PrecommitRejected', errorName: 'WrongState'}, to: 'lost', effects: []},
    {from: 'precommitting', event: {type: 'PrecommitFailed', error: 'timeout'}, to: 'precommitting', effects: ['timer']},
    {from: 'precommitting', event: {type: 'TaskCreatedOnChain'}, to: 'precommitting', effects: []},
    {from: 'precommitting', event: {type: 'ChainState', state: TaskState.Expired}, to: 'lost', effects: []},
    {from: 'precommitting', event: {type: 'ChainState', state: TaskState.Committed}, to: 'lost', effects: []},
    {from: 'precommitting', event: {type: 'Reassigned', from: US, to: OTHER}, to: 'lost', effects: []},
    {from: 'precommitting', event: {type: 'Reassigned', from: OTHER, to: addr(0xc)}, to: 'precommitting', effects: []},
    {from: 'precommitting', event: {type: 'Inferred', result: RESULT}, to: 'precommitting', effects: []},
    {from: 'precommitting', event: {type: 'Cancelled'}, to: 'precommitting', effects: []},
    {from: 'precommitting', event: {type: 'CommitMined'}, to: 'precommitting', effects: []},
    // awaitingReveal
    {from: 'awaitingReveal', event: {type: 'ChainState', state: TaskState.Precommitted}, to: 'committing', effects: ['sendCommit']},
    // Past the precommit deadline a precommitted miner reveals though another slot stayed empty.
    {from: 'awaitingReveal', event: {type: 'RevealDue'}, to: 'committing', effects: ['sendCommit']},
    {from: 'awaitingReveal', event: {type: 'ChainState', state: TaskState.Assigned}, to: 'awaitingReveal', effects: []},
    {from: 'awaitingReveal', event: {type: 'ChainState', state: TaskState.Ended}, to: 'lost', effects: []},
    {from: 'awaitingReveal', event: {type: 'ChainState', state: TaskState.Expired}, to: 'lost', effects: []},
    {from: 'awaitingReveal', event: {type: 'ChainState', state: TaskState.Committed}, to: 'lost', effects: []},
    {from: 'awaitingReveal', event: {type: 'Reassigned', from: US, to: OTHER}, to: 'lost', effects: []},
    {from: 'awaitingReveal', event: {type: 'Reassigned', from: OTHER, to: addr(0xc)}, to: 'awaitingReveal', effects: []},
    {from: 'awaitingReveal', event: {type: 'PrecommitMined'}, to: 'awaitingReveal', effects: []},
    {from: 'awaitingReveal', event: {type: 'PrecommitRejected', errorName: 'AlreadyPrecommitted'}, to: 'awaitingReveal', effects: []},
    {from: 'awaitingReveal', event: {type: 'ChainReadFailed', error: 'no read in flight'}, to: 'awaitingReveal', effects: []},
    // committing
    {from: 'committing', event: {type: 'CommitMined'}, to: 'done', effects: ['gossipCommit']},
    {from: 'committing', event: {type: 'CommitRejected', errorName: 'AlreadyCommitted'}, to: 'done', effects: ['gossipCommit']},
    // Not open (yet): wait again, and try the late reveal again shortly (the chain may lack a block past the deadline).
    {from: 'committing', event: {type: 'CommitRejected', errorName: 'WrongState'}, to: 'awaitingReveal', effects: ['readChainState', 'timer']},
    {from: 'committing', event: {type: 'CommitRejected', errorName: 'CommitmentMismatch'}, to: 'lost', effects: []},
    {from: 'committing', event: {type: 'CommitRejected', errorName: 'DeadlinePassed'}, to: 'lost', effects: []},
    {from: 'committing', event: {type: 'CommitFailed', error: 'ECONNRESET'}, to: 'committing', effects: ['timer']},
    {from: 'committing', event: {type: 'ChainState', state: TaskState.Committed}, to: 'committing', effects: []},
    {from: 'committing', event: {type: 'Reassigned', from: US, to: OTHER}, to: 'lost', effects: []},
    {from: 'committing', event: {type: 'PrecommitMined'}, to: 'committing', effects: []},
    // finished: nothing moves them
    ...(['done', 'lost', 'failed'] as const).flatMap((from): Row[] => [
      {from, event: {type: 'Inferred', result: RESULT}, to: from, effects: []},
      {from, event: {type: 'ChainState', state: TaskState.Precommitted}, to: from, effects: []},
      {from, event: {type: 'CommitMined'}, to: from, effects: []},
      {from, event: {type: 'DeadlinePassed'}, to: from, effects: []},
      {from, event: {type: 'RetryDue', phase: 'committing', attempt: 1}, to: from, effects: []}
    ])
  ]
  for (const row of rows) {
    const label = `${row.from}${row.mode === 'competing' ? ' (competing)' : ''} + ${row.event.type}${'state' in row.event ? ` ${row.event.state}` : ''}${'errorName' in row.event ? ` ${row.event.errorName}` : ''}${'from' in row.event ? (row.event.from === US ? ' of us' : ' of another') : ''} → ${row.to}`
    it(label, () => {
      const before = inPhase(row.from, row.mode)
      const {task, effects} = step(before, row.event, NOW)
      assert.equal(task.phase, row.to)
      assert.deepEqual(types(effects), row.effects)
      // A no-op returns the very same task: nothing to journal.
      if (row.to === row.from && row.effects.length === 0 && row.event.type !== 'ChainState') assert.equal(task, before)
    })
  }

  it('duplicate Inferred and duplicate PrecommitMined change nothing', () => {
    const precommitting = inPhase('precommitting')
    const again = step(precommitting, {type: 'Inferred', result: minerResult('another output')}, NOW)
    assert.equal(again.task, precommitting)
    assert.deepEqual(types(again.effects), [])
    const awaiting = inPhase('awaitingReveal')
    const twice = step(awaiting, {type: 'PrecommitMined'}, NOW)
    assert.equal(twice.task, awaiting)
    assert.deepEqual(types(twice.effects), [])
  })

  it('a lost task records why', () => {
    const task = step(inPhase('inferring'), {type: 'Reassigned', from: US, to: OTHER}, NOW).task
    assert.equal(task.phase === 'lost' && task.reason, 'reassigned')
    const slots = step(inPhase('precommitting', 'competing'), {type: 'PrecommitRejected', errorName: 'SlotsFull'}, NOW).task
    assert.deepEqual(slots.phase === 'lost' && [slots.reason, slots.detail], ['rejected', 'SlotsFull'])
  })
})

describe('miner task: the deadline', () => {
  const expected: {[P in MinerTaskPhase]: {to: MinerTaskPhase, effects: string[]}} = {
    inferring: {to: 'lost', effects: ['cancelInference', 'abortStream']},
    precommitting: {to: 'lost', effects: []},
    awaitingReveal: {to: 'lost', effects: []},
    // A commit in flight may have been mined in time: its reply settles it.
    committing: {to: 'committing', effects: []},
    done: {to: 'done', effects: []},
    lost: {to: 'lost', effects: []},
    failed: {to: 'failed', effects: []}
  }
  for (const phase of Object.keys(expected) as MinerTaskPhase[]) {
    it(`DeadlinePassed while ${phase} → ${expected[phase].to}`, () => {
      const {task, effects} = step(inPhase(phase), {type: 'DeadlinePassed'}, DEADLINE)
      assert.equal(task.phase, expected[phase].to)
      assert.deepEqual(types(effects), expected[phase].effects)
      if (task.phase === 'lost' && phase !== 'lost') assert.equal(task.reason, 'deadline')
    })
  }

  it('DeadlinePassed while a commit waits for its retry → lost', () => {
    const backoff = step(inPhase('committing'), {type: 'CommitFailed', error: 'x'}, NOW).task
    const {task} = step(backoff, {type: 'DeadlinePassed'}, DEADLINE)
    assert.equal(task.phase === 'lost' && task.reason, 'deadline')
  })

  it('a commit failing with no time left to retry is lost', () => {
    const {task, effects} = step(inPhase('committing'), {type: 'CommitFailed', error: 'x'}, DEADLINE - 100)
    assert.equal(task.phase === 'lost' && task.reason, 'deadline')
    assert.deepEqual(types(effects), [])
  })

  it('a retry close to the deadline lands before it', () => {
    const {effects} = step(inPhase('committing'), {type: 'CommitFailed', error: 'x'}, DEADLINE - 800)
    const [timer] = timers(effects)
    assert.ok(timer != null && timer.atMs < DEADLINE && timer.atMs > DEADLINE - 800)
  })
})

describe('miner task: reassigned to us', () => {
  it('a precommit refused NotAssigned waits for the reassignment to land, then goes at once', () => {
    const waiting = run(inPhase('precommitting'), [{type: 'PrecommitRejected', errorName: 'NotAssigned'}])
    assert.equal(waiting.task.phase === 'precommitting' && waiting.task.tx.status, 'awaitingTask')
    const landed = step(waiting.task, {type: 'Reassigned', from: OTHER, to: US}, NOW)
    assert.deepEqual(types(landed.effects), ['sendPrecommit'])
    const unrelated = step(waiting.task, {type: 'Reassigned', from: OTHER, to: addr(0xc)}, NOW)
    assert.equal(unrelated.task, waiting.task)
  })
})

describe('miner task: restart', () => {
  const expected: {[P in MinerTaskPhase]: {to: MinerTaskPhase, effects: string[]}} = {
    // The work died with the process; the oracle reassigns.
    inferring: {to: 'failed', effects: ['cancelInference', 'abortStream']},
    precommitting: {to: 'precommitting', effects: ['sendPrecommit', 'timer']},
    awaitingReveal: {to: 'awaitingReveal', effects: ['readChainState', 'timer', 'timer']},
    committing: {to: 'committing', effects: ['sendCommit', 'timer']},
    done: {to: 'done', effects: []},
    lost: {to: 'lost', effects: []},
    failed: {to: 'failed', effects: []}
  }
  for (const phase of Object.keys(expected) as MinerTaskPhase[]) {
    it(`Restarted while ${phase} → ${expected[phase].to}`, () => {
      // As the actor does it: the journaled JSON, not the object in memory.
      const journaled = JSON.parse(JSON.stringify(inPhase(phase))) as MinerTask
      const {task, effects} = step(journaled, {type: 'Restarted'}, NOW)
      assert.equal(task.phase, expected[phase].to)
      assert.deepEqual(types(effects), expected[phase].effects)
      // The timers are gone with the process: armed again (awaiting the reveal, the late reveal too).
      const armed = phase === 'awaitingReveal' ? [[DEADLINE, 'DeadlinePassed'], [PRECOMMIT_DEADLINE + LATE_REVEAL_GRACE_MS, 'RevealDue']] : [[DEADLINE, 'DeadlinePassed']]
      if (timers(effects).length > 0) assert.deepEqual(timers(effects).map(t => [t.atMs, t.event.type]), armed)
    })
  }

  it('a precommit mined before the restart is recognised, and the state read decides the reveal', () => {
    const {task, effects} = run(inPhase('precommitting'), [
      {type: 'Restarted'},
      {type: 'PrecommitRejected', errorName: 'AlreadyPrecommitted'},
      {type: 'ChainState', state: TaskState.Precommitted}
    ])
    assert.equal(task.phase, 'committing')
    assert.deepEqual(types(effects), ['sendPrecommit', 'timer', 'readChainState', 'timer', 'sendCommit'])
  })

  it('a commit mined before the restart ends as done', () => {
    const {task} = run(inPhase('committing'), [{type: 'Restarted'}, {type: 'CommitRejected', errorName: 'AlreadyCommitted'}])
    assert.equal(task.phase, 'done')
  })

  it('a failed state read after a restart is retried', () => {
    const restarted = step(inPhase('awaitingReveal'), {type: 'Restarted'}, NOW)
    const failed = step(restarted.task, {type: 'ChainReadFailed', error: 'ECONNREFUSED'}, NOW)
    const retry = retryOf(failed.effects)
    assert.deepEqual(retry, {type: 'RetryDue', phase: 'awaitingReveal', attempt: 1})
    const again = step(failed.task, retry, NOW + 1_000)
    assert.deepEqual(types(again.effects), ['readChainState'])
    // The answer "not yet" leaves the watcher to tell.
    const notYet = step(again.task, {type: 'ChainState', state: TaskState.Assigned}, NOW + 1_000)
    assert.deepEqual(notYet.task.phase === 'awaitingReveal' && notYet.task.read, {status: 'idle', attempt: 2})
  })
})

describe('miner task: the journal', () => {
  it('a task awaiting the reveal survives a JSON round trip', () => {
    const task = inPhase('awaitingReveal')
    assert.deepEqual(JSON.parse(JSON.stringify(task)), task)
    assert.equal(task.phase === 'awaitingReveal' && task.result.salt, RESULT.salt)
  })

  it('every phase survives a JSON round trip, retries included', () => {
    const tasks: MinerTask[] = [
      ...(['inferring', 'precommitting', 'awaitingReveal', 'committing', 'done', 'lost', 'failed'] as const).map(p => inPhase(p)),
      step(inPhase('precommitting'), {type: 'PrecommitRejected', errorName: 'UnknownTask'}, NOW).task,
      step(inPhase('committing'), {type: 'CommitFailed', error: 'x'}, NOW).task
    ]
    for (const task of tasks) assert.deepEqual(JSON.parse(JSON.stringify(task)), task)
  })
})

describe('miner task: chain events', () => {
  const at = (event: TaskEvent): MinerTaskEvent | undefined => minerEventOf(event, US)
  it('maps the watcher events a miner acts on', () => {
    assert.deepEqual(at({type: 'TaskCreated', taskId: TASK_ID, oracle: ORACLE, modelId: '1', mode: 'parallel', k: 2, input: 'hi', params: '0x7b7d', seed: 1, precommitDeadline: 1, commitDeadline: 2, escrow: '0'}), {type: 'TaskCreatedOnChain'})
    assert.deepEqual(at({type: 'TaskStateChanged', taskId: TASK_ID, state: TaskState.Precommitted}), {type: 'ChainState', state: TaskState.Precommitted})
    assert.deepEqual(at({type: 'MinerReassigned', taskId: TASK_ID, from: US, to: OTHER}), {type: 'Reassigned', from: US, to: OTHER})
    assert.deepEqual(at({type: 'TaskEnded', taskId: TASK_ID, winners: [], payoutEach: '0', refund: '0'}), {type: 'ChainState', state: TaskState.Ended})
    assert.deepEqual(at({type: 'TaskExpired', taskId: TASK_ID, refund: '0'}), {type: 'ChainState', state: TaskState.Expired})
    assert.deepEqual(at({type: 'TaskPrecommitted', taskId: TASK_ID, miner: US, commitment: RESULT.commitment}), {type: 'PrecommitMined'})
    assert.deepEqual(at({type: 'TaskCommitted', taskId: TASK_ID, miner: US, outputHash: RESULT.outputHash}), {type: 'CommitMined'})
  })

  it('ignores other miners\' precommits and commits, and assignments', () => {
    const other: Address = OTHER
    assert.equal(at({type: 'TaskPrecommitted', taskId: TASK_ID, miner: other, commitment: RESULT.commitment}), undefined)
    assert.equal(at({type: 'TaskCommitted', taskId: TASK_ID, miner: other, outputHash: RESULT.outputHash}), undefined)
    assert.equal(at({type: 'MinerAssigned', taskId: TASK_ID, miner: US, slot: 0}), undefined)
  })
})

describe('miner task: how it ended, for cortensor_miner_task_ends_total', () => {
  it('names the outcome once, when a step finishes the task: lost with its reason, done, failed', () => {
    const taken = takeTask(gossipTask('competing'), US, T0).task
    const cancelled = step(taken, {type: 'Cancelled'}, NOW).task
    assert.deepEqual(minerTaskEnd(cancelled), {outcome: 'lost', reason: 'cancelled'}, 'the oracle cancelled it while it inferred')
    // The actor counts a task when a step finishes it; a finished task's steps change nothing.
    assert.equal(step(cancelled, {type: 'Cancelled'}, NOW).task, cancelled, 'counted once')
    const failed = step(taken, {type: 'InferenceFailed', code: 'ENGINE_CRASHED', error: 'boom'}, NOW).task
    assert.deepEqual(minerTaskEnd(failed), {outcome: 'failed', reason: 'failed'}, 'a failure\'s code stays in the log, not in a label')
    const precommitting = step(taken, {type: 'Inferred', result: RESULT}, NOW).task
    assert.equal(minerTaskEnd(precommitting), undefined, 'still working')
  })
})
