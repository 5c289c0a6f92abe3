/**
 * The earnings actor keeps a miner's ledger in the node's journal: a node killed and started
 * again shows what it had earned, since when, and books the tasks that ended while it was down
 * (their events are looked up on its start), each once. The chain actor is a fake that answers
 * reads and event queries; the journal is the real SQLite file.
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, afterEach, before, describe, it} from 'node:test'
import {ActorSystem, type ActorDefinition, type ActorRef, type RestartPolicy} from '../../src/actors/actorSystem.js'
import type {ChainEventsMessage, ChainMessage} from '../../src/actors/chain/messages.js'
import {earningsActor} from '../../src/actors/earnings/earningsActor.js'
import {ledgerKey} from '../../src/actors/earnings/earningsLedger.js'
import type {EarningsMessage, EarningsStatus} from '../../src/actors/earnings/messages.js'
import type {DecodedEvent} from '../../src/chain/chainWatcher.js'
import {TaskJournal} from '../../src/journal/taskJournal.js'
import type {Address} from '../../src/protocols/address.js'
import type {OracleHeartbeat, Task} from '../../src/protocols/messages.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {fakeAddress} from '../support/fakeAddress.js'
import {until, waitFor} from '../support/until.js'

const POLICY: RestartPolicy = {strategy: 'restart', maxRestarts: 2, withinMs: 60_000, backoffMs: {initial: 1, max: 5}}
const ME = fakeAddress(1)
const FAST = fakeAddress(2)
const ORACLE = fakeAddress(3)

/** The chain as the fake answers it: each task's logs by id, and who subscribed. */
interface FakeChain {
  logs: Map<string, DecodedEvent[]>
  subscribers: Array<ActorRef<ChainEventsMessage>>
  queries: string[]
}

function fakeChainActor (system: ActorSystem, chain: FakeChain): ActorDefinition<null, ChainMessage> {
  return {
    name: 'chain',
    init: async () => null,
    receive: (state, msg) => {
      switch (msg.type) {
        case 'Read': system.tell(msg.replyTo, {type: 'Value', value: msg.call.functionName === 'hasRole'}); return state
        case 'QueryEvents': {
          const keys = (Array.isArray(msg.key) ? msg.key : [msg.key]).map(String)
          chain.queries.push(...keys)
          const events = keys.flatMap(key => chain.logs.get(key) ?? []).sort((a, b) => a.blockNumber - b.blockNumber)
          system.tell(msg.replyTo, {type: 'Events', events})
          return state
        }
        case 'Subscribe': chain.subscribers.push(msg.subscriber); return state
        default: return state
      }
    }
  }
}

/** A decoded Cognitive log as the chain actor hands it over (each event's other fields filled in). */
function log (taskId: string, name: string, args: Record<string, unknown>, blockNumber: number): DecodedEvent {
  const filled = {TaskPrecommitted: {commitment: '0xAA'}, TaskCommitted: {output: 'x', outputHash: '0xBB'}, TaskEnded: {refund: '0'}}[name] ?? {}
  return {contract: 'cognitive', name, args: {taskId, ...filled, ...args}, txHash: `0x${blockNumber.toString(16).padStart(64, '0')}`, blockNumber, logIndex: 0}
}

function competingTask (taskId: string): Task {
  return {taskId, mode: 'competing', assignees: [], modelId: '1'} as unknown as Task
}

/** One run of a miner's earnings actor on the journal at `path`; `stop` is a kill (nothing is flushed at stop). */
function start (path: string, chain: FakeChain): {system: ActorSystem, earnings: ActorRef<EarningsMessage>, journal: TaskJournal, status: () => Promise<EarningsStatus>, stop: () => Promise<void>} {
  const system = new ActorSystem(createSilentLogger(), () => assert.fail('no fatal expected'))
  const journal = TaskJournal.open(path)
  const chainRef = system.spawn(fakeChainActor(system, chain), POLICY)
  const earnings = system.spawn(earningsActor({
    system, chain: chainRef, address: ME, role: 'miner', ledger: {store: journal, key: ledgerKey(31337, fakeAddress(9), ME)}, fromBlock: 100, probeIntervalMs: 60_000, freshMs: 5_000,
    readWallet: async () => ({balanceWei: 10n ** 18n, maxFeePerGasWei: 10n ** 9n})
  }), POLICY)
  return {
    system, earnings, journal,
    status: async () => await system.ask<EarningsMessage, EarningsStatus>(earnings, replyTo => ({type: 'GetStatus', replyTo}), 2_000),
    stop: async () => { await system.stop([]); journal.close() }
  }
}

