import type {ContractName} from '../../chain/contractNames.js'
import type {ActorRef} from '../actorSystem.js'

/** A contract event decoded from a receipt or a log query. */
export interface DecodedEvent {
  contract: ContractName
  name: string
  args: Record<string, unknown>
  txHash: string
  blockNumber: number
  logIndex: number
}

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

export type ReadReply =
  | {type: 'Value', value: unknown}
  | {type: 'Failed', code: string, error: string}

export type EventsReply =
  | {type: 'Events', events: DecodedEvent[]}
  | {type: 'Failed', code: string, error: string}

export type ChainMessage =
  /** A state-changing call from this node's wallet; queued, nonce-managed, retried, journaled. */
  | {type: 'Send', label: string, contract: ContractName, method: string, args: unknown[], value?: bigint, replyTo: ActorRef<SendReply>, onBroadcast?: (hash: string) => void}
  | {type: 'Read', contract: ContractName, method: string, args: unknown[], replyTo: ActorRef<ReadReply>}
  /** Events of one contract whose first indexed argument equals `key` (e.g. a task id). */
  | {type: 'QueryEvents', contract: ContractName, key: bigint | string, fromBlock: number, replyTo: ActorRef<EventsReply>}
