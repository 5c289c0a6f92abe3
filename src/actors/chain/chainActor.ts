import {toBeHex, zeroPadValue, type JsonRpcProvider, type TransactionReceipt, type Wallet} from 'ethers'
import {abiFunction, toAbiResult} from '../../chain/chainCall.js'
import {ChainWatcher, createLogDecoder, type WatchCursor, type WatchScope} from '../../chain/chainWatcher.js'
import {CONTRACT_ABIS, connectContracts, type CortensorContracts} from '../../chain/contracts.js'
import {queryLogs} from '../../chain/queryLogs.js'
import type {Deployment} from '../../chain/deployment.js'
import {TxError, TxQueue} from '../../chain/txQueue.js'
import {assertNever} from '../../util/assertNever.js'
import {nodeMetrics} from '../../util/metrics.js'
import {sleep} from '../../util/sleep.js'
import type {ActorDefinition, ActorRef, ActorSystem} from '../actorSystem.js'
import type {ChainEventsMessage, ChainMessage, EventsReply, ReadReply, SendReply} from './messages.js'

export interface ChainActorInit {
  system: ActorSystem
  deployment: Deployment
  /** Builds the provider and the wallet: on start and again after a crash. */
  connect: () => {provider: JsonRpcProvider, wallet: Wallet}
  journalPath?: string
  /**
   * First block whose task events the watcher delivers (the journal's checkpoint + 1 on a
   * restart of the node); the deployment block when undefined.
   */
  watchFromBlock?: number
  /** How often the watcher polls for new blocks while busy; the provider's `pollingInterval` when undefined. */
  pollingIntervalMs?: number
}

/** How long a stopping chain actor lets queued sends go out before it aborts them. */
const DRAIN_GRACE_MS = 2_000

/** Internal messages: the watcher's verdict that the RPC is gone (a crash: the provider is rebuilt). */
type Internal = {type: '$WatchFailed', error: Error}

interface ChainState {
  provider: JsonRpcProvider
  queue: TxQueue
  writers: CortensorContracts
  readers: CortensorContracts
  watcher: ChainWatcher
  controller: AbortController
}

/**
 * The only writer of the node's wallet: every state-changing call goes through one TxQueue
 * (serialised, `user` lane before `settlement`, nonce-managed, retried on RPC errors,
 * journaled), and reverts come back with the contract's custom error name. Reads and log
 * queries run beside the queue. It also owns the node's one chain watcher, which delivers the
 * Cognitive task events to every subscriber; after `MAX_FAILED_POLLS` failed polls in a row
 * the actor crashes, so its supervisor rebuilds the provider.
 */
