import {getBytes, Interface, JsonRpcProvider, type Log, type Provider} from 'ethers'
import type {AccessView} from '../protocols/accessView.js'
import {toAddress, type Address} from '../protocols/address.js'
import type {Role} from '../protocols/messages.js'
import {peerIdFromBytes} from '../protocols/peerAddress.js'
import type {Logger} from '../util/logger.js'
import {sleep} from '../util/sleep.js'
import {ROLE_CODE, roleOfCode, type AclRole} from './enums.js'
import {PollPace} from './pollPace.js'
import {aclAbi, iamAbi} from './generated/index.js'

export interface AccessCacheInit {
  provider: Provider
  aclAddress: Address
  iamAddress: Address
  /** Block the contracts were deployed in: history before it holds none of their events. */
  fromBlock?: number
  /** How often the chain is asked for new events while they come (see PollPace; idle, at most every `IDLE_POLL_MS`). */
  pollIntervalMs?: number
  /** Most blocks per `eth_getLogs` call: public RPC endpoints refuse wide ranges. */
  maxBlockRange?: number
  /** The provider's endpoint, for log lines (credentials are stripped); read from a JsonRpcProvider when absent. */
  rpcUrl?: string
  logger: Logger
}

/** One IAM registration, as last seen in events. */
export interface NodeRecord {
  address: Address
  /** Undefined when registered with a code that is no node role. */
  role: Role | undefined
  /** libp2p peer id string; null when the registered bytes are not a peer id. */
  peerId: string | null
  metadata: string
  active: boolean
}

export const ACCESS_CACHE_DEFAULTS = {pollIntervalMs: 1_000, maxBlockRange: 5_000, retryMs: 2_000} as const

const acl = new Interface(aclAbi)
const iam = new Interface(iamAbi)
const WATCHED = [
  acl.getEvent('RoleGranted'), acl.getEvent('RoleRevoked'),
  iam.getEvent('NodeRegistered'), iam.getEvent('NodeMetadataUpdated'), iam.getEvent('NodeDeactivated')
].map(event => {
  if (event == null) throw new Error('ACL/IAM ABI lacks an access event: regenerate the bindings')
  return event.topicHash
})

/**
 * The chain's ACL roles and IAM registrations, mirrored in memory as an `AccessView`: built by
 * replaying the contracts' events from their deployment block, then kept fresh by polling for
 * new ones. Reads are map lookups and never wait on the chain; while the chain is unreachable
 * the last known state stands. Chain reorgs are not undone (events are applied as first seen).
 */
export class AccessCache implements AccessView {
  /** Resolves once history up to the head at start has been replayed; rejects if stopped first. */
  readonly ready: Promise<void>
  private readonly init: Required<Omit<AccessCacheInit, 'logger' | 'provider' | 'rpcUrl'>>
  private readonly provider: Provider
  private readonly log: Logger
  private readonly aclRoles = new Map<Address, Set<AclRole>>()
  private readonly nodes = new Map<Address, NodeRecord>()
  private readonly controller = new AbortController()
  /** Where the chain is, as log lines may show it. */
  private readonly endpoint: string
  /** Last block whose events are applied. */
  private syncedBlock: number
  private readonly pace: PollPace

  constructor (init: AccessCacheInit) {
    this.provider = init.provider
    this.log = init.logger
    this.init = {
      aclAddress: init.aclAddress,
      iamAddress: init.iamAddress,
      fromBlock: init.fromBlock ?? 0,
      pollIntervalMs: init.pollIntervalMs ?? ACCESS_CACHE_DEFAULTS.pollIntervalMs,
      maxBlockRange: init.maxBlockRange ?? ACCESS_CACHE_DEFAULTS.maxBlockRange
    }
    const rpcUrl = init.rpcUrl ?? (init.provider instanceof JsonRpcProvider ? init.provider._getConnection().url : undefined)
    this.endpoint = rpcUrl == null ? 'the configured RPC endpoint' : rpcUrlForLogs(rpcUrl)
    this.syncedBlock = this.init.fromBlock - 1
    this.pace = new PollPace(this.init.pollIntervalMs)
    const {promise, resolve, reject} = Promise.withResolvers<void>()
    this.ready = promise
    // Nobody may be awaiting `ready` when `stop` rejects it.
    promise.catch(() => {})
    this.run(resolve, reject).catch((err: unknown) => { this.log.error({err}, 'access cache stopped on an unexpected error') })
  }

  roleAllowed (address: Address, role: Role): boolean {
    const node = this.nodes.get(address)
    // Same rule as IAM.activeRoleOf: registered, active, with that role, still granted by ACL.
    return node != null && node.active && node.role === role && (this.aclRoles.get(address)?.has(ROLE_CODE[role]) ?? false)
  }

  nodeOf (address: Address): NodeRecord | undefined {
    return this.nodes.get(address)
  }

  peerIdOf (address: Address): string | undefined {
    const node = this.nodes.get(address)
    return node?.active === true ? node.peerId ?? undefined : undefined
  }

