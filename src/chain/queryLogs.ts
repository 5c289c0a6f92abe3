import type {JsonRpcProvider, Log} from 'ethers'
import {MAX_LOG_RANGE} from './chainWatcher.js'

/** Most `MAX_LOG_RANGE` slices a refused query is split into: beyond, it fails as the one call did (a scan of the chain's whole history is not a query). */
const MAX_LOG_SLICES = 50

/**
 * Logs from `fromBlock` to the head: one call, or, when the RPC refuses that (public endpoints
 * cap the range), `MAX_LOG_RANGE` blocks at a time, up to `MAX_LOG_SLICES` of them.
 */
export async function queryLogs (provider: Pick<JsonRpcProvider, 'getLogs' | 'getBlockNumber'>, filter: {address: string, topics: Array<string | string[] | null>}, fromBlock: number): Promise<Log[]> {
  try {
    return await provider.getLogs({...filter, fromBlock})
  } catch (err) {
    const head = await provider.getBlockNumber()
    const span = head - fromBlock + 1
    if (span <= MAX_LOG_RANGE || span > MAX_LOG_RANGE * MAX_LOG_SLICES) throw err
    const logs: Log[] = []
    for (let from = fromBlock; from <= head; from += MAX_LOG_RANGE) logs.push(...await provider.getLogs({...filter, fromBlock: from, toBlock: Math.min(head, from + MAX_LOG_RANGE - 1)}))
    return logs
  }
}
