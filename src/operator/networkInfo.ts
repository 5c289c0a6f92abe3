import {getBytes, hexlify, Interface, type Log} from 'ethers'
import {ACCESS_CACHE_DEFAULTS} from '../chain/accessCache.js'
import type {ContractAddresses} from '../chain/contracts.js'
import type {NetworkDescription} from '../chain/deployment.js'
import {AclRole, roleOfCode} from '../chain/enums.js'
import {aclAbi, iamAbi} from '../chain/generated/index.js'
import {toAddress, type Address} from '../protocols/address.js'
import type {Role} from '../protocols/messages.js'
import {peerIdFromBytes} from '../protocols/peerAddress.js'
import type {OperatorNetwork} from './operatorContext.js'

/** An ACL role by name: the node roles, and the admin who runs none. */
export type AclRoleName = Role | 'admin'

const ACL_ROLE_NAMES: {[K in AclRoleName]: AclRole} = {admin: AclRole.Admin, oracle: AclRole.Oracle, miner: AclRole.Miner, validator: AclRole.Validator}

export interface ModelInfo {
  id: string
  name: string
  quantization: string
  sizeBytes: number
  cid: string
  /** Hex, no 0x: as `sha256sum` prints it. */
  sha256: string
  active: boolean
  registeredAt: number
}

export interface AccountInfo {
  address: Address
  /** ACL roles held now. */
  roles: AclRoleName[]
  /** The IAM registration, active or not; null for an account that never registered. */
  registration: {role: Role | null, peerId: string | null, metadata: string, active: boolean, registeredAt: number} | null
  /** Registered, active and still granted its role: the network counts it (IAM `activeRoleOf`). */
  activeRole: Role | null
  /** NodeStats, for registered accounts. */
  stats: {
    lastPingAt: number | null
    pingAgeSeconds: number | null
    pingCount: number
    ready: boolean
    /** The models its last ping listed (ready for each while `ready`). */
    readyModelIds: string[]
    assigned: number
    precommitted: number
    committed: number
    agreed: number
    disagreed: number
    expired: number
    rejected: number
    suspended: boolean
  } | null
}

export interface NetworkInfo {
  network?: NetworkDescription
  chainId: number
  rpc: string
  block: number
  /** Unix seconds of the head block; ping ages are measured against it. */
  blockTime: number
  deployBlock: number
  deployer: Address
  contracts: ContractAddresses
  settings: {readyWindowSeconds: number, faultLimit: number, admins: number}
  models: ModelInfo[]
  accounts: AccountInfo[]
}

const acl = new Interface(aclAbi)
const iam = new Interface(iamAbi)
/** Every account the ACL or IAM ever named; their current state is read from the contracts' views. */
const ACCOUNT_EVENTS = [acl.getEvent('RoleGranted'), acl.getEvent('RoleRevoked'), iam.getEvent('NodeRegistered')].map(event => {
  if (event == null) throw new Error('ACL/IAM ABI lacks an access event: regenerate the bindings')
  return event.topicHash
})

/** Views called at once: public endpoints throttle bursts. */
const READ_CONCURRENCY = 8

/**
 * The network as the chain holds it now: contracts and settings, every registered model, and
 * every account the ACL or IAM has ever named (found from events since the deploy block, then
 * read from the views, so a revoked grant shows as revoked).
 */
