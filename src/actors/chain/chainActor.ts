import {Interface, toBeHex, zeroPadValue, type JsonRpcProvider, type Log, type TransactionReceipt, type Wallet} from 'ethers'
import {CONTRACT_NAMES, type ContractName} from '../../chain/contractNames.js'
import {CONTRACT_ABIS, connectContracts, type CortensorContracts} from '../../chain/contracts.js'
import type {Deployment} from '../../chain/deployment.js'
import {TxError, TxQueue} from '../../chain/txQueue.js'
import {assertNever} from '../../util/assertNever.js'
import type {ActorDefinition, ActorSystem} from '../actorSystem.js'
import {toAddress, type Address} from '../../protocols/address.js'
import type {ChainMessage, DecodedEvent, EventsReply, ReadReply, SendReply} from './messages.js'

export interface ChainActorInit {
  system: ActorSystem
  deployment: Deployment
  /** Builds the provider and the wallet: on start and again after a crash. */
  connect: () => {provider: JsonRpcProvider, wallet: Wallet}
  journalPath?: string
}

interface ChainState {
  provider: JsonRpcProvider
  queue: TxQueue
  writers: CortensorContracts
  readers: CortensorContracts
  controller: AbortController
}

const INTERFACES: {[K in ContractName]: Interface} = Object.fromEntries(
  CONTRACT_NAMES.map(key => [key, new Interface(CONTRACT_ABIS[key])])) as {[K in ContractName]: Interface}

/**
 * The only writer of the node's wallet: every state-changing call goes through one TxQueue
 * (serialised, nonce-managed, retried on RPC errors, journaled), and reverts come back with
 * the contract's custom error name. Reads and log queries run beside the queue.
 */
export function chainActor (init: ChainActorInit): ActorDefinition<ChainState, ChainMessage> {
  const {system, deployment} = init
  const byAddress = new Map<Address, ContractName>(CONTRACT_NAMES.map(key => [deployment.contracts[key], key]))

  const decodeLogs = (logs: readonly Log[]): DecodedEvent[] => {
    const events: DecodedEvent[] = []
    for (const log of logs) {
      const contract = byAddress.get(toAddress(log.address))
      if (contract == null) continue
      const parsed = INTERFACES[contract].parseLog({topics: [...log.topics], data: log.data})
      if (parsed == null) continue
      const args: Record<string, unknown> = {}
      parsed.fragment.inputs.forEach((input, i) => { args[input.name] = normalise(parsed.args[i], input.baseType === 'array' ? input.arrayChildren?.type : input.type) })
      events.push({contract, name: parsed.name, args, txHash: log.transactionHash, blockNumber: log.blockNumber, logIndex: log.index})
    }
    return events
  }

  return {
    name: 'chain',
    init: async (ctx) => {
      const {provider, wallet} = init.connect()
      const queue = new TxQueue({wallet, provider, logger: ctx.log, journalPath: init.journalPath})
      ctx.log.info({address: wallet.address, chainId: deployment.chainId}, 'chain connected')
      return {provider, queue, writers: connectContracts(deployment, wallet), readers: connectContracts(deployment, provider), controller: new AbortController()}
    },
    receive: (state, msg, ctx) => {
      switch (msg.type) {
        case 'Send': {
          const contract = state.writers[msg.contract]
          const method = contract.getFunction(msg.method)
          const overrides = msg.value == null ? {} : {value: msg.value}
          state.queue.send(msg.label, async () => await method.populateTransaction(...msg.args, overrides), {signal: state.controller.signal, onBroadcast: msg.onBroadcast}).then(
            (receipt: TransactionReceipt) => {
              system.tell<SendReply>(msg.replyTo, {type: 'Mined', tx: {label: msg.label, hash: receipt.hash, blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed, events: decodeLogs(receipt.logs)}})
            },
            (err: unknown) => {
              if (err instanceof TxError && err.code === 'TX_REVERTED') {
                system.tell<SendReply>(msg.replyTo, {type: 'Reverted', label: msg.label, errorName: err.type.errorName ?? 'unknown', error: err.message})
              } else {
                ctx.log.warn({label: msg.label, err}, 'transaction failed')
                system.tell<SendReply>(msg.replyTo, {type: 'Failed', label: msg.label, code: (err as {code?: string}).code ?? 'TX_FAILED', error: (err as Error).message})
              }
            })
          return state
        }
        case 'Read': {
          const fn = state.readers[msg.contract].getFunction(msg.method)
          fn.staticCall(...msg.args).then(
            (value: unknown) => { system.tell<ReadReply>(msg.replyTo, {type: 'Value', value}) },
            (err: Error) => { system.tell<ReadReply>(msg.replyTo, {type: 'Failed', code: 'READ_FAILED', error: err.message}) })
          return state
        }
        case 'QueryEvents': {
          const key = typeof msg.key === 'bigint' ? zeroPadValue(toBeHex(msg.key), 32) : zeroPadValue(msg.key, 32)
          state.provider.getLogs({address: deployment.contracts[msg.contract], topics: [null, key], fromBlock: msg.fromBlock}).then(
            logs => { system.tell<EventsReply>(msg.replyTo, {type: 'Events', events: decodeLogs(logs)}) },
            (err: Error) => { system.tell<EventsReply>(msg.replyTo, {type: 'Failed', code: 'LOGS_FAILED', error: err.message}) })
          return state
        }
        default:
          return assertNever(msg, 'chain message')
      }
    },
    dispose: async (state) => {
      await state.queue.drained().catch(() => {})
      state.controller.abort(new Error('chain actor stopping'))
      state.provider.destroy()
    },
    failMessage: (msg, error) => {
      const failed = {type: 'Failed' as const, code: 'CHAIN_ACTOR_CRASHED', error: error.message}
      if (msg.type === 'Send') system.tell<SendReply>(msg.replyTo, {...failed, label: msg.label})
      else system.tell(msg.replyTo, failed)
    }
  }
}

/**
 * ethers' Result/BigInt values as plain JSON-able data for records and the API; addresses in
 * their one in-process form (`toAddress`), like everywhere else.
 */
function normalise (value: unknown, type: string | undefined): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (Array.isArray(value)) return value.map(v => normalise(v, type))
  if (type === 'address' && typeof value === 'string') return toAddress(value)
  return value
}
