import type {ActorRef, ActorSystem} from '../actorSystem.js'
import {ASK_TIMEOUT_MS} from '../askTimeouts.js'
import type {ChainRead, ChainWrite, ReadFunctionName, ReadResult} from '../../chain/chainCall.js'
import type {WatchScope} from '../../chain/chainWatcher.js'
import type {ContractName} from '../../chain/contractNames.js'
import type {TxLane} from '../../chain/txQueue.js'
import type {ChainEventsMessage, ChainMessage, EventsReply, ReadReply, SendReply} from './messages.js'

const SEND_ABORT_MARGIN_MS = 2_000

/** One state-changing call as `ChainClient.send` takes it. */
export interface ChainSend {
  /** Names the transaction in logs and the tx journal (`ping`, `createTask 12`). */
  label: string
  call: ChainWrite
  /** Wei sent along (a payable function). */
  value?: bigint
  lane: TxLane
  onBroadcast?: (hash: string) => void
}

/**
 * Asks of the chain actor that always resolve: a failed ask (timeout, stopped actor) comes
 * back as the reply union's `Failed`, so callers handle one shape and never lose a reply.
 */
export class ChainClient {
  constructor (private readonly system: ActorSystem, private readonly chain: ActorRef<ChainMessage>) {}

  async send (send: ChainSend): Promise<SendReply> {
    try {
      // Given up a little before the ask, so the chain actor still answers (TX_ABORTED) and the
      // caller's retry does not find the first copy still queued.
      const signal = AbortSignal.timeout(ASK_TIMEOUT_MS.chainSend - SEND_ABORT_MARGIN_MS)
      return await this.system.ask<ChainMessage, SendReply>(this.chain, replyTo => ({type: 'Send', ...send, replyTo, signal}), ASK_TIMEOUT_MS.chainSend)
    } catch (err) {
      return {type: 'Failed', label: send.label, code: 'ASK_FAILED', error: (err as Error).message}
    }
  }

  /** A view/pure call; the value comes back in the type the ABI gives it, no cast needed. */
  async read<C extends ContractName, F extends ReadFunctionName<C>> (call: ChainRead<C, F>): Promise<ReadReply<ReadResult<C, F>>> {
    try {
      // `ChainRead<C, F>` is one member of the `ChainRead` union; the chain actor shapes the
      // value as `ReadResult` of the very call it was given (`toAbiResult`).
      return await this.system.ask<ChainMessage, ReadReply<ReadResult<C, F>>>(this.chain,
        replyTo => ({type: 'Read', call: call as unknown as ChainRead, replyTo: replyTo as ActorRef<ReadReply>}), ASK_TIMEOUT_MS.chainRead)
    } catch (err) {
      return {type: 'Failed', code: 'ASK_FAILED', error: (err as Error).message}
    }
  }

  async events (contract: ContractName, key: bigint | string | readonly bigint[], fromBlock: number): Promise<EventsReply> {
    try {
      return await this.system.ask<ChainMessage, EventsReply>(this.chain, replyTo => ({type: 'QueryEvents', contract, key, fromBlock, replyTo}), ASK_TIMEOUT_MS.chainRead)
    } catch (err) {
      return {type: 'Failed', code: 'ASK_FAILED', error: (err as Error).message}
    }
  }

  /** Task events from the chain watcher, delivered to `subscriber` as `ChainEvents` messages: all, or those of `scope`. */
  subscribe (subscriber: ActorRef<ChainEventsMessage>, scope?: WatchScope): void {
    this.system.tell<ChainMessage>(this.chain, {type: 'Subscribe', subscriber, scope})
  }
}
