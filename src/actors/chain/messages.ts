import type {ChainRead, ChainWrite} from '../../chain/chainCall.js'
import type {DecodedEvent, WatchScope} from '../../chain/chainWatcher.js'
import type {ContractName} from '../../chain/contractNames.js'
import type {WatchedEvent} from '../../chain/taskEvents.js'
import type {TxLane} from '../../chain/txQueue.js'
import type {ActorRef} from '../actorSystem.js'

export type {DecodedEvent}

export interface TxSummary {
  label: string
  hash: string
  blockNumber: number
  gasUsed: bigint
  events: DecodedEvent[]
}

export type SendReply =
  | {type: 'Mined', tx: TxSummary}
  /** The contract refused: `errorName` is the Solidity custom error (e.g. `SlotsFull`). */
  | {type: 'Reverted', label: string, errorName: string, error: string}
  | {type: 'Failed', label: string, code: string, error: string}

/** A read's result, typed by the call (`ReadResult<C, F>`) when it comes through `ChainClient.read`. */
export type ReadReply<T = unknown> =
  | {type: 'Value', value: T}
  | {type: 'Failed', code: string, error: string}

export type EventsReply =
  | {type: 'Events', events: DecodedEvent[]}
  | {type: 'Failed', code: string, error: string}

/**
 * Task events from the chain watcher, in block order, each exactly once: every block up to
 * and including `toBlock` has been delivered, so `toBlock` is a checkpoint to resume after.
 */
export type ChainEventsMessage = {type: 'ChainEvents', events: WatchedEvent[], toBlock: number}

export type ChainMessage =
  /**
   * A state-changing call from this node's wallet; queued, nonce-managed, retried, journaled.
   * A `user` call (someone waits on it) is submitted before every `settlement` call still queued.
   */
  /** `signal`: the sender stopped waiting; a send not yet broadcast is dropped (TX_ABORTED) rather than left to pile up under retries. */
  | {type: 'Send', label: string, call: ChainWrite, value?: bigint, lane: TxLane, replyTo: ActorRef<SendReply>, onBroadcast?: (hash: string) => void, signal?: AbortSignal}
  /** A view/pure call; the reply's value has the shape `ReadResult` gives the call. */
  | {type: 'Read', call: ChainRead, replyTo: ActorRef<ReadReply>}
  /** Events of one contract whose first indexed argument equals `key` (e.g. a task id). */
  /** Events whose first indexed topic is `key` (or any of the keys: one call for several tasks), from `fromBlock` on. */
  | {type: 'QueryEvents', contract: ContractName, key: bigint | string | readonly bigint[], fromBlock: number, replyTo: ActorRef<EventsReply>}
  /**
   * Receive task events from the watcher's position on (subscribing twice is one subscription):
   * every one, or with `scope` those of the subscriber's tasks and of assignments to it (while
   * every subscriber has a scope, the watcher fetches only those).
   */
  | {type: 'Subscribe', subscriber: ActorRef<ChainEventsMessage>, scope?: WatchScope}
