import type {Address} from '../../protocols/address.js'
import type {OracleHeartbeat, Task} from '../../protocols/messages.js'
import type {EarningFacts, LedgerStatus, OracleHeard, VerdictOnMe} from '../../operator/earningReport.js'
import type {ActorRef} from '../actorSystem.js'
import type {ChainEventsMessage} from '../chain/messages.js'

/** What the earnings actor knows: the chain's side of "why am I (not) earning?". */
export interface EarningsStatus {
  address: Address
  aclGranted?: boolean
  chain: EarningFacts['chain']
  /** Miners only. */
  ledger?: LedgerStatus
  /** The last heartbeat of each oracle heard (miners and validators). */
  oracles: OracleHeard[]
  /** Oracles' recent negative verdicts on this node's outputs, newest first. */
  verdicts: VerdictOnMe[]
}

export type EarningsMessage =
  /** A task this miner took on (assigned, or competed for): follow it to its end. */
  | {type: 'TaskSeen', task: Task}
  /** A validated oracle heartbeat: does it hear this node, what did it say of its outputs? */
  | {type: 'OracleHeard', heartbeat: OracleHeartbeat}
  /** Someone with a token reads the status: read the wallet and grant again if the last read is old (a scrape does not: it is open). */
  | {type: 'Refresh'}
  | {type: 'GetStatus', replyTo: ActorRef<EarningsStatus>}
  /** This miner's tasks' chain events (the actor subscribes at init when it keeps a ledger). */
  | ChainEventsMessage