function events (...list: DecodedEvent[]): ChainEventsMessage {
  return {type: 'ChainEvents', events: list.map(e => ({event: toEvent(e), blockNumber: e.blockNumber, txHash: e.txHash, logIndex: e.logIndex})), toBlock: Math.max(...list.map(e => e.blockNumber))}
}

function toEvent (e: DecodedEvent): ChainEventsMessage['events'][number]['event'] {
  const a = e.args as {taskId: string, miner?: Address, winners?: Address[], payoutEach?: string}
  switch (e.name) {
    case 'TaskPrecommitted': return {type: 'TaskPrecommitted', taskId: a.taskId, miner: a.miner!, commitment: '0x'}
    case 'TaskCommitted': return {type: 'TaskCommitted', taskId: a.taskId, miner: a.miner!, outputHash: '0x'}
    case 'TaskEnded': return {type: 'TaskEnded', taskId: a.taskId, winners: a.winners!, payoutEach: a.payoutEach!, refund: '0'}
    default: throw new Error(`no event ${e.name} in this test`)
  }
}

describe('earnings actor: the ledger survives a restart', () => {
  let dir: string
  /** Runs still going when a test fails: stopped after it, so their timers do not hold the process. */
  const running = new Set<() => Promise<void>>()
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'cortensor-earnings-')) })
  afterEach(async () => {
    for (const stop of running) await stop()
    running.clear()
  })
  after(async () => { await rm(dir, {recursive: true, force: true}) })

  /** `start`, remembered until its `stop`. */
  const run = (path: string, chain: FakeChain): ReturnType<typeof start> => {
    const node = start(path, chain)
    const stop = async (): Promise<void> => { running.delete(stop); await node.stop() }
    running.add(stop)
    return {...node, stop}
  }

  it('a miner killed and started again shows what it earned since its first start, and books a task that ended while it was down, once', async () => {
    const path = join(dir, 'journal.sqlite')
    const created = (taskId: string, block: number): DecodedEvent => log(taskId, 'TaskCreated', {oracle: ORACLE, modelId: '1', mode: 1, k: 1, input: 'x', params: '0x', seed: 1, precommitDeadline: 1, commitDeadline: 2, escrow: '1000'}, block)
    const chain: FakeChain = {logs: new Map(), subscribers: [], queries: []}
    chain.logs.set('7', [created('7', 101)])

    // First run: task 7 won and booked; task 8 precommitted and committed, then the node dies.
    const first = run(path, chain)
    await waitFor('the ledger subscribed', () => chain.subscribers.length === 1)
    first.system.tell(first.earnings, {type: 'TaskSeen', task: competingTask('6')})
    first.system.tell(first.earnings, {type: 'OracleHeard', heartbeat: {address: ORACLE, heard: [ME], verdicts: [{taskId: '6', miner: ME, verdict: 'rejected', reason: 'token 3 is not the model\'s'}]} as unknown as OracleHeartbeat})
    first.system.tell(first.earnings, {type: 'TaskSeen', task: competingTask('7')})
    first.system.tell(first.earnings, {type: 'TaskSeen', task: competingTask('8')})
    const [sub1] = chain.subscribers as [ActorRef<ChainEventsMessage>]
    chain.logs.set('6', [created('6', 101), log('6', 'OutputRejected', {miner: ME, outputHash: '0xBB'}, 102)])
    first.system.tell(sub1, events(
      log('6', 'TaskPrecommitted', {miner: ME}, 101), log('6', 'TaskCommitted', {miner: ME}, 102), log('6', 'TaskEnded', {winners: [FAST], payoutEach: '1000'}, 103),
      log('7', 'TaskPrecommitted', {miner: ME}, 102), log('7', 'TaskCommitted', {miner: ME}, 103), log('7', 'TaskEnded', {winners: [ME], payoutEach: '1000'}, 104),
      log('8', 'TaskPrecommitted', {miner: ME}, 105), log('8', 'TaskCommitted', {miner: ME}, 106)))
    const booked = await until('tasks 6 and 7 booked', 2_000, async () => {
      const s = await first.status()
      return s.ledger?.totals.won === 1 && s.ledger.totals.rejected === 1 ? s.ledger : undefined
    })
    assert.equal(booked.earnedWei, '1000')
    const since = booked.since
    await first.stop()

    // While it was down: task 8 ended with this miner among the winners, and a task it lost.
    chain.logs.set('8', [created('8', 104), log('8', 'TaskPrecommitted', {miner: ME}, 105), log('8', 'TaskCommitted', {miner: ME}, 106), log('8', 'TaskEnded', {winners: [FAST, ME], payoutEach: '400'}, 110)])
    chain.queries.length = 0

    const second = run(path, chain)
    const restored = await until('task 8 booked after the restart', 5_000, async () => {
      const s = await second.status()
      return s.ledger?.totals.won === 2 ? s.ledger : undefined
    })
    assert.equal(restored.since, since, 'the ledger counts from the first start, not from this one')
    assert.equal(restored.earnedWei, '1400', 'both payouts (task 8: payoutEach, not the first winner)')
    assert.deepEqual(restored.recent.map(e => [e.taskId, e.outcome]), [['8', 'won'], ['7', 'won'], ['6', 'rejected']])
    assert.deepEqual(restored.recent[2]?.verdict, {oracle: ORACLE, reason: 'token 3 is not the model\'s'}, 'the oracle\'s reason outlives its heartbeats and the restart')
    assert.ok(chain.queries.includes('8'), 'the followed task\'s events were looked up')
    // The watch also brings task 8's end (it was in the block range the node resumed at): booked
    // once still. Task 9, lost right after, shows that every event before it was taken in.
    const [, sub2] = chain.subscribers as [unknown, ActorRef<ChainEventsMessage>]
    second.system.tell(second.earnings, {type: 'TaskSeen', task: competingTask('9')})
    second.system.tell(sub2, events(log('8', 'TaskEnded', {winners: [FAST, ME], payoutEach: '400'}, 110), log('9', 'TaskEnded', {winners: [FAST], payoutEach: '1000'}, 111)))
    const after = await until('task 9 booked', 2_000, async () => {
      const s = await second.status()
      return s.ledger?.totals.lost === 1 ? s.ledger : undefined
    })
    assert.deepEqual(after.totals, {won: 2, lost: 1, expired: 0, rejected: 1, disagreed: 0})
    assert.equal(after.earnedWei, '1400')
    await second.stop()

    // And the journal holds it for the next start too.
    const journal = TaskJournal.open(path)
    const stored = journal.ledger(50)
    journal.close()
    assert.deepEqual(stored.followed, [], 'nothing followed any more')
    assert.equal(stored.recent.length, 4)
    assert.deepEqual(stored.totals, {key: ledgerKey(31337, fakeAddress(9), ME), totals: {won: 2, lost: 1, expired: 0, rejected: 1, disagreed: 0}, earnedWei: '1400', since})
  })

  it('a ledger the journal holds in a form this build cannot read: a new one is started and the node goes on', async () => {
    const key = ledgerKey(31337, fakeAddress(9), ME)
    const cases: Array<[string, (journal: TaskJournal) => void]> = [
      ['totals that are not totals', journal => { journal.setLedgerTotals({totals: 'many', earnedWei: 'lots'}) }],
      ['a followed task whose id is not a task id', journal => {
        journal.setLedgerTotals({key, totals: {won: 5, lost: 0, expired: 0, rejected: 0, disagreed: 0}, earnedWei: '5000', since: 1})
        journal.followLedgerTask('x', {taskId: 'not a task id', fromBlock: 1})
      }]
    ]
    for (const [name, spoil] of cases) {
      const path = join(dir, `bad-${name.length}.sqlite`)
      const journal = TaskJournal.open(path)
      spoil(journal)
      journal.close()
      const node = run(path, {logs: new Map(), subscribers: [], queries: []})
      const status = await node.status()
      assert.deepEqual(status.ledger?.totals, {won: 0, lost: 0, expired: 0, rejected: 0, disagreed: 0}, name)
      assert.equal(status.ledger?.earnedWei, '0', name)
      assert.ok(Math.abs((status.ledger?.since ?? 0) - Date.now()) < 10_000, `${name}: counted from now`)
      await node.stop()
      const reopened = TaskJournal.open(path)
      const stored = reopened.ledger(50)
      reopened.close()
      assert.deepEqual(stored.followed, [], `${name}: the unreadable rows are gone`)
      assert.equal((stored.totals as {earnedWei: string}).earnedWei, '0', name)
    }
  })

  it('a journal whose ledger counts for another chain, contract or miner: this node starts its own', async () => {
    const path = join(dir, 'other.sqlite')
    const journal = TaskJournal.open(path)
    journal.setLedgerTotals({key: ledgerKey(1, fakeAddress(9), ME), totals: {won: 5, lost: 0, expired: 0, rejected: 0, disagreed: 0}, earnedWei: '5000', since: 1})
    journal.close()
    const node = run(path, {logs: new Map(), subscribers: [], queries: []})
    const status = await node.status()
    assert.equal(status.ledger?.totals.won, 0, 'another deployment\'s wins are not this one\'s')
    assert.equal(status.ledger?.earnedWei, '0')
    await node.stop()
  })
})
