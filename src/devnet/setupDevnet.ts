import {privateKeyFromRaw} from '@libp2p/crypto/keys'
import {peerIdFromPrivateKey} from '@libp2p/peer-id'
import {getBytes, type JsonRpcProvider, type Wallet} from 'ethers'
import {join} from 'node:path'
import {createSilentLogger, type Logger} from '../util/logger.js'
import {grantRole, registerModel, registerNode, type ModelSpec} from '../chain/admission.js'
import {connectContracts, type CortensorContracts} from '../chain/contracts.js'
import type {Deployment} from '../chain/deployment.js'
import {deployNetwork} from '../chain/deployNetwork.js'
import {devnetWallet, fundDevnetAccounts, type DevnetRole} from './devnetKeys.js'
import {ROLE_CODE} from '../chain/enums.js'
import type {Role} from '../protocols/messages.js'
import {TxQueue, type TxRetryOptions} from '../chain/txQueue.js'

export interface DevnetAccount {
  wallet: Wallet
  queue: TxQueue
  /** libp2p peer id bytes of the same secp256k1 key (what IAM stores). */
  peerId: Uint8Array
}

export interface SetupDevnetOptions {
  provider: JsonRpcProvider
  oracles?: number
  miners: number
  /** Validator accounts granted the ACL Validator role and registered in IAM (default 0). */
  validators?: number
  /** Registered after admission; its id is returned. None when undefined. */
  model?: ModelSpec
  readyWindowSeconds?: number
  /** Journal per account under this folder (`<role>-<index>.jsonl`). */
  journalDir?: string
  retry?: Partial<TxRetryOptions>
  logger?: Logger
  signal?: AbortSignal
}

export interface Devnet {
  deployment: Deployment
  contracts: CortensorContracts
  admin: DevnetAccount
  oracles: DevnetAccount[]
  miners: DevnetAccount[]
  validators: DevnetAccount[]
  modelId: bigint | undefined
}

/**
 * Everything a fresh anvil needs before nodes start: funds the deterministic devnet keys,
 * deploys and wires the contracts, grants and registers 1..n oracles, n miners and any validators, registers
 * the model. Shared by the devnet command, e2e tests and the gas benchmark.
 */
export async function setupDevnet (opts: SetupDevnetOptions): Promise<Devnet> {
  const {provider, signal} = opts
  const logger = opts.logger ?? createSilentLogger()
  const account = (role: DevnetRole, index: number): DevnetAccount => {
    const wallet = devnetWallet(role, index, provider)
    const queue = new TxQueue({
      wallet,
      provider,
      logger,
      retry: opts.retry,
      journalPath: opts.journalDir === undefined ? undefined : join(opts.journalDir, `${role}-${index}.jsonl`)
    })
    return {wallet, queue, peerId: peerIdFromPrivateKey(privateKeyFromRaw(getBytes(wallet.privateKey))).toMultihash().bytes}
  }
  const admin = account('admin', 0)
  const oracles = Array.from({length: opts.oracles ?? 1}, (_, i) => account('oracle', i))
  const miners = Array.from({length: opts.miners}, (_, i) => account('miner', i))
  const validators = Array.from({length: opts.validators ?? 0}, (_, i) => account('validator', i))
  await fundDevnetAccounts(provider, [admin, ...oracles, ...miners, ...validators].map((a) => a.wallet.address))

  const deployment = await deployNetwork({queue: admin.queue, readyWindowSeconds: opts.readyWindowSeconds, logger, signal})
  const contracts = connectContracts(deployment, provider)
  const admit = async (node: DevnetAccount, role: Role, index: number): Promise<void> => {
    await grantRole(admin.queue, contracts, ROLE_CODE[role], node.wallet.address, {signal})
    await registerNode(node.queue, contracts, node.peerId, role, JSON.stringify({name: `${role}-${index}`}), {signal})
  }
  // Grants come from one admin queue (serialised anyway); registrations from distinct wallets overlap.
  await Promise.all([
    ...oracles.map(async (node, i) => await admit(node, 'oracle', i)),
    ...miners.map(async (node, i) => await admit(node, 'miner', i)),
    ...validators.map(async (node, i) => await admit(node, 'validator', i))
  ])
  const modelId = opts.model === undefined ? undefined : await registerModel(admin.queue, contracts, opts.model, {signal})
  return {deployment, contracts, admin, oracles, miners, validators, modelId}
}