export async function readNetworkInfo (network: OperatorNetwork, opts: {onProgress?: (line: string) => void, signal?: AbortSignal} = {}): Promise<NetworkInfo> {
  const {contracts, deployment, provider} = network
  const head = await provider.getBlock('latest')
  if (head == null) throw new Error('the chain returned no latest block')
  const [readyWindow, faultLimit, admins, modelCount] = await Promise.all([
    contracts.nodeStats.readyWindow(), contracts.nodeStats.faultLimit(), contracts.acl.adminCount(), contracts.modelRegistry.modelCount()
  ]) as [bigint, bigint, bigint, bigint]

  const modelIds = Array.from({length: Number(modelCount)}, (_, i) => BigInt(i + 1))
  const models = await mapLimit(modelIds, async (id): Promise<ModelInfo> => {
    const m = await contracts.modelRegistry.modelOf(id)
    return {
      id: String(id), name: m.name, quantization: m.quantization, sizeBytes: Number(m.sizeBytes), cid: m.cid,
      sha256: hexlify(m.sha256Digest).slice(2), active: m.active, registeredAt: Number(m.registeredAt)
    }
  })

  const addresses = await accountsNamed(network, head.number, opts)
  const accounts = await mapLimit(addresses, async (address): Promise<AccountInfo> => {
    opts.signal?.throwIfAborted()
    const [held, node, activeRole, stats, suspended, readyModels] = await Promise.all([
      Promise.all(Object.values(ACL_ROLE_NAMES).map(async code => await contracts.acl.hasRole(code, address) as boolean)),
      contracts.iam.nodeOf(address),
      contracts.iam.activeRoleOf(address),
      contracts.nodeStats.statsOf(address),
      contracts.nodeStats.isSuspended(address),
      contracts.nodeStats.readyModelsOf(address) as Promise<bigint[]>
    ])
    const roles = (Object.keys(ACL_ROLE_NAMES) as AclRoleName[]).filter((_, i) => held[i])
    const registered = Number(node.registeredAt) !== 0
    const lastPingAt = Number(stats.lastPingAt)
    return {
      address,
      roles,
      registration: registered
        ? {role: roleOfCode(node.role as bigint) ?? null, peerId: peerIdString(node.peerId as string), metadata: node.metadata, active: node.active, registeredAt: Number(node.registeredAt)}
        : null,
      activeRole: roleOfCode(activeRole as bigint) ?? null,
      stats: registered
        ? {
            lastPingAt: lastPingAt === 0 ? null : lastPingAt,
            pingAgeSeconds: lastPingAt === 0 ? null : Math.max(0, head.timestamp - lastPingAt),
            pingCount: Number(stats.pingCount),
            ready: stats.ready,
            readyModelIds: readyModels.map(id => id.toString()),
            assigned: Number(stats.assigned),
            precommitted: Number(stats.precommitted),
            committed: Number(stats.committed),
            agreed: Number(stats.agreed),
            disagreed: Number(stats.disagreed),
            expired: Number(stats.expired),
            rejected: Number(stats.rejected),
            suspended: suspended as boolean
          }
        : null
    }
  })

  return {
    ...(deployment.network === undefined ? {} : {network: deployment.network}),
    chainId: network.chainId,
    rpc: network.endpoint,
    block: head.number,
    blockTime: head.timestamp,
    deployBlock: deployment.deployBlock,
    deployer: deployment.deployer,
    contracts: deployment.contracts,
    settings: {readyWindowSeconds: Number(readyWindow), faultLimit: Number(faultLimit), admins: Number(admins)},
    models,
    accounts
  }
}

/** Accounts in the order the chain first named them. */
async function accountsNamed (network: OperatorNetwork, head: number, opts: {onProgress?: (line: string) => void, signal?: AbortSignal}): Promise<Address[]> {
  const {deployment, provider} = network
  const seen = new Set<Address>()
  const range = ACCESS_CACHE_DEFAULTS.maxBlockRange
  const chunks = Math.ceil((head - deployment.deployBlock + 1) / range)
  for (let from = deployment.deployBlock, chunk = 1; from <= head; from += range, chunk++) {
    opts.signal?.throwIfAborted()
    const to = Math.min(head, from + range - 1)
    if (chunks > 1) opts.onProgress?.(`scanning blocks ${from}..${to} for ACL and IAM events (${chunk}/${chunks})`)
    const logs = await provider.getLogs({address: [deployment.contracts.acl, deployment.contracts.iam], topics: [ACCOUNT_EVENTS], fromBlock: from, toBlock: to})
    for (const log of logs) {
      const account = accountOf(log, deployment.contracts.acl)
      if (account !== undefined) seen.add(account)
    }
  }
  return [...seen]
}

