import type {ActorRef, ActorSystem} from '../actorSystem.js'
import {ASK_TIMEOUT_MS} from '../askTimeouts.js'
import type {ContractName} from '../../chain/contractNames.js'
import type {ChainMessage, EventsReply, ReadReply, SendReply} from './messages.js'

/**
 * Asks of the chain actor that always resolve: a failed ask (timeout, stopped actor) comes
 * back as the reply union's `Failed`, so callers handle one shape and never lose a reply.
 */
export class ChainClient {
  constructor (private readonly system: ActorSystem, private readonly chain: ActorRef<ChainMessage>) {}

  async send (call: {label: string, contract: ContractName, method: string, args: unknown[], value?: bigint, onBroadcast?: (hash: string) => void}): Promise<SendReply> {
    try {
      return await this.system.ask<ChainMessage, SendReply>(this.chain, replyTo => ({type: 'Send', ...call, replyTo}), ASK_TIMEOUT_MS.chainSend)
    } catch (err) {
      return {type: 'Failed', label: call.label, code: 'ASK_FAILED', error: (err as Error).message}
    }
  }

  async read (contract: ContractName, method: string, args: unknown[]): Promise<ReadReply> {
    try {
      return await this.system.ask<ChainMessage, ReadReply>(this.chain, replyTo => ({type: 'Read', contract, method, args, replyTo}), ASK_TIMEOUT_MS.chainRead)
    } catch (err) {
      return {type: 'Failed', code: 'ASK_FAILED', error: (err as Error).message}
    }
  }

  async events (contract: ContractName, key: bigint | string, fromBlock: number): Promise<EventsReply> {
    try {
      return await this.system.ask<ChainMessage, EventsReply>(this.chain, replyTo => ({type: 'QueryEvents', contract, key, fromBlock, replyTo}), ASK_TIMEOUT_MS.chainRead)
    } catch (err) {
      return {type: 'Failed', code: 'ASK_FAILED', error: (err as Error).message}
    }
  }
}