  /** Registered nodes that currently pass `roleAllowed` for their role. */
  activeNodes (): NodeRecord[] {
    return [...this.nodes.values()].filter(n => n.role != null && this.roleAllowed(n.address, n.role))
  }

  /** The last block applied; -1 before any. */
  get block (): number {
    return this.syncedBlock
  }

  stop (): void {
    this.controller.abort(new Error('access cache stopped'))
  }

  private async run (resolve: () => void, reject: (err: unknown) => void): Promise<void> {
    const signal = this.controller.signal
    let loaded = false
    /** When the current outage began; undefined while the chain answers. */
    let unreachableSince: number | undefined
    signal.addEventListener('abort', () => { if (!loaded) reject(signal.reason) }, {once: true})
    while (!signal.aborted) {
      try {
        await this.syncToHead(signal)
        if (unreachableSince != null) {
          this.log.info({rpc: this.endpoint, downForS: Math.round((Date.now() - unreachableSince) / 1000)}, `chain at ${this.endpoint} is reachable again`)
          unreachableSince = undefined
        }
        if (!loaded) {
          loaded = true
          this.log.info({block: this.syncedBlock, nodes: this.nodes.size}, 'access cache loaded')
          resolve()
        }
        await sleep(this.pace.nextDelay(), signal)
      } catch (err) {
        if (signal.aborted) return
        // One line per outage: the first failure warns, the retries are debug.
        const retryS = ACCESS_CACHE_DEFAULTS.retryMs / 1000
        if (unreachableSince == null) {
          unreachableSince = Date.now()
          const what = loaded ? 'keeping the last known access state' : 'the node waits for it'
          this.log.warn({rpc: this.endpoint, err: (err as Error).message, retryS}, `chain at ${this.endpoint} is unreachable; ${what} (retrying every ${retryS} s)`)
        } else {
          this.log.debug({rpc: this.endpoint, err: (err as Error).message}, 'chain still unreachable')
        }
        await sleep(ACCESS_CACHE_DEFAULTS.retryMs, signal).catch(() => {})
      }
    }
  }

  private async syncToHead (signal: AbortSignal): Promise<void> {
    const head = await this.provider.getBlockNumber()
    while (this.syncedBlock < head && !signal.aborted) {
      const fromBlock = this.syncedBlock + 1
      const toBlock = Math.min(head, fromBlock + this.init.maxBlockRange - 1)
      const logs = await this.provider.getLogs({
        address: [this.init.aclAddress, this.init.iamAddress],
        topics: [WATCHED],
        fromBlock,
        toBlock
      })
      signal.throwIfAborted()
      // Admissions come in bursts (a network starting, an operator admitting nodes): keep up.
      if (logs.length > 0) this.pace.busy()
      for (const log of logs) this.apply(log)
      // Only now: a failed call above retries the whole range, and re-applying is harmless.
      this.syncedBlock = toBlock
    }
  }

  /** Applies one event. */
  private apply (log: Log): void {
    const contract = toAddress(log.address) === this.init.aclAddress ? acl : iam
    const event = contract.parseLog(log)
    if (event == null) return
    const account = toAddress(event.args.getValue('account') as string)
    switch (event.name) {
      case 'RoleGranted':
      case 'RoleRevoked': {
        const role = Number(event.args.getValue('role')) as AclRole
        const roles = this.aclRoles.get(account) ?? new Set<AclRole>()
        if (event.name === 'RoleGranted') roles.add(role)
        else roles.delete(role)
        this.aclRoles.set(account, roles)
        break
      }
      case 'NodeRegistered':
        this.nodes.set(account, {
          address: account,
          role: roleOfCode(event.args.getValue('role') as bigint),
          peerId: this.decodePeerId(account, event.args.getValue('peerId') as string),
          metadata: event.args.getValue('metadata') as string,
          active: true
        })
        break
      case 'NodeMetadataUpdated': {
        const node = this.nodes.get(account)
        if (node != null) node.metadata = event.args.getValue('metadata') as string
        break
      }
      case 'NodeDeactivated': {
        const node = this.nodes.get(account)
        if (node != null) node.active = false
        break
      }
      default:
        return
    }
    this.log.debug({event: event.name, account, block: log.blockNumber}, 'access event')
  }

  private decodePeerId (account: string, hex: string): string | null {
    try {
      return peerIdFromBytes(getBytes(hex)).toString()
    } catch {
      this.log.warn({account}, 'IAM registration holds bytes that are not a libp2p peer id')
      return null
    }
  }
}

/**
 * An RPC URL as a log line may show it: scheme, host and port only. User info, paths and
 * queries often carry API keys (`https://user:pass@…`, `…/v2/<key>`, `?apikey=`).
 */
export function rpcUrlForLogs (rpcUrl: string): string {
  try {
    const url = new URL(rpcUrl)
    return `${url.protocol}//${url.host}`
  } catch {
    return 'an RPC URL that does not parse'
  }
}
