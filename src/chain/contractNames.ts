/**
 * The network's contracts: the key each has in a deployment file and in code, and its Solidity
 * name. The build script reads this file too, so it must not import the generated bindings.
 */
export const CONTRACTS = {
  acl: 'ACL',
  iam: 'IAM',
  modelRegistry: 'ModelRegistry',
  nodeStats: 'NodeStats',
  cognitive: 'Cognitive'
} as const
export type ContractName = keyof typeof CONTRACTS

/** In deployment order: each contract's constructor takes only those before it. */
export const CONTRACT_NAMES = Object.keys(CONTRACTS) as ContractName[]
