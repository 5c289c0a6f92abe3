import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {commitmentFor} from '../../src/chain/commitment.js'
import {TaskState} from '../../src/chain/enums.js'
import {createOracleTask, step, type OracleEffect, type OracleTask, type OracleTaskConfig, type OracleTaskEvent} from '../../src/actors/oracle/oracleTask.js'
import type {TaskRequest} from '../../src/actors/oracle/messages.js'
import type {Address} from '../../src/protocols/address.js'
import {greedy, outputHashOf, type MinerResult} from '../../src/protocols/messages.js'
import {toModelId} from '../../src/protocols/modelId.js'
import {fakeAddress as addr} from '../support/fakeAddress.js'

const T0 = 1_700_000_000_000
const CONFIG: OracleTaskConfig = {oracle: addr(0x0), resultTimeoutMs: 8_000, retryMs: 2_000, verify: false, auditableClasses: [], auditRate: 0}
const A = addr(0xa)
const B = addr(0xb)
const C = addr(0xc)
const TASK_ID = '12345'
const CLASS_F32 = `${'ab'.repeat(32)}/node-llama-cpp-3.21.1/cpu-linux-x64`
const TX = {label: 'tx', hash: '0x' + '11'.repeat(32), blockNumber: 7}

function request (mode: TaskRequest['mode'], k: number): TaskRequest {
  return {prompt: 'Once upon a time', modelId: toModelId(1), params: greedy(16), seed: 1, mode, redundancy: k}
}

function start (mode: TaskRequest['mode'] = 'parallel', assignees: Address[] = [A, B]): {task: OracleTask, effects: OracleEffect[]} {
  return createOracleTask({taskId: TASK_ID, requestId: '0x' + '22'.repeat(32), request: request(mode, mode === 'parallel' ? assignees.length : 2), assignees: mode === 'parallel' ? assignees : [], precommitWindowS: 120, commitWindowS: 240}, T0, CONFIG)
}

function result (miner: Address, output: string, salt = '0x' + '33'.repeat(32)): MinerResult {
  const outputHash = outputHashOf(output)
  return {taskId: TASK_ID, miner, output, salt, outputHash, commitment: commitmentFor(BigInt(TASK_ID), miner, outputHash, salt), tokenIds: [1, 2, 3], finishReason: 'length', determinismClass: CLASS_F32, timings: {promptMs: 1, generateMs: 2}}
}

/** Runs events in order from `task`; returns the last task and every effect produced. */
function run (task: OracleTask, events: OracleTaskEvent[], now = T0 + 1_000): {task: OracleTask, effects: OracleEffect[]} {
  const effects: OracleEffect[] = []
  for (const event of events) {
    const next = step(task, event, now, CONFIG)
    task = next.task
    effects.push(...next.effects)
  }
  return {task, effects}
}

const types = (effects: OracleEffect[]): string[] => effects.filter(e => e.type !== 'log').map(e => e.type === 'send' ? `send:${e.tx.kind}` : e.type)
const replies = (effects: OracleEffect[]) => effects.flatMap(e => e.type === 'reply' ? [e.reply] : [])
/** The error code of the first reply, if it is a rejection. */
const rejection = (effects: OracleEffect[]): string | undefined => {
  const [reply] = replies(effects)
  return reply?.type === 'Rejected' ? reply.code : undefined
}