export function chainActor (init: ChainActorInit): ActorDefinition<ChainState, ChainMessage | Internal> {
  const {system, deployment} = init
  const decodeLogs = createLogDecoder(deployment.contracts)
  // Outlive a restart of the actor: the watcher resumes where it stopped, for the same subscribers.
  const cursor: WatchCursor = {next: init.watchFromBlock ?? deployment.deployBlock}
  /** Each subscriber with its scope (undefined: it wants every event). */
  const subscribers = new Map<ActorRef<ChainEventsMessage>, WatchScope | undefined>()
  /** What the watcher fetches: everything while anyone wants everything, else the union of the scopes (one node, one address). */
  const scope = (): WatchScope | undefined => {
    const scopes = [...subscribers.values()]
    if (scopes.length === 0 || scopes.some(s => s == null)) return undefined
    const first = scopes[0]!
    return {assignee: first.assignee, taskIds: function * () { for (const s of scopes) yield * s!.taskIds() }}
  }

  return {
    name: 'chain',
    init: async (ctx) => {
      const {provider, wallet} = init.connect()
      const queue = new TxQueue({wallet, provider, logger: ctx.log, journalPath: init.journalPath})
      const controller = new AbortController()
      // What was in flight when the process last died gets its receipt (or its drop) journaled.
      void queue.recover(controller.signal).catch((err: Error) => { ctx.log.warn({err: err.message}, 'could not recover the transactions of the last run') })
      const watcher = new ChainWatcher({
        provider,
        address: deployment.contracts.cognitive,
        decodeLogs,
        cursor,
        intervalMs: init.pollingIntervalMs ?? provider.pollingInterval,
        active: () => subscribers.size > 0,
        scope,
        deliver: (events, toBlock) => {
          for (const subscriber of subscribers.keys()) system.tell<ChainEventsMessage>(subscriber, {type: 'ChainEvents', events, toBlock})
        },
        onFailed: (error) => { system.tell<Internal>(ctx.self as ActorRef<Internal>, {type: '$WatchFailed', error}) },
        log: ctx.log.child({component: 'chainWatcher'})
      })
      watcher.start()
      ctx.log.info({address: wallet.address, chainId: deployment.chainId, watchFrom: cursor.next}, 'chain connected')
      return {provider, queue, writers: connectContracts(deployment, wallet), readers: connectContracts(deployment, provider), watcher, controller}
    },
    receive: (state, msg, ctx) => {
      switch (msg.type) {
        case 'Send': {
          const {call} = msg
          // A task's own transaction (createTask, precommit, commit, reassign): the task's next
          // events follow within blocks. Not settlement (end, pings): nothing waits on what follows.
          if (msg.lane === 'user') state.watcher.wake()
          const method = state.writers[call.contract].getFunction(call.functionName)
          const overrides = msg.value == null ? {} : {value: msg.value}
          // The label names the task; the metric names the contract method only (a bounded set).
          const counted = {method: `${call.contract}.${call.functionName}`}
          const onBroadcast = (hash: string): void => {
            nodeMetrics.transactions.inc({...counted, status: 'sent'})
            msg.onBroadcast?.(hash)
          }
          state.queue.send(msg.label, async () => await method.populateTransaction(...call.args, overrides),
            {lane: msg.lane, signal: msg.signal == null ? state.controller.signal : AbortSignal.any([state.controller.signal, msg.signal]), onBroadcast}).then(
            (receipt: TransactionReceipt) => {
              nodeMetrics.transactions.inc({...counted, status: 'confirmed'})
              nodeMetrics.gasUsed.inc(counted, Number(receipt.gasUsed))
              system.tell<SendReply>(msg.replyTo, {type: 'Mined', tx: {label: msg.label, hash: receipt.hash, blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed, events: decodeLogs(receipt.logs)}})
            },
            (err: unknown) => {
              // Reverted: the contract refused (SlotsFull, WrongState...); failed: no answer, dropped, aborted.
              nodeMetrics.transactions.inc({...counted, status: err instanceof TxError && err.code === 'TX_REVERTED' ? 'reverted' : 'failed'})
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
          const {call} = msg
          const read = async (): Promise<unknown> => {
            const value: unknown = await state.readers[call.contract].getFunction(call.functionName).staticCall(...call.args)
            return toAbiResult(abiFunction(CONTRACT_ABIS[call.contract], call.functionName), value)
          }
          read().then(
            (value) => { system.tell<ReadReply>(msg.replyTo, {type: 'Value', value}) },
            (err: Error) => { system.tell<ReadReply>(msg.replyTo, {type: 'Failed', code: 'READ_FAILED', error: err.message}) })
          return state
        }
        case 'QueryEvents': {
          const keys = (Array.isArray(msg.key) ? msg.key : [msg.key]).map(key => typeof key === 'bigint' ? zeroPadValue(toBeHex(key), 32) : zeroPadValue(key, 32))
          queryLogs(state.provider, {address: deployment.contracts[msg.contract], topics: [null, keys.length === 1 ? keys[0]! : keys]}, msg.fromBlock).then(
            logs => { system.tell<EventsReply>(msg.replyTo, {type: 'Events', events: decodeLogs(logs)}) },
            (err: Error) => { system.tell<EventsReply>(msg.replyTo, {type: 'Failed', code: 'LOGS_FAILED', error: err.message}) })
          return state
        }
        case 'Subscribe':
          subscribers.set(msg.subscriber, msg.scope)
          return state
        case '$WatchFailed':
          throw msg.error
        default:
          return assertNever(msg, 'chain message')
      }
    },
    dispose: async (state) => {
      state.watcher.stop()
      // Queued sends get a moment to go out; a crash restart (RPC down) must not wait for
      // every one of them to exhaust its retries.
      await Promise.race([state.queue.drained().catch(() => {}), sleep(DRAIN_GRACE_MS)])
      state.controller.abort(new Error('chain actor stopping'))
      state.queue.close()
      state.provider.destroy()
    },
    failMessage: (msg, error) => {
      const failed = {type: 'Failed' as const, code: 'CHAIN_ACTOR_CRASHED', error: error.message}
      switch (msg.type) {
        case 'Send': system.tell<SendReply>(msg.replyTo, {...failed, label: msg.label}); return
        case 'Read': system.tell<ReadReply>(msg.replyTo, failed); return
        case 'QueryEvents': system.tell<EventsReply>(msg.replyTo, failed); return
        case 'Subscribe': case '$WatchFailed': return
        default: assertNever(msg, 'chain message')
      }
    }
  }
}
