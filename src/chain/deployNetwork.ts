import {ContractFactory, type InterfaceAbi, type TransactionReceipt} from 'ethers'
import {toAddress, type Address} from '../protocols/address.js'
import {createSilentLogger, type Logger} from '../util/logger.js'
import type {ContractName} from './contractNames.js'
import {CONTRACT_ABIS, type ContractAddresses} from './contracts.js'
import type {Deployment} from './deployment.js'
import {aclBytecode, cognitiveBytecode, iamBytecode, modelRegistryBytecode, nodeStatsBytecode} from './generated/index.js'
import type {TxQueue} from './txQueue.js'

export {readDeployment, validateDeployment, writeDeployment, type Deployment} from './deployment.js'

export interface DeployNetworkOptions {
  /** The deployer's queue; the deployer becomes the ACL's first admin. */
  queue: TxQueue
  /** NodeStats: seconds a ready ping stays valid (0 = forever). */
  readyWindowSeconds?: number
  logger?: Logger
  signal?: AbortSignal
}

/** Ten minutes: several missed slow-rate pings before a silent miner stops counting as ready. */
export const DEFAULT_READY_WINDOW_SECONDS = 600

const BYTECODES: {[K in ContractName]: string} = {
  acl: aclBytecode,
  iam: iamBytecode,
  modelRegistry: modelRegistryBytecode,
  nodeStats: nodeStatsBytecode,
  cognitive: cognitiveBytecode
}

/**
 * Deploys and wires the five contracts: IAM, ModelRegistry and NodeStats read roles from the
 * ACL, Cognitive reads IAM, NodeStats and ModelRegistry, and NodeStats accepts counter updates
 * from Cognitive only. The one deployment path of tests, benchmarks and the devnet.
 */
export async function deployNetwork (opts: DeployNetworkOptions): Promise<Deployment> {
  const {queue, signal} = opts
  const log = (opts.logger ?? createSilentLogger()).child({component: 'deployNetwork'})
  const deployed: Partial<ContractAddresses> = {}
  let deployBlock: number | undefined

  const deploy = async (key: ContractName, args: unknown[]): Promise<Address> => {
    const factory = new ContractFactory(CONTRACT_ABIS[key] as InterfaceAbi, BYTECODES[key])
    const receipt = await queue.send(`deploy ${key}`, async () => await factory.getDeployTransaction(...args), {signal})
    deployBlock ??= receipt.blockNumber
    const address = toAddress(contractAddress(receipt))
    deployed[key] = address
    log.debug({contract: key, address, gasUsed: receipt.gasUsed}, 'deployed')
    return address
  }

  const acl = await deploy('acl', [])
  const iam = await deploy('iam', [acl])
  const modelRegistry = await deploy('modelRegistry', [acl])
  const nodeStats = await deploy('nodeStats', [acl, iam, opts.readyWindowSeconds ?? DEFAULT_READY_WINDOW_SECONDS])
  const cognitive = await deploy('cognitive', [iam, nodeStats, modelRegistry])
  const stats = new ContractFactory(CONTRACT_ABIS.nodeStats as InterfaceAbi, BYTECODES.nodeStats).interface
  await queue.send('wire nodeStats.setCognitive', () => ({to: nodeStats, data: stats.encodeFunctionData('setCognitive', [cognitive])}), {signal})

  const network = await queue.chainId()
  const deployment: Deployment = {
    chainId: network,
    contracts: {acl, iam, modelRegistry, nodeStats, cognitive},
    deployBlock: deployBlock!,
    deployer: queue.address
  }
  log.info({...deployment.contracts, chainId: network}, 'network contracts deployed')
  return deployment
}

function contractAddress (receipt: TransactionReceipt): string {
  if (receipt.contractAddress === null) throw new Error(`deployment tx ${receipt.hash} created no contract`)
  return receipt.contractAddress
}