describe('oracle task machine: running', () => {
  it('gossips at once, sends createTask beside it and arms one result timer per assignee', () => {
    const {task, effects} = start()
    assert.equal(task.record.phase, 'running')
    assert.deepEqual(types(effects), ['gossip', 'send:createTask', 'timer', 'timer'])
    const gossip = effects.find(e => e.type === 'gossip')
    assert.deepEqual(gossip?.type === 'gossip' ? gossip.task.assignees : [], [A, B])
  })

  it('answers once the k results agree, before the chain has even mined createTask', () => {
    const {task, effects} = run(start().task, [
      {type: 'ResultReceived', result: result(A, 'same'), sender: A},
      {type: 'ResultReceived', result: result(B, 'same'), sender: B}
    ])
    assert.equal(task.record.phase, 'settling')
    assert.equal(task.record.answer, 'same')
    const [reply] = replies(effects)
    assert.equal(reply?.type, 'Answered')
    assert.equal(task.record.agreement?.status, 'agreed')
    // Not on chain yet: end waits for the deadline timer, nothing is sent.
    assert.deepEqual(types(effects), ['reply', 'timer'])
  })

  it('ignores forged, unassigned, self-contradicting and duplicate results', () => {
    const forged = run(start().task, [{type: 'ResultReceived', result: result(A, 'x'), sender: B}])
    assert.equal(forged.task.record.results.length, 0)
    const stranger = run(start().task, [{type: 'ResultReceived', result: result(C, 'x'), sender: C}])
    assert.equal(stranger.task.record.results.length, 0)
    const lying = run(start().task, [{type: 'ResultReceived', result: {...result(A, 'x'), output: 'y'}, sender: A}])
    assert.equal(lying.task.record.results.length, 0)
    const precommitted = run(start().task, [{type: 'PrecommitSeen', miner: A, commitment: '0x' + '44'.repeat(32)}, {type: 'ResultReceived', result: result(A, 'x'), sender: A}])
    assert.equal(precommitted.task.record.results.length, 0, 'a result contradicting the gossiped precommit is ignored')
    const once = run(start().task, [{type: 'ResultReceived', result: result(A, 'x'), sender: A}])
    const twice = step(once.task, {type: 'ResultReceived', result: result(A, 'x'), sender: A}, T0 + 2_000, CONFIG)
    assert.equal(twice.task, once.task, 'a duplicate result changes nothing')
    assert.deepEqual(twice.effects, [])
  })

  it('reassigns a late miner at once (re-gossip names the new miner) and sends reassign only once the task is on chain', () => {
    const late = run(start().task, [{type: 'ResultTimeout', miner: A, replacement: C}])
    assert.deepEqual(late.task.record.assignees, [C, B])
    assert.deepEqual(types(late.effects), ['gossip', 'timer'], 'no reassign tx before createTask is mined')
    const gossip = late.effects.find(e => e.type === 'gossip')
    assert.deepEqual(gossip?.type === 'gossip' ? gossip.task.assignees : [], [C, B])
    const mined = run(late.task, [{type: 'CreateMined', tx: TX}])
    assert.deepEqual(types(mined.effects), ['send:reassign'])
    // The replaced miner's result no longer counts; the new one's does.
    const answered = run(mined.task, [
      {type: 'ResultReceived', result: result(A, 'same'), sender: A},
      {type: 'ResultReceived', result: result(B, 'same'), sender: B},
      {type: 'ResultReceived', result: result(C, 'same'), sender: C}
    ])
    assert.equal(answered.task.record.phase, 'settling')
    assert.deepEqual(answered.task.record.agreement?.agreeing.sort(), [B, C].sort())
  })

  it('never replaces a miner that precommitted (only its stream failed): its reveal brings the result', () => {
    const r = result(A, 'same')
    const late = run(start().task, [
      {type: 'CreateMined', tx: TX},
      {type: 'PrecommitSeen', miner: A, commitment: r.commitment},
      {type: 'ResultReceived', result: result(B, 'same'), sender: B},
      {type: 'ResultTimeout', miner: A, replacement: C}
    ])
    assert.deepEqual(late.task.record.assignees, [A, B], 'not reassigned')
    assert.deepEqual(types(late.effects), ['timer'])
    const revealed = run(late.task, [{type: 'CommitSeen', result: r}])
    assert.equal(revealed.task.record.phase, 'settling')
    assert.equal(replies(revealed.effects)[0]?.type, 'Answered')
  })

  it('a reassign that did not reach the chain is sent again once, in its turn', () => {
    const reassigning = run(start().task, [{type: 'ResultTimeout', miner: A, replacement: C}, {type: 'CreateMined', tx: TX}])
    assert.deepEqual(types(reassigning.effects).filter(t => t === 'send:reassign'), ['send:reassign'])
    const failed = run(reassigning.task, [{type: 'ReassignFailed', from: A, to: C, error: 'timeout'}])
    assert.deepEqual(types(failed.effects), ['timer'])
    const again = run(failed.task, [{type: 'Resend', tx: {kind: 'reassign', from: A, to: C}}, {type: 'Resend', tx: {kind: 'reassign', from: A, to: C}}])
    assert.deepEqual(types(again.effects), ['send:reassign'], 'one copy in flight at a time')
  })

  it('waits for a replacement when none is ready, and fails with 504 past the precommit deadline', () => {
    const waiting = run(start().task, [{type: 'ResultTimeout', miner: A}])
    assert.deepEqual(types(waiting.effects), ['timer'])
    assert.equal(waiting.task.record.phase, 'running')
    const late = run(start().task, [{type: 'ResultTimeout', miner: A}], T0 + 121_000)
    assert.equal(late.task.record.phase, 'settling')
    assert.equal(rejection(late.effects), 'MINERS_MISSED_DEADLINE')
  })

  it('client gone: replies CLIENT_GONE to the asker, hangs up on the miners, settles on chain later', () => {
    const gone = run(start().task, [{type: 'CreateMined', tx: TX}, {type: 'ClientGone'}])
    assert.equal(rejection(gone.effects), 'CLIENT_GONE')
    assert.deepEqual(types(gone.effects), ['reply', 'hangUp', 'timer'])
    assert.equal(gone.task.record.phase, 'settling')
    const again = step(gone.task, {type: 'ClientGone'}, T0 + 2_000, CONFIG)
    assert.equal(again.task, gone.task)
  })

  it('competing: answers with what agrees when the timeout comes before k results', () => {
    const {task, effects} = run(start('competing').task, [{type: 'ResultReceived', result: result(C, 'solo'), sender: C}, {type: 'CompetingTimeout'}])
    assert.equal(task.record.phase, 'settling')
    assert.deepEqual(task.record.assignees, [C])
    assert.equal(replies(effects)[0]?.type, 'Answered')
  })

  it('competing: once answered with every slot taken on chain, the competitors still working are hung up on; slot holders and delivered outputs are kept', () => {
    const precommit = (miner: Address, output = 'same'): OracleTaskEvent => ({type: 'PrecommitSeen', miner, commitment: result(miner, output).commitment})
    const slotsTaken: OracleTaskEvent = {type: 'ChainState', state: TaskState.Assigned}
    const hangUps = (effects: OracleEffect[]) => effects.flatMap(e => e.type === 'hangUp' ? [e] : [])
    // Answered first (k=2: A and B agree), slots taken after: the chain's state hangs up on the rest.
    const answered = run(start('competing').task, [{type: 'ResultReceived', result: result(A, 'same'), sender: A}, {type: 'ResultReceived', result: result(B, 'same'), sender: B}])
    assert.equal(replies(answered.effects)[0]?.type, 'Answered')
    assert.deepEqual(hangUps(answered.effects), [], 'the slots are still free: a late competitor may yet be paid')
    const gossiped = run(answered.task, [precommit(A), precommit(B)])
    assert.deepEqual(hangUps(gossiped.effects), [], 'gossiped precommits are not slots taken: one may never be mined')
    const taken = run(gossiped.task, [slotsTaken])
    assert.deepEqual(hangUps(taken.effects).map(h => [...h.keep ?? []].sort()), [[A, B]])
    assert.match(hangUps(taken.effects)[0]?.reason ?? '', /answered and every competing slot is taken/)
    // Slots taken first: the answer hangs up at once.
    const slotsFirst = run(start('competing').task, [slotsTaken, {type: 'ResultReceived', result: result(A, 'same'), sender: A}, {type: 'ResultReceived', result: result(B, 'same'), sender: B}])
    assert.equal(hangUps(slotsFirst.effects).length, 1)
    // Answered on the timeout with C's output alone; B holds a slot and its result is still on its way: kept.
    const solo = run(start('competing').task, [{type: 'ResultReceived', result: result(C, 'solo'), sender: C}, {type: 'CompetingTimeout'}, precommit(C, 'solo'), precommit(B), slotsTaken])
    assert.deepEqual(hangUps(solo.effects).map(h => [...h.keep ?? []].sort()), [[B, C]])
    // Parallel assignees are all needed for settlement: never hung up on this way.
    const parallel = run(start().task, [{type: 'ResultReceived', result: result(A, 'same'), sender: A}, {type: 'ResultReceived', result: result(B, 'same'), sender: B}, {type: 'ChainState', state: TaskState.Precommitted}])
    assert.deepEqual(hangUps(parallel.effects), [])
  })

  it('a chain outage delays createTask (retry with backoff), never the answer; near the deadline it gives up with CHAIN_UNAVAILABLE', () => {
    const down = run(start().task, [{type: 'CreateFailed', error: 'ECONNREFUSED'}, {type: 'CreateFailed', error: 'ECONNREFUSED'}])
    const timers = down.effects.flatMap(e => e.type === 'timer' ? [e.atMs - (T0 + 1_000)] : [])
    assert.deepEqual(timers, [1_000, 2_000])
    const answered = run(down.task, [
      {type: 'ResultReceived', result: result(A, 'ok'), sender: A},
      {type: 'ResultReceived', result: result(B, 'ok'), sender: B}
    ])
    assert.equal(replies(answered.effects)[0]?.type, 'Answered')
    const resend = run(answered.task, [{type: 'Resend', tx: {kind: 'createTask'}}])
    assert.deepEqual(types(resend.effects), ['send:createTask'])
    const tooLate = run(start().task, [{type: 'CreateFailed', error: 'ECONNREFUSED'}], T0 + 118_000)
    assert.equal(tooLate.task.record.phase, 'failed')
    assert.equal(rejection(tooLate.effects), 'CHAIN_UNAVAILABLE')
  })

  it('a refused createTask fails the task with TASK_NOT_CREATED; TaskExists (a resend) counts as created', () => {
    const refused = run(start().task, [{type: 'CreateRejected', errorName: 'InactiveModel', error: 'no'}])
    assert.equal(refused.task.record.phase, 'failed')
    assert.equal(rejection(refused.effects), 'TASK_NOT_CREATED')
    const exists = run(start().task, [{type: 'CreateRejected', errorName: 'TaskExists', error: 'dup'}])
    assert.equal(exists.task.onChain, 'created')
    assert.equal(exists.task.record.phase, 'running')
  })
})

