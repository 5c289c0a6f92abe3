import {type EventFragment, Interface, type JsonRpcProvider, type Log, toBeHex, zeroPadValue} from 'ethers'
import {toAddress, type Address} from '../protocols/address.js'
import type {Logger} from '../util/logger.js'
import {rpcUrlForLogs} from './accessCache.js'
import {CONTRACT_NAMES, type ContractName} from './contractNames.js'
import {CONTRACT_ABIS, type ContractAddresses} from './contracts.js'
import {PollPace} from './pollPace.js'
import {toTaskEvent, type WatchedEvent} from './taskEvents.js'

/** A contract event decoded from a receipt or a log query. */
export interface DecodedEvent {
  contract: ContractName
  name: string
  args: Record<string, unknown>
  txHash: string
  blockNumber: number
  logIndex: number
}

const INTERFACES: {[K in ContractName]: Interface} = Object.fromEntries(
  CONTRACT_NAMES.map(key => [key, new Interface(CONTRACT_ABIS[key])])) as {[K in ContractName]: Interface}

/**
 * Each contract's events by topic hash, computed once: ethers' `parseLog` finds the event by
 * hashing every event signature of the contract again (keccak in pure JS) for every log.
 */
const EVENTS_BY_TOPIC: {[K in ContractName]: Map<string, EventFragment>} = Object.fromEntries(
  CONTRACT_NAMES.map(key => {
    const events = new Map<string, EventFragment>()
    INTERFACES[key].forEachEvent(event => { events.set(event.topicHash, event) })
    return [key, events]
  })) as {[K in ContractName]: Map<string, EventFragment>}

/**
 * Decodes logs of the network's contracts (others are skipped) into named events whose
 * arguments are plain JSON-able data: integers as decimal strings, addresses in their one
 * in-process form (`toAddress`).
 */
export function createLogDecoder (contracts: ContractAddresses): (logs: readonly Log[]) => DecodedEvent[] {
  const byAddress = new Map<Address, ContractName>(CONTRACT_NAMES.map(key => [contracts[key], key]))
  return (logs) => {
    const events: DecodedEvent[] = []
    for (const log of logs) {
      const contract = byAddress.get(toAddress(log.address))
      if (contract == null) continue
      const fragment = log.topics[0] == null ? undefined : EVENTS_BY_TOPIC[contract].get(log.topics[0])
      if (fragment == null) continue
      const values = INTERFACES[contract].decodeEventLog(fragment, log.data, log.topics)
      const args: Record<string, unknown> = {}
      fragment.inputs.forEach((input, i) => { args[input.name] = normalise(values[i], input.baseType === 'array' ? input.arrayChildren?.type : input.type) })
      events.push({contract, name: fragment.name, args, txHash: log.transactionHash, blockNumber: log.blockNumber, logIndex: log.index})
    }
    return events
  }
}

function normalise (value: unknown, type: string | undefined): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (Array.isArray(value)) return value.map(v => normalise(v, type))
  if (type === 'address' && typeof value === 'string') return toAddress(value)
  return value
}

/** Widest block range of one `eth_getLogs` (public RPCs commonly cap it near 2,000). */
export const MAX_LOG_RANGE = 2_000
/** Consecutive failed polls after which the watcher gives up and its owner crashes. */
export const MAX_FAILED_POLLS = 5

/**
 * Where the watcher is: the next block to deliver. Owned by whoever outlives the watcher (the
 * chain actor's definition), so a rebuilt watcher resumes exactly there.
 */
export interface WatchCursor {
  next: number
}

/**
 * What a node that works on some tasks needs from the chain: the events of those tasks, and the
 * assignments naming it (a task it was given on chain whose gossip it never got).
 */
export interface WatchScope {
  assignee: Address
  /** Task ids as decimal strings, read at every poll. */
  taskIds: () => Iterable<string>
}

const MINER_ASSIGNED_TOPIC = (() => {
  const event = INTERFACES.cognitive.getEvent('MinerAssigned')
  if (event == null) throw new Error('Cognitive ABI lacks MinerAssigned: regenerate the bindings')
  return event.topicHash
})()

