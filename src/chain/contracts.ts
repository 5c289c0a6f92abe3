import {Contract, Interface, type BaseContractMethod, type ContractRunner, type InterfaceAbi} from 'ethers'
import type {Address} from '../protocols/address.js'
import {CONTRACT_NAMES, type ContractName} from './contractNames.js'
import {aclAbi, cognitiveAbi, iamAbi, modelRegistryAbi, nodeStatsAbi} from './generated/index.js'

export type ContractAddresses = {[K in ContractName]: Address}

export const CONTRACT_ABIS = {
  acl: aclAbi,
  iam: iamAbi,
  modelRegistry: modelRegistryAbi,
  nodeStats: nodeStatsAbi,
  cognitive: cognitiveAbi
} as const satisfies {[K in ContractName]: InterfaceAbi}

type FunctionName<Abi extends readonly unknown[]> = Extract<Abi[number], {type: 'function', name: string}>['name']

/**
 * An ethers `Contract` whose methods are known by name (a typo fails to compile, and
 * `noUncheckedIndexedAccess` does not make each call `| undefined`); arguments and results
 * stay ethers' loose types.
 */
export type TypedContract<Abi extends readonly unknown[]> = Contract & {[F in FunctionName<Abi>]: BaseContractMethod}

export interface CortensorContracts {
  acl: TypedContract<typeof aclAbi>
  iam: TypedContract<typeof iamAbi>
  modelRegistry: TypedContract<typeof modelRegistryAbi>
  nodeStats: TypedContract<typeof nodeStatsAbi>
  cognitive: TypedContract<typeof cognitiveAbi>
}

/** Contract instances bound to `runner` (a provider for reads, a wallet for writes). */
export function connectContracts (deployment: {contracts: ContractAddresses}, runner: ContractRunner): CortensorContracts {
  const entries = CONTRACT_NAMES.map((key) => [key, new Contract(deployment.contracts[key], CONTRACT_ABIS[key], runner)] as const)
  // Each entry pairs a key with a Contract built from that key's ABI, which is what TypedContract describes.
  return Object.fromEntries(entries) as unknown as CortensorContracts
}

/**
 * Every custom error of every contract in one interface. A revert may come from a contract
 * other than the one called (Cognitive → NodeStats), so decoding needs all of them. Errors
 * shared by several contracts (`NotAdmin(address)`) have one selector and appear once.
 */
export const cortensorErrorInterface = new Interface(dedupeErrors(Object.values(CONTRACT_ABIS)))

function dedupeErrors (abis: readonly InterfaceAbi[]): string[] {
  const signatures = new Set<string>()
  for (const abi of abis) {
    for (const fragment of new Interface(abi).fragments) {
      if (fragment.type === 'error') signatures.add(fragment.format('full'))
    }
  }
  return [...signatures].sort()
}

export interface DecodedRevert {
  name: string
  args: unknown[]
  /** `NotAllowedByAcl(0xab…, 3)`: for messages and logs. */
  signature: string
}

/** Decodes revert data into the custom error's name and arguments; undefined when unknown. */
export function decodeRevert (data: string | null | undefined, errors: Interface = cortensorErrorInterface): DecodedRevert | undefined {
  if (data === null || data === undefined || data === '0x') return undefined
  let parsed
  try {
    parsed = errors.parseError(data)
  } catch {
    return undefined
  }
  if (parsed === null) return undefined
  const args: unknown[] = [...parsed.args]
  return {name: parsed.name, args, signature: `${parsed.name}(${args.map(String).join(', ')})`}
}