describe('oracle task machine: settling', () => {
  const answered = (): OracleTask => run(start().task, [
    {type: 'CreateMined', tx: TX},
    {type: 'ResultReceived', result: result(A, 'same'), sender: A},
    {type: 'ResultReceived', result: result(B, 'same'), sender: B}
  ]).task

  it('sends end when the chain reports Committed, once', () => {
    const {task, effects} = run(answered(), [{type: 'ChainState', state: TaskState.Precommitted}, {type: 'ChainState', state: TaskState.Committed}, {type: 'ChainState', state: TaskState.Committed}])
    assert.deepEqual(types(effects).filter(t => t === 'send:end'), ['send:end'])
    assert.equal(task.ending, true)
  })

  it('sends end at the phase deadline when the miners never finish', () => {
    const early = run(answered(), [{type: 'SettleDue'}], T0 + 60_000)
    assert.deepEqual(types(early.effects), ['timer'])
    const due = run(answered(), [{type: 'SettleDue'}], T0 + 125_000)
    assert.deepEqual(types(due.effects), ['send:end'])
  })

  it('end mined → trail → ended; someone else closed it first (WrongState) → trail too', () => {
    const ending = run(answered(), [{type: 'ChainState', state: TaskState.Committed}]).task
    const mined = run(ending, [{type: 'EndMined', tx: TX}])
    assert.deepEqual(types(mined.effects), ['queryTrail'])
    const done = run(mined.task, [{type: 'Trail', events: [{contract: 'cognitive', name: 'TaskEnded', args: {}, txHash: TX.hash, blockNumber: 9, logIndex: 0}]}])
    assert.equal(done.task.record.phase, 'ended')
    const after = step(done.task, {type: 'ChainState', state: TaskState.Ended}, T0, CONFIG)
    assert.equal(after.task, done.task, 'a finished task ignores every event but its createTask receipt')
    const raced = run(ending, [{type: 'EndRejected', errorName: 'WrongState', error: 'closed'}])
    assert.deepEqual(types(raced.effects), ['queryTrail'])
  })

  it('keeps the createTask tx on record when the chain watcher saw the task before the receipt, even once the task is finished', () => {
    const CREATE = {...TX, hash: '0x' + '44'.repeat(32)}
    // The watcher showed it created first: the receipt still puts the tx on record, once.
    const seen = run(start().task, [{type: 'ChainState', state: TaskState.Created}, {type: 'CreateMined', tx: CREATE}, {type: 'CreateMined', tx: CREATE}])
    assert.deepEqual(seen.task.record.txs.map(t => [t.label, t.hash]), [['createTask', CREATE.hash]])
    assert.deepEqual(types(seen.effects), [])
    // The whole task went through (answered, ended, settled) before the receipt came back.
    const ending = run(run(start().task, [
      {type: 'ChainState', state: TaskState.Created},
      {type: 'ResultReceived', result: result(A, 'same'), sender: A},
      {type: 'ResultReceived', result: result(B, 'same'), sender: B}
    ]).task, [{type: 'ChainState', state: TaskState.Committed}, {type: 'EndMined', tx: TX}]).task
    const done = run(ending, [{type: 'Trail', events: [{contract: 'cognitive', name: 'TaskEnded', args: {}, txHash: TX.hash, blockNumber: 9, logIndex: 0}]}]).task
    assert.equal(done.record.phase, 'ended')
    const late = run(done, [{type: 'CreateMined', tx: CREATE}])
    assert.deepEqual(late.task.record.txs.map(t => t.label), ['createTask', 'end'])
    assert.deepEqual(late.effects, [])
  })

  it('our end seen landing by the chain watcher before its receipt: the trail waits for the receipt, and the record keeps the end tx', () => {
    const ending = run(answered(), [{type: 'ChainState', state: TaskState.Committed}]).task
    const seen = run(ending, [{type: 'Closed'}])
    assert.deepEqual(types(seen.effects), [], 'no trail read yet: the task would finish without its end tx')
    const mined = run(seen.task, [{type: 'EndMined', tx: TX}])
    assert.deepEqual(types(mined.effects), ['queryTrail'])
    assert.equal(mined.task.record.txs.at(-1)?.label, 'end')
    const failed = run(seen.task, [{type: 'EndFailed', error: 'receipt timeout'}])
    assert.deepEqual(types(failed.effects), ['queryTrail'], 'closed anyway: no resend, read the trail')
  })

  it('a transient end failure is retried with backoff', () => {
    const ending = run(answered(), [{type: 'ChainState', state: TaskState.Committed}]).task
    const failed = run(ending, [{type: 'EndFailed', error: 'timeout'}])
    assert.deepEqual(types(failed.effects), ['timer'])
    const resent = run(failed.task, [{type: 'Resend', tx: {kind: 'end'}}])
    assert.deepEqual(types(resent.effects), ['send:end'])
  })
})

