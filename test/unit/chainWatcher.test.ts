import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import type {JsonRpcProvider, Log} from 'ethers'
import {ChainWatcher, MAX_FAILED_POLLS, type ChainWatcherInit, type DecodedEvent, type WatchCursor} from '../../src/chain/chainWatcher.js'
import type {WatchedEvent} from '../../src/chain/taskEvents.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {fakeAddress} from '../support/fakeAddress.js'
import {waitFor} from '../support/until.js'

interface LogRequest {fromBlock: number, toBlock: number}

/** A provider that answers the head and, per block range asked, one TaskExpired log per block. */
function fakeProvider (state: {head: number, failing: boolean, requests: LogRequest[], hold?: Promise<void>}): JsonRpcProvider {
  return {
    getBlockNumber: async () => {
      if (state.failing) throw new Error('connect ECONNREFUSED')
      return state.head
    },
    getLogs: async (filter: LogRequest) => {
      state.requests.push({fromBlock: filter.fromBlock, toBlock: filter.toBlock})
      await state.hold
      return Array.from({length: filter.toBlock - filter.fromBlock + 1}, (_, i) => ({blockNumber: filter.fromBlock + i}))
    },
    _getConnection: () => ({url: 'http://rpc.example'})
  } as unknown as JsonRpcProvider
}

/** Each fake log becomes the decoded TaskExpired of task `<block>`. */
const decodeLogs = (logs: readonly Log[]): DecodedEvent[] => logs.map((log) =>
  ({contract: 'cognitive', name: 'TaskExpired', args: {taskId: String(log.blockNumber), refund: '0'}, txHash: '0x', blockNumber: log.blockNumber, logIndex: 0}))

function watcher (provider: JsonRpcProvider, cursor: WatchCursor, overrides: Partial<ChainWatcherInit> = {}): {watcher: ChainWatcher, deliveries: Array<{events: WatchedEvent[], toBlock: number}>, failures: Error[]} {
  const deliveries: Array<{events: WatchedEvent[], toBlock: number}> = []
  const failures: Error[] = []
  const w = new ChainWatcher({
    provider, address: fakeAddress(9), decodeLogs, cursor, intervalMs: 5, maxRange: 10,
    deliver: (events, toBlock) => { deliveries.push({events, toBlock}) },
    active: () => true,
    onFailed: (error) => { failures.push(error) },
    log: createSilentLogger(),
    ...overrides
  })
  return {watcher: w, deliveries, failures}
}

describe('chain watcher', () => {
  it('walks from the cursor to the head in ranges of at most maxRange blocks, each block once', async () => {
    const state = {head: 24, failing: false, requests: [] as LogRequest[]}
    const cursor = {next: 3}
    const {watcher: w, deliveries} = watcher(fakeProvider(state), cursor)
    w.start()
    await waitFor('the head', () => cursor.next === 25)
    state.head = 26
    await waitFor('the new head', () => cursor.next === 27)
    w.stop()
    assert.deepEqual(state.requests, [{fromBlock: 3, toBlock: 12}, {fromBlock: 13, toBlock: 22}, {fromBlock: 23, toBlock: 24}, {fromBlock: 25, toBlock: 26}])
    assert.deepEqual(deliveries.map((d) => d.toBlock), [12, 22, 24, 26])
    assert.deepEqual(deliveries.flatMap((d) => d.events.map((e) => e.event.taskId)), Array.from({length: 24}, (_, i) => String(i + 3)))
  })

  it('fetches nothing while inactive (no subscriber would hear it)', async () => {
    const state = {head: 10, failing: false, requests: [] as LogRequest[]}
    const {watcher: w} = watcher(fakeProvider(state), {next: 0}, {active: () => false})
    w.start()
    await new Promise((resolve) => setTimeout(resolve, 50))
    w.stop()
    assert.deepEqual(state.requests, [])
  })

  it('a poll in flight when stopped delivers nothing and leaves the cursor for the next watcher', async () => {
    let release = (): void => {}
    const state = {head: 5, failing: false, requests: [] as LogRequest[], hold: new Promise<void>((resolve) => { release = resolve })}
    const cursor = {next: 1}
    const first = watcher(fakeProvider(state), cursor)
    first.watcher.start()
    await waitFor('the poll to be in flight', () => state.requests.length === 1)
    first.watcher.stop()
    release()
    await new Promise((resolve) => setTimeout(resolve, 20))
    assert.deepEqual([first.deliveries, cursor.next], [[], 1])

    const second = watcher(fakeProvider({...state, requests: []}), cursor)
    second.watcher.start()
    await waitFor('the second watcher', () => cursor.next === 6)
    second.watcher.stop()
    assert.deepEqual(second.deliveries.map((d) => d.toBlock), [5])
  })

  it(`gives up after ${MAX_FAILED_POLLS} failed polls in a row; a success in between starts the count again`, async () => {
    const state = {head: 1, failing: true, requests: [] as LogRequest[]}
    const cursor = {next: 0}
    const {watcher: w, failures, deliveries} = watcher(fakeProvider(state), cursor)
    w.start()
    await new Promise((resolve) => setTimeout(resolve, 12))
    state.failing = false
    await waitFor('a recovery', () => deliveries.length === 1)
    assert.equal(failures.length, 0)
    state.failing = true
    await waitFor('the verdict', () => failures.length === 1)
    assert.match(failures[0]!.message, /5 consecutive polls failed; last: connect ECONNREFUSED/)
    // Stopped itself: no further polls and no second verdict.
    await new Promise((resolve) => setTimeout(resolve, 40))
    assert.equal(failures.length, 1)
    w.stop()
  })

  it('with a scope, asks only for assignments to the miner and the events of its tasks (and of tasks assigned to it)', async () => {
    const filters: unknown[][] = []
    const miner = fakeAddress(3)
    const pad = (n: number): string => '0x' + n.toString(16).padStart(64, '0')
    const held = new Set<string>()
    const provider = {
      getBlockNumber: async () => 7,
      getLogs: async (filter: {topics: unknown[]}) => {
        filters.push(filter.topics)
        // Task 9 was assigned to us on chain: the first query finds its MinerAssigned.
        return filter.topics[0] != null && held.size > 0 ? [{blockNumber: 6, topics: [filter.topics[0], pad(9), pad(3)]}] : []
      },
      _getConnection: () => ({url: 'http://rpc.example'})
    } as unknown as JsonRpcProvider
    const cursor = {next: 5}
    const {watcher: w} = watcher(provider, cursor, {scope: () => ({assignee: miner, taskIds: () => held.values()}), decodeLogs: () => []})
    w.start()
    await waitFor('the first range', () => cursor.next === 8)
    w.stop()
    // Nothing held and nothing assigned: one query, for assignments to us only.
    assert.equal(filters.length, 1)
    assert.deepEqual(filters[0]!.slice(1), [null, '0x' + miner.slice(2).padStart(64, '0')])

    held.add('4')
    filters.length = 0
    cursor.next = 5
    w.start()
    await waitFor('the second range', () => cursor.next === 8)
    w.stop()
    assert.equal(filters.length, 2)
    assert.deepEqual(filters[1], [null, [pad(4), pad(9)]])
  })
})
