import {mkdir, readFile, rename, writeFile} from 'node:fs/promises'
import {dirname} from 'node:path'
import {isAddress} from 'ethers'
import {toAddress, type Address} from '../protocols/address.js'
import {CortensorError} from '../util/cortensorError.js'
import {CONTRACT_NAMES} from './contractNames.js'
import type {ContractAddresses} from './contracts.js'

/** Where a network's contracts live: written by `deployNetwork`, read by every node. */
export interface Deployment {
  chainId: number
  contracts: ContractAddresses
  /** Block of the first deployment transaction: where event scans start. */
  deployBlock: number
  deployer: Address
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
  let value: unknown
  try {
    value = JSON.parse(await readFile(path, 'utf8'))
  } catch (cause) {
    throw new DeploymentError({code: 'DEPLOYMENT_UNREADABLE', path}, `cannot read deployment file ${path}: ${(cause as Error).message}`, {cause})
  }
  return validateDeployment(value, path)
}

/** Checks the shape of a parsed deployment; addresses come back normalised (`toAddress`). */
export function validateDeployment (value: unknown, source = '<deployment>'): Deployment {
  const fail = (field: string, why: string): never => {
    throw new DeploymentError({code: 'DEPLOYMENT_INVALID', path: source, field}, `${source}: ${field} ${why}`)
  }
  const address = (field: string, v: unknown): Address => {
    // ethers' check: a mixed-case address must carry a valid EIP-55 checksum (a typo shows).
    if (typeof v !== 'string' || !isAddress(v)) return fail(field, `must be a 0x-prefixed 20-byte address, got ${JSON.stringify(v)}`)
    return toAddress(v)
  }
  if (typeof value !== 'object' || value === null) return fail('(root)', 'must be a JSON object')
  const d = value as Record<string, unknown>
  if (!Number.isSafeInteger(d.chainId) || (d.chainId as number) <= 0) fail('chainId', `must be a positive integer, got ${JSON.stringify(d.chainId)}`)
  if (!Number.isSafeInteger(d.deployBlock) || (d.deployBlock as number) < 0) fail('deployBlock', `must be a non-negative integer, got ${JSON.stringify(d.deployBlock)}`)
  if (typeof d.contracts !== 'object' || d.contracts === null) fail('contracts', 'must be an object of addresses')
  const raw = d.contracts as Record<string, unknown>
  const contracts = Object.fromEntries(CONTRACT_NAMES.map((key) => [key, address(`contracts.${key}`, raw[key])])) as ContractAddresses
  return {chainId: d.chainId as number, contracts, deployBlock: d.deployBlock as number, deployer: address('deployer', d.deployer)}
}
