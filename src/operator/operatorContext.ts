import {Wallet, type JsonRpcProvider, type TransactionReceipt} from 'ethers'
import {rpcUrlForLogs} from '../chain/accessCache.js'
import {connectContracts, type CortensorContracts} from '../chain/contracts.js'
import {readDeployment, type Deployment} from '../chain/deployment.js'
import {AclRole} from '../chain/enums.js'
import {fetchChainId} from '../chain/fetchChainId.js'
import {NativeSigningKey} from '../chain/nativeSigningKey.js'
import {createProvider} from '../chain/provider.js'
import {TxQueue, type PopulateTx, type SendOptions} from '../chain/txQueue.js'
import type {Address} from '../protocols/address.js'
import {loadKeystore} from '../runtime/keys.js'
import {OperatorError} from './operatorError.js'

/**
 * What every operator command shares: reaching the chain (with one clear line when it cannot),
 * checking the deployment file against it, and the keystore's wallet as a `TxQueue` that reports
 * each transaction it sends.
 */

/** Where a command writes: results on `out`, progress on `err`. */
export interface OperatorIo {
  out: NodeJS.WritableStream
  err: NodeJS.WritableStream
  signal?: AbortSignal
}

/** The keystore that signs, and its password (already read by the CLI). */
export interface OperatorSigner {
  keystore: string
  password: string
}

/** Commands on a deployed network find it from its deployment file. */
export interface NetworkTarget {
  /** The deployment file's first `network.rpcUrls` entry when undefined. */
  rpcUrl?: string
  deploymentFile: string
}

export interface OperatorChain {
  /** As given; print `endpoint` instead (no credentials or API-key paths). */
  rpcUrl: string
  endpoint: string
  provider: JsonRpcProvider
  chainId: number
}

export interface OperatorNetwork extends OperatorChain {
  deployment: Deployment
  deploymentFile: string
  /** Bound to the provider: reads only. Writes go through a queue (`operatorQueue`). */
  contracts: CortensorContracts
}

/** An RPC endpoint that has not answered `eth_chainId` in this long is reported unreachable. */
export const RPC_PROBE_TIMEOUT_MS = 10_000

/** Asks the endpoint for its chain id, bounded in time (ethers alone may retry for minutes). */
export async function connectChain (rpcUrl: string, signal?: AbortSignal): Promise<OperatorChain> {
  const endpoint = rpcUrlForLogs(rpcUrl)
  let chainId: number
  try {
    chainId = await fetchChainId(rpcUrl, AbortSignal.any([AbortSignal.timeout(RPC_PROBE_TIMEOUT_MS), ...(signal == null ? [] : [signal])]))
  } catch (err) {
    signal?.throwIfAborted()
    const why = (err as Error).name === 'TimeoutError' ? `no answer within ${RPC_PROBE_TIMEOUT_MS / 1000} s` : causeMessage(err)
    throw new OperatorError({code: 'RPC_UNREACHABLE', detail: endpoint}, `cannot reach the chain RPC at ${endpoint}: ${why}`)
  }
  return {rpcUrl, endpoint, provider: createProvider(rpcUrl, chainId), chainId}
}

/**
 * Reads the deployment file and checks it against the chain: same chain id, contract code at
 * the ACL's address. `rpcUrl` defaults to the file's first `network.rpcUrls` entry.
 */
export async function openNetwork (opts: NetworkTarget & {signal?: AbortSignal}): Promise<OperatorNetwork> {
  const deployment = await readDeployment(opts.deploymentFile)
  const rpcUrl = opts.rpcUrl ?? deployment.network?.rpcUrls[0]
  if (rpcUrl === undefined) throw new OperatorError({code: 'RPC_UNREACHABLE'}, `no chain RPC: pass --rpc URL (or list network.rpcUrls in ${opts.deploymentFile})`)
  const chain = await connectChain(rpcUrl, opts.signal)
  try {
    if (chain.chainId !== deployment.chainId) {
      throw new OperatorError({code: 'CHAIN_MISMATCH'}, `wrong chain: ${chain.endpoint} serves chain id ${chain.chainId}, but ${opts.deploymentFile} is for chain id ${deployment.chainId}`)
    }
    if (await chain.provider.getCode(deployment.contracts.acl) === '0x') {
      throw new OperatorError({code: 'CONTRACTS_MISSING'},
        `no contract at acl ${deployment.contracts.acl} on chain ${chain.chainId} at ${chain.endpoint}: wrong --rpc, or the chain was restarted without its state`)
    }
  } catch (err) {
    chain.provider.destroy()
    throw err
  }
  return {...chain, deployment, deploymentFile: opts.deploymentFile, contracts: connectContracts(deployment, chain.provider)}
}

/**
 * The keystore's wallet as the single writer of its account. Each transaction is reported:
 * its hash on `err` once broadcast (a slow chain shows progress), hash and block on `out` once mined.
 */
export async function operatorQueue (chain: OperatorChain, signer: OperatorSigner, io: OperatorIo): Promise<TxQueue> {
  // loadKeystore's errors name the file and never carry the key or the password.
  const wallet = new Wallet(new NativeSigningKey((await loadKeystore(signer.keystore, signer.password)).privateKey))
  return new ReportingTxQueue(wallet, chain.provider, io)
}

class ReportingTxQueue extends TxQueue {
  constructor (wallet: Wallet, provider: JsonRpcProvider, private readonly io: OperatorIo) {
    super({wallet, provider})
  }

  override async send (label: string, populate: PopulateTx, opts: SendOptions = {}): Promise<TransactionReceipt> {
    const receipt = await super.send(label, populate, {
      ...opts,
      signal: opts.signal ?? this.io.signal,
      onBroadcast: (hash) => {
        this.io.err.write(`${label}: sent ${hash}, waiting for it to be mined\n`)
        opts.onBroadcast?.(hash)
      }
    })
    this.io.out.write(`${label.padEnd(28)} tx ${receipt.hash} block ${receipt.blockNumber}\n`)
    return receipt
  }
}

/** Admin-only commands fail early, before any transaction, when the keystore's account is no ACL admin. */
export async function requireAdmin (network: OperatorNetwork, account: Address): Promise<void> {
  if (await network.contracts.acl.hasRole(AclRole.Admin, account) !== true) {
    throw new OperatorError({code: 'NOT_ADMIN', detail: account},
      `${account} is not an ACL admin of the network in ${network.deploymentFile} (its deployer is ${network.deployment.deployer}): use the admin's keystore`)
  }
}

/** Transactions need gas: say so before the first one rather than let it fail on the node. */
export async function requireFunds (chain: OperatorChain, account: Address): Promise<void> {
  const balance = await chain.provider.getBalance(account)
  if (balance === 0n) {
    throw new OperatorError({code: 'NO_FUNDS', detail: account},
      `${account} has no funds on chain ${chain.chainId} to pay for gas (a private chain: cortensord chain --fund ${account})`)
  }
}

function causeMessage (err: unknown): string {
  const cause = (err as Error).cause
  return cause instanceof Error ? (cause as NodeJS.ErrnoException).code ?? cause.message : (err as Error).message
}
