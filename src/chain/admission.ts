import {getBytes, hexlify, type BytesLike, type TransactionReceipt} from 'ethers'
import type {CortensorContracts} from './contracts.js'
import {toAddress} from '../protocols/address.js'
import type {Role} from '../protocols/messages.js'
import {ROLE_CODE, type AclRole} from './enums.js'
import type {TxQueue} from './txQueue.js'

/**
 * Admission helpers: one wrapper per contract operation used to admit nodes and models. Each
 * takes the contracts (any runner: only `interface` and `target` are used) and the queue of the
 * wallet that must sign (an admin for grants and models, the node itself for registration).
 */

export interface TxOptions {
  signal?: AbortSignal
}

async function call (queue: TxQueue, contracts: CortensorContracts, key: keyof CortensorContracts, fn: string, args: unknown[], opts: TxOptions, value?: bigint): Promise<TransactionReceipt> {
  const contract = contracts[key]
  const to = await contract.getAddress()
  return await queue.send(`${key}.${fn}`, () => ({to, data: contract.interface.encodeFunctionData(fn, args), ...(value !== undefined ? {value} : {})}), opts)
}

export async function grantRole (admin: TxQueue, contracts: CortensorContracts, role: AclRole, account: string, opts: TxOptions = {}): Promise<TransactionReceipt> {
  return await call(admin, contracts, 'acl', 'grantRole', [role, account], opts)
}

export async function revokeRole (admin: TxQueue, contracts: CortensorContracts, role: AclRole, account: string, opts: TxOptions = {}): Promise<TransactionReceipt> {
  return await call(admin, contracts, 'acl', 'revokeRole', [role, account], opts)
}

/** IAM `register`'s arguments: the libp2p peer id's bytes, the role's code, free-form metadata. */
export function registrationArgs (peerId: BytesLike, role: Role, metadata: string): [peerId: string, role: AclRole, metadata: string] {
  return [hexlify(getBytes(peerId)), ROLE_CODE[role], metadata]
}

/** Registers the queue's own address in IAM. */
export async function registerNode (node: TxQueue, contracts: CortensorContracts, peerId: BytesLike, role: Role, metadata: string, opts: TxOptions = {}): Promise<TransactionReceipt> {
  return await call(node, contracts, 'iam', 'register', registrationArgs(peerId, role, metadata), opts)
}

export interface ModelSpec {
  name: string
  /** IPFS CID of the model file. */
  cid: string
  /** 0x-prefixed hex or raw 32 bytes. */
  sha256: BytesLike
  sizeBytes: bigint | number
  quantization: string
}

/** Registers a model and returns its id, read from the `ModelRegistered` event. */
export async function registerModel (admin: TxQueue, contracts: CortensorContracts, model: ModelSpec, opts: TxOptions = {}): Promise<bigint> {
  const receipt = await call(admin, contracts, 'modelRegistry', 'registerModel',
    [model.name, model.cid, hexlify(getBytes(model.sha256)), BigInt(model.sizeBytes), model.quantization], opts)
  const registry = contracts.modelRegistry
  const address = toAddress(await registry.getAddress())
  for (const log of receipt.logs) {
    if (toAddress(log.address) !== address) continue
    const parsed = registry.interface.parseLog(log)
    if (parsed?.name === 'ModelRegistered') return parsed.args.modelId as bigint
  }
  throw new Error(`registerModel tx ${receipt.hash} emitted no ModelRegistered event`)
}