describe('oracle task machine: restart', () => {
  it('a running task becomes settling (its client is gone) and asks the chain where it stands', () => {
    const {task, effects} = run(start().task, [{type: 'Restarted'}])
    assert.equal(task.record.phase, 'settling')
    assert.equal(task.awaitingReply, false)
    assert.deepEqual(types(effects), ['readChainState'])
  })

  it('unknown on chain: createTask is sent again while miners could still precommit, else the task fails', () => {
    const restarted = run(start().task, [{type: 'Restarted'}]).task
    assert.deepEqual(types(run(restarted, [{type: 'ChainUnknown'}]).effects), ['send:createTask'])
    const late = run(restarted, [{type: 'ChainUnknown'}], T0 + 119_000)
    assert.equal(late.task.record.phase, 'failed')
  })

  it('a settling task whose end died with the process sends it again, though the chain state is what the journal last heard', () => {
    const committed = run(start().task, [
      {type: 'CreateMined', tx: TX},
      {type: 'ResultReceived', result: result(A, 'same'), sender: A},
      {type: 'ResultReceived', result: result(B, 'same'), sender: B},
      {type: 'ChainState', state: TaskState.Committed}
    ]).task
    assert.equal(committed.ending, true)
    const {effects} = run(committed, [{type: 'Restarted'}, {type: 'ChainState', state: TaskState.Committed}])
    assert.deepEqual(types(effects), ['readChainState', 'send:end'])
  })

  it('already closed on chain: the trail is fetched; Committed: end is sent', () => {
    const restarted = run(start().task, [{type: 'CreateMined', tx: TX}, {type: 'Restarted'}]).task
    assert.deepEqual(types(run(restarted, [{type: 'ChainState', state: TaskState.Expired}]).effects), ['queryTrail'])
    assert.deepEqual(types(run(restarted, [{type: 'ChainState', state: TaskState.Committed}]).effects), ['send:end'])
  })

  it('the journaled form is the task: a JSON round trip changes nothing', () => {
    const {task} = run(start().task, [{type: 'ResultTimeout', miner: A, replacement: C}, {type: 'ResultReceived', result: result(B, 'x'), sender: B}])
    assert.deepEqual(JSON.parse(JSON.stringify(task)), task)
  })
})