export interface ChainWatcherInit {
  provider: JsonRpcProvider
  /** The Cognitive contract: the only address whose logs are fetched. */
  address: Address
  decodeLogs: (logs: readonly Log[]) => DecodedEvent[]
  cursor: WatchCursor
  /** The pace while busy; an idle watcher (see PollPace) polls at most every `IDLE_POLL_MS`. */
  intervalMs: number
  /** Called for every block range the cursor passes, events or not, in block order. */
  deliver: (events: WatchedEvent[], toBlock: number) => void
  /** While false, nothing is fetched and the cursor stays (nobody would hear the events). */
  active: () => boolean
  /**
   * Only these tasks' events (undefined: every event of the contract). A miner asks for its own
   * tasks: it then fetches a few logs per block, not every task's of the whole network.
   */
  scope?: () => WatchScope | undefined
  /** Called once, after `MAX_FAILED_POLLS` consecutive failed polls; the watcher has stopped. */
  onFailed: (error: Error) => void
  log: Logger
  maxRange?: number
}

/**
 * One poll loop over the Cognitive contract's logs: every interval, the head, then the logs
 * from the cursor up to the head (at most `maxRange` blocks at once), converted to task
 * events and delivered; then the cursor moves past them. A poll in flight when the watcher is
 * stopped delivers nothing and leaves the cursor alone, so a restart neither repeats nor
 * skips a block.
 */
export class ChainWatcher {
  private timer: NodeJS.Timeout | undefined
  private stopped = true
  private failures = 0
  private polling = false
  private readonly pace: PollPace

  constructor (private readonly init: ChainWatcherInit) {
    this.pace = new PollPace(init.intervalMs)
  }

  /**
   * This node just did something on chain (sent a transaction): its events are coming, so poll
   * at the fast pace now rather than after an idle interval.
   */
  wake (): void {
    const wasBusy = this.pace.isBusy
    this.pace.busy()
    if (wasBusy || this.stopped || this.polling) return
    clearTimeout(this.timer)
    this.schedule()
  }

  start (): void {
    if (!this.stopped) return
    this.stopped = false
    this.schedule()
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private schedule (): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.polling = true
      void this.poll().finally(() => {
        this.polling = false
        this.schedule()
      })
    }, this.pace.nextDelay())
  }

  private async poll (): Promise<void> {
    const {provider, cursor, log} = this.init
    if (!this.init.active()) return
    try {
      const head = await provider.getBlockNumber()
      const from = cursor.next
      if (this.stopped || head < from) return this.recovered()
      const to = Math.min(head, from + (this.init.maxRange ?? MAX_LOG_RANGE) - 1)
      const logs = await this.fetchLogs(from, to)
      // Stopped meanwhile, or someone else moved the cursor: this range is not ours to deliver.
      if (this.stopped || cursor.next !== from) return
      const events: WatchedEvent[] = []
      for (const decoded of this.init.decodeLogs(logs)) {
        const event = toTaskEvent(decoded)
        if (event !== undefined) events.push({event, blockNumber: decoded.blockNumber, txHash: decoded.txHash, logIndex: decoded.logIndex})
      }
      events.sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex)
      cursor.next = to + 1
      this.recovered()
      if (events.length > 0) this.pace.busy()
      this.init.deliver(events, to)
    } catch (err) {
      if (this.stopped) return
      this.failures++
      const error = err instanceof Error ? err : new Error(String(err))
      const details = {rpcUrl: rpcUrlForLogs(provider._getConnection().url), fromBlock: cursor.next, failures: this.failures, err: error.message}
      if (this.failures === 1) log.warn(details, 'chain watcher poll failed')
      else log.debug(details, 'chain watcher poll failed again')
      if (this.failures >= MAX_FAILED_POLLS) {
        this.stop()
        this.init.onFailed(new Error(`chain watcher: ${this.failures} consecutive polls failed; last: ${error.message}`, {cause: error}))
      }
    }
  }

  private async fetchLogs (fromBlock: number, toBlock: number): Promise<Log[]> {
    const {provider, address} = this.init
    const scope = this.init.scope?.()
    if (scope == null) return await provider.getLogs({address, fromBlock, toBlock})
    // Assignments to us first: their tasks' other events (TaskCreated above all) come in the second query.
    const assigned = await provider.getLogs({address, fromBlock, toBlock, topics: [MINER_ASSIGNED_TOPIC, null, zeroPadValue(scope.assignee, 32)]})
    const ids = new Set<string>()
    for (const id of scope.taskIds()) ids.add(zeroPadValue(toBeHex(BigInt(id)), 32))
    for (const log of assigned) if (log.topics[1] != null) ids.add(log.topics[1])
    if (ids.size === 0) return assigned
    return await provider.getLogs({address, fromBlock, toBlock, topics: [null, [...ids]]})
  }

  private recovered (): void {
    if (this.failures === 0) return
    this.init.log.info({failures: this.failures, next: this.init.cursor.next}, 'chain watcher recovered')
    this.failures = 0
  }
}
