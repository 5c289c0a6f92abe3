import {mkdir, readFile, rename, writeFile} from 'node:fs/promises'
import {dirname} from 'node:path'
import {isAddress} from 'ethers'
import {toAddress, type Address} from '../protocols/address.js'
import {CortensorError} from '../util/cortensorError.js'
import {CONTRACT_NAMES} from './contractNames.js'
import type {ContractAddresses} from './contracts.js'

/**
 * Where a network's contracts live: written by `deployNetwork` (through `cortensord network
 * deploy` or the devnet), read by every node and operator command. A public preset
 * (config/arbitrum-sepolia.json) is a file of this one format whose addresses are still null.
 */
export interface Deployment {
  chainId: number
  contracts: ContractAddresses
  /** Block of the first deployment transaction: where event scans start. */
  deployBlock: number
  deployer: Address
  /** What people and operator commands need to find the chain; nodes take their RPC from their config. */
  network?: NetworkDescription
}

export interface NetworkDescription {
  name: string
  /** Public RPC endpoints; operator commands use the first when no `--rpc` is given. */
  rpcUrls: string[]
  explorerUrl?: string
  nativeCurrency?: string
}

export class DeploymentError extends CortensorError<{code: 'DEPLOYMENT_UNREADABLE' | 'DEPLOYMENT_INVALID', path: string, field?: string}> {}

export async function writeDeployment (path: string, deployment: Deployment): Promise<void> {
  validateDeployment(deployment, path)
  await mkdir(dirname(path), {recursive: true})
  // Write then rename: a node starting concurrently never reads half a file.
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(deployment, null, 2) + '\n')
  await rename(tmp, path)
}

export async function readDeployment (path: string): Promise<Deployment> {
  return validateDeployment(await readDeploymentJson(path), path)
}

/** The parsed file, unchecked: `network deploy` fills in a preset whose addresses are still null. */
export async function readDeploymentJson (path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'))
  } catch (cause) {
    throw new DeploymentError({code: 'DEPLOYMENT_UNREADABLE', path}, `cannot read deployment file ${path}: ${(cause as Error).message}`, {cause})
  }
}

/** Checks the shape of a parsed deployment; addresses come back normalised (`toAddress`). */
export function validateDeployment (value: unknown, source = '<deployment>'): Deployment {
  const fail = invalidField(source)
  // A preset ships its deployment fields as null until the network's admin has deployed.
  const notDeployed = (field: string): never =>
    fail(field, `is not set: this network's contracts are not deployed yet (run \`cortensord network deploy --out ${source}\`, or fill in what it printed)`)
  const address = (field: string, v: unknown): Address => {
    if (v === null || v === undefined) return notDeployed(field)
    // ethers' check: a mixed-case address must carry a valid EIP-55 checksum (a typo shows).
    if (typeof v !== 'string' || !isAddress(v)) return fail(field, `must be a 0x-prefixed 20-byte address, got ${JSON.stringify(v)}`)
    return toAddress(v)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('(root)', 'must be a JSON object')
  const d = value as Record<string, unknown>
  if (!Number.isSafeInteger(d.chainId) || (d.chainId as number) <= 0) fail('chainId', `must be a positive integer, got ${JSON.stringify(d.chainId)}`)
  const network = d.network === undefined ? undefined : validateNetworkDescription(d.network, source)
  if (typeof d.contracts !== 'object' || d.contracts === null) fail('contracts', 'must be an object of addresses')
  const raw = d.contracts as Record<string, unknown>
  const contracts = Object.fromEntries(CONTRACT_NAMES.map((key) => [key, address(`contracts.${key}`, raw[key])])) as ContractAddresses
  if (d.deployBlock === null || d.deployBlock === undefined) notDeployed('deployBlock')
  if (!Number.isSafeInteger(d.deployBlock) || (d.deployBlock as number) < 0) fail('deployBlock', `must be a non-negative integer, got ${JSON.stringify(d.deployBlock)}`)
  const deployment: Deployment = {chainId: d.chainId as number, contracts, deployBlock: d.deployBlock as number, deployer: address('deployer', d.deployer)}
  return network === undefined ? deployment : {...deployment, network}
}

/** Checks a deployment's optional `network` field (also on its own, in a preset not deployed yet). */
export function validateNetworkDescription (value: unknown, source = '<deployment>'): NetworkDescription {
  const fail = invalidField(source)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('network', 'must be an object {name, rpcUrls, explorerUrl?, nativeCurrency?}')
  const n = value as Record<string, unknown>
  if (typeof n.name !== 'string' || n.name === '') fail('network.name', `must be a non-empty string, got ${JSON.stringify(n.name)}`)
  if (!Array.isArray(n.rpcUrls)) fail('network.rpcUrls', `must be a list of JSON-RPC URLs, got ${JSON.stringify(n.rpcUrls)}`)
  const rpcUrls = (n.rpcUrls as unknown[]).map((url, i) => webUrl(`network.rpcUrls[${i}]`, url, ['http:', 'https:'], fail))
  const out: NetworkDescription = {name: n.name as string, rpcUrls}
  if (n.explorerUrl !== undefined) out.explorerUrl = webUrl('network.explorerUrl', n.explorerUrl, ['http:', 'https:'], fail)
  if (n.nativeCurrency !== undefined) {
    if (typeof n.nativeCurrency !== 'string' || n.nativeCurrency === '') fail('network.nativeCurrency', `must be a non-empty string, got ${JSON.stringify(n.nativeCurrency)}`)
    out.nativeCurrency = n.nativeCurrency as string
  }
  return out
}

function invalidField (source: string): (field: string, why: string) => never {
  return (field, why) => {
    throw new DeploymentError({code: 'DEPLOYMENT_INVALID', path: source, field}, `${source}: ${field} ${why}`)
  }
}

function webUrl (field: string, value: unknown, protocols: string[], fail: (field: string, why: string) => never): string {
  if (typeof value === 'string' && URL.canParse(value) && protocols.includes(new URL(value).protocol)) return value
  return fail(field, `must be a ${protocols.map(p => p.slice(0, -1)).join('/')} URL, got ${JSON.stringify(value)}`)
}