describe('oracle task machine: verified tasks', () => {
  const VERIFIED: OracleTaskConfig = {...CONFIG, verify: true, auditableClasses: [CLASS_F32], auditRate: 0}
  const CLASS_GPU = `${'ab'.repeat(32)}/node-llama-cpp-3.21.1/cuda`
  const startVerified = (assignees: Address[], config = VERIFIED, mode: TaskRequest['mode'] = 'parallel') =>
    createOracleTask({taskId: TASK_ID, requestId: '0x' + '22'.repeat(32), request: request(mode, assignees.length), assignees: mode === 'parallel' ? assignees : [], precommitWindowS: 120, commitWindowS: 240}, T0, config)
  const steps = (task: OracleTask, events: OracleTaskEvent[], config = VERIFIED) => {
    const effects: OracleEffect[] = []
    for (const event of events) {
      const next = step(task, event, T0 + 1_000, config)
      task = next.task
      effects.push(...next.effects)
    }
    return {task, effects}
  }
  const verdict = (accepted: boolean) => ({accepted, method: 'teacher-forced' as const, sameClass: true, reason: accepted ? '' : 'invented', ms: 3})
  const received = (miner: Address, output: string, cls = CLASS_F32): OracleTaskEvent => ({type: 'ResultReceived', result: {...result(miner, output), determinismClass: cls}, sender: miner})
  const verifies = (effects: OracleEffect[]) => effects.flatMap(e => e.type === 'verify' ? [e] : [])
  const settleTx = (effects: OracleEffect[]) => effects.flatMap(e => e.type === 'send' && e.tx.kind === 'end' ? [e.tx] : [])

  it('two colluding liars of k=3 lose: the user gets the honest text and settlement refuses pay to the lie', () => {
    const {task} = startVerified([A, B, C])
    const got = steps(task, [received(A, 'lie'), received(B, 'lie'), received(C, 'truth'), {type: 'CreateMined', tx: TX}])
    assert.equal(verifies(got.effects).length, 2, 'identical claims of one class are checked once')
    assert.deepEqual(replies(got.effects), [], 'nobody answers before the verdicts')
    const done = steps(got.task, [{type: 'Verified', miner: A, verdict: verdict(false)}, {type: 'Verified', miner: C, verdict: verdict(true)}, {type: 'ChainState', state: TaskState.Committed}])
    const [reply] = replies(done.effects)
    assert.equal(reply?.type === 'Answered' ? reply.record.answer : undefined, 'truth')
    assert.deepEqual(done.task.record.agreement, {status: 'disagreed', agreeing: [C], dissenting: [A, B], verified: true, rejected: [A, B]})
    assert.deepEqual(settleTx(done.effects), [{kind: 'end', verdicts: {accepted: [outputHashOf('truth')], rejected: [outputHashOf('lie')]}}])
  })

  it('k=1: a rejected output is never the answer (502 RESULT_REJECTED), and its hash is refused pay', () => {
    const {task} = startVerified([A])
    const got = steps(task, [{type: 'CreateMined', tx: TX}, received(A, 'lie'), {type: 'Verified', miner: A, verdict: verdict(false)}])
    assert.equal(rejection(got.effects), 'RESULT_REJECTED')
    assert.equal(got.task.record.answer, undefined)
    const settled = steps(got.task, [{type: 'ChainState', state: TaskState.Committed}])
    assert.deepEqual(settleTx(settled.effects), [{kind: 'end', verdicts: {accepted: [], rejected: [outputHashOf('lie')]}}])
  })

  it('honest miners of two classes with different outputs are both accepted and paid', () => {
    const {task} = startVerified([A, B])
    const got = steps(task, [{type: 'CreateMined', tx: TX}, received(A, 'gpu text', CLASS_GPU), received(B, 'cpu text'),
      {type: 'Verified', miner: A, verdict: {...verdict(true), sameClass: false}}, {type: 'Verified', miner: B, verdict: verdict(true)}, {type: 'ChainState', state: TaskState.Committed}])
    const [reply] = replies(got.effects)
    assert.equal(reply?.type === 'Answered' ? reply.record.answer : undefined, 'cpu text', 'the verifier\'s own class gives the answer')
    assert.deepEqual(got.task.record.agreement?.agreeing, [B, A])
    assert.deepEqual(settleTx(got.effects), [{kind: 'end', verdicts: {accepted: [outputHashOf('gpu text'), outputHashOf('cpu text')], rejected: []}}])
  })

  it('audits a k=1 result of the verifier\'s class by re-execution at rate 1, never at rate 0', () => {
    const audited = steps(startVerified([A], {...VERIFIED, auditRate: 1}).task, [received(A, 'x')], {...VERIFIED, auditRate: 1})
    assert.equal(verifies(audited.effects)[0]?.reexecute, true)
    const plain = steps(startVerified([A]).task, [received(A, 'x')])
    assert.equal(verifies(plain.effects)[0]?.reexecute, false)
    const otherClass = steps(startVerified([A], {...VERIFIED, auditRate: 1}).task, [received(A, 'x', CLASS_GPU)], {...VERIFIED, auditRate: 1})
    assert.equal(verifies(otherClass.effects)[0]?.reexecute, false, 'another class cannot be re-executed exactly')
  })

  it('an unavailable verifier is asked again; settlement waits for checks in flight', () => {
    const {task} = startVerified([A])
    const got = steps(task, [{type: 'CreateMined', tx: TX}, received(A, 'x'), {type: 'VerifyFailed', miner: A, error: 'down'}])
    assert.ok(got.effects.some(e => e.type === 'timer' && e.event.type === 'Reverify'))
    const again = steps(got.task, [{type: 'Reverify', miner: A}])
    assert.equal(verifies(again.effects).length, 1)
    const committed = steps(again.task, [{type: 'ChainState', state: TaskState.Committed}])
    assert.deepEqual(settleTx(committed.effects), [], 'no settlement while the check runs')
  })
  it('competing k=1: a fast liar\'s rejected result does not shut out the honest competitor behind it', () => {
    const {task} = startVerified([A], VERIFIED, 'competing')
    const got = steps(task, [{type: 'CreateMined', tx: TX}, received(A, 'lie'), received(B, 'truth'),
      {type: 'Verified', miner: B, verdict: verdict(true)}])
    assert.deepEqual(replies(got.effects), [], 'the first competitor\'s verdict comes first')
    const done = steps(got.task, [{type: 'Verified', miner: A, verdict: verdict(false)}])
    const [reply] = replies(done.effects)
    assert.equal(reply?.type === 'Answered' ? reply.record.answer : undefined, 'truth')
    assert.deepEqual(done.task.record.agreement?.rejected, [A])
  })
  it('competing: a window that closed on a rejected result reopens for an honest competitor still working', () => {
    const {task} = startVerified([A], VERIFIED, 'competing')
    const got = steps(task, [{type: 'CreateMined', tx: TX}, received(A, 'lie'), {type: 'CompetingTimeout'}, {type: 'Verified', miner: A, verdict: verdict(false)}])
    assert.equal(rejection(got.effects), undefined, 'no failure while the precommit deadline is ahead')
    assert.ok(got.effects.some(e => e.type === 'timer' && e.event.type === 'CompetingTimeout'), 'the window is open again')
    const again = steps(got.task, [{type: 'CompetingTimeout'}, received(B, 'truth'), {type: 'Verified', miner: B, verdict: verdict(true)}])
    const [reply] = replies(again.effects)
    assert.equal(reply?.type === 'Answered' ? reply.record.answer : undefined, 'truth')
    assert.deepEqual(again.task.record.agreement?.rejected, [A])
  })

  it('competing: only rejected results at the precommit deadline fail the task (it does not wait forever)', () => {
    const {task} = startVerified([A], VERIFIED, 'competing')
    const got = steps(task, [{type: 'CreateMined', tx: TX}, received(A, 'lie'), {type: 'Verified', miner: A, verdict: verdict(false)}])
    assert.equal(rejection(got.effects), undefined)
    const late = step(got.task, {type: 'CompetingTimeout'}, got.task.precommitDeadline + 1, VERIFIED)
    assert.equal(rejection(late.effects), 'RESULT_REJECTED')
  })

  it('a verifier that never answers: nothing is counted as a fault, and the task settles by the chain\'s majority rule', () => {
    const {task} = startVerified([A])
    const got = steps(task, [{type: 'CreateMined', tx: TX}, received(A, 'x'), {type: 'VerifyFailed', miner: A, error: 'down'}])
    const late = step(got.task, {type: 'Reverify', miner: A}, got.task.commitDeadline + 1, VERIFIED)
    assert.equal(rejection(late.effects), 'VERIFIER_UNAVAILABLE')
    assert.deepEqual(settleTx(late.effects), [{kind: 'end'}], 'nothing verified: the chain\'s majority rule pays the reveals, no fault recorded')
  })

  it('a verdict holds only for the same token ids: bogus ids that decode to honest text do not frame an honest miner', () => {
    const {task} = startVerified([A, B])
    const bogus: OracleTaskEvent = {type: 'ResultReceived', result: {...result(B, 'same text'), tokenIds: [9, 9, 9]}, sender: B}
    const got = steps(task, [bogus, received(A, 'same text')])
    assert.equal(verifies(got.effects).length, 2, 'each claim is checked on its own')
  })
  it('an oracle restarted before any result reached it settles by the majority rule (its miners\' reveals were never seen)', () => {
    const {task} = startVerified([A, B])
    const restarted = steps(task, [{type: 'CreateMined', tx: TX}, {type: 'Restarted'}, {type: 'ChainState', state: TaskState.Committed}])
    assert.deepEqual(settleTx(restarted.effects), [{kind: 'end'}])
  })
})
