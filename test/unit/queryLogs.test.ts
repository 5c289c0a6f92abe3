import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import type {Filter, FilterByBlockHash, Log} from 'ethers'
import {MAX_LOG_RANGE} from '../../src/chain/chainWatcher.js'
import {queryLogs} from '../../src/chain/queryLogs.js'

/** An RPC endpoint as public ones are: it refuses a getLogs over more than `cap` blocks; one log per 1,000 blocks. */
function cappedRpc (head: number, cap: number): {provider: {getLogs: (f: Filter | FilterByBlockHash) => Promise<Log[]>, getBlockNumber: () => Promise<number>}, calls: Array<[number, number]>} {
  const calls: Array<[number, number]> = []
  return {
    calls,
    provider: {
      getBlockNumber: async () => head,
      getLogs: async (filter) => {
        const {fromBlock, toBlock} = filter as {fromBlock: number, toBlock?: number}
        const to = toBlock ?? head
        calls.push([fromBlock, to])
        if (to - fromBlock + 1 > cap) throw new Error(`query exceeds max block range ${cap}`)
        const logs: Log[] = []
        for (let b = Math.ceil(fromBlock / 1000) * 1000; b <= to; b += 1000) logs.push({blockNumber: b} as Log)
        return logs
      }
    }
  }
}

const FILTER = {address: '0x' + '11'.repeat(20), topics: [null, '0x' + '22'.repeat(32)]}

describe('queryLogs: a getLogs the RPC refuses for its range', () => {
  it('asks again slice by slice and returns every log once, in block order', async () => {
    const {provider, calls} = cappedRpc(25_000, MAX_LOG_RANGE)
    const logs = await queryLogs(provider, FILTER, 10_500)
    assert.deepEqual(logs.map(l => l.blockNumber), [11_000, 12_000, 13_000, 14_000, 15_000, 16_000, 17_000, 18_000, 19_000, 20_000, 21_000, 22_000, 23_000, 24_000, 25_000])
    assert.equal(calls.length, 1 + Math.ceil(14_501 / MAX_LOG_RANGE), 'the refused call, then one per slice')
    assert.ok(calls.slice(1).every(([from, to]) => to - from + 1 <= MAX_LOG_RANGE))
  })

  it('one call when the RPC takes the range', async () => {
    const {provider, calls} = cappedRpc(25_000, 1_000_000)
    assert.equal((await queryLogs(provider, FILTER, 0)).length, 26)
    assert.equal(calls.length, 1)
  })

  it('a range too wide to slice (the whole history of a long chain) fails with the RPC\'s own error', async () => {
    const {provider, calls} = cappedRpc(10_000_000, MAX_LOG_RANGE)
    await assert.rejects(queryLogs(provider, FILTER, 0), /query exceeds max block range 2000/)
    assert.equal(calls.length, 1, 'no scan of the chain\'s history')
  })
})