function accountOf (log: Log, aclAddress: Address): Address | undefined {
  const event = (toAddress(log.address) === aclAddress ? acl : iam).parseLog(log)
  return event == null ? undefined : toAddress(event.args.getValue('account') as string)
}

function peerIdString (hex: string): string | null {
  try {
    return peerIdFromBytes(getBytes(hex)).toString()
  } catch {
    return null
  }
}

async function mapLimit<T, R> (items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({length: Math.min(READ_CONCURRENCY, items.length)}, worker))
  return results
}

/** The human-readable form of `cortensord network info`. */
export function formatNetworkInfo (info: NetworkInfo): string {
  const lines: string[] = []
  const when = (unix: number): string => new Date(unix * 1000).toISOString().replace(/\.000Z$/, 'Z')
  lines.push(`network    ${info.network?.name ?? '(unnamed)'}, chain id ${info.chainId}`)
  lines.push(`rpc        ${info.rpc}, block ${info.block} at ${when(info.blockTime)}`)
  if (info.network?.explorerUrl !== undefined) lines.push(`explorer   ${info.network.explorerUrl}`)
  lines.push(`deployer   ${info.deployer}, deploy block ${info.deployBlock}`)
  lines.push(`settings   ready window ${info.settings.readyWindowSeconds === 0 ? 'off' : `${info.settings.readyWindowSeconds} s`}, fault limit ${info.settings.faultLimit === 0 ? 'off' : info.settings.faultLimit}, admins ${info.settings.admins}`)
  lines.push('', 'contracts')
  for (const [name, address] of Object.entries(info.contracts)) lines.push(`  ${name.padEnd(14)} ${address}`)

  lines.push('', `models (${info.models.length})`)
  if (info.models.length === 0) lines.push('  none: cortensord model publish FILE --name NAME --quantization LABEL')
  for (const m of info.models) {
    lines.push(`  #${m.id} ${m.name}  ${m.quantization}  ${formatBytes(m.sizeBytes)}  ${m.active ? 'active' : 'inactive'}  registered ${when(m.registeredAt)}`)
    lines.push(`     cid     ${m.cid}`, `     sha256  ${m.sha256}`)
  }

  lines.push('', `accounts (${info.accounts.length})`)
  const rows = info.accounts.map(a => {
    const r = a.registration
    const node = r == null ? 'not registered' : `${r.role ?? '?'}${r.active ? '' : ' (deactivated)'}`
    const s = a.stats
    const ping = s?.pingAgeSeconds == null ? '-' : `${formatAge(s.pingAgeSeconds)} ago${s.ready ? `, ready on model${s.readyModelIds.length === 1 ? '' : 's'} ${s.readyModelIds.join(', ')}` : ', not ready'}`
    const counters = s == null ? '-' : `${s.assigned}/${s.precommitted}/${s.committed}/${s.agreed}/${s.disagreed}/${s.expired}/${s.rejected}${s.suspended ? ' SUSPENDED' : ''}`
    return [a.address, a.roles.length === 0 ? '(none)' : a.roles.join(','), node, a.activeRole ?? 'no', ping, counters]
  })
  const header = ['ADDRESS', 'ACL ROLES', 'IAM NODE', 'ACTIVE', 'LAST PING', 'ASSIGNED/PRECOMMITTED/COMMITTED/AGREED/DISAGREED/EXPIRED/REJECTED']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(row => row[i]!.length)))
  for (const row of [header, ...rows]) lines.push(`  ${row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!)).join('  ')}`)
  return `${lines.join('\n')}\n`
}

function formatBytes (n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = n
  let unit = -1
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`
}

function formatAge (seconds: number): string {
  if (seconds < 120) return `${seconds} s`
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`
  return `${Math.round(seconds / 86_400)} d`
}
