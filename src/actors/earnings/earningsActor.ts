import type {Address} from '../../protocols/address.js'
import type {Role} from '../../protocols/messages.js'
import {ROLE_CODE} from '../../chain/enums.js'
import {failureForLogs} from '../../chain/provider.js'
import type {OracleHeard, VerdictOnMe} from '../../operator/earningReport.js'
import {assertNever} from '../../util/assertNever.js'
import type {ActorDefinition, ActorRef, ActorSystem} from '../actorSystem.js'
import {ChainClient} from '../chain/chainClient.js'
import type {ChainEventsMessage, ChainMessage} from '../chain/messages.js'
import {emptyLedger, entryOf, follow, ledgerStatus, needsDetail, onTaskEvent, record, type Closing, type ClosingDetail, type LedgerState} from './earningsLedger.js'
import type {EarningsMessage, EarningsStatus} from './messages.js'

/** Verdicts on this node kept from oracles' heartbeats (they repeat each verdict for a while). */
export const VERDICTS_KEPT = 32
/** Oracles remembered (the last heartbeat of each). */
const ORACLES_KEPT = 64

export interface EarningsActorInit {
  system: ActorSystem
  chain: ActorRef<ChainMessage>
  address: Address
  role: Role
  /** Miners: follow their tasks on chain and keep the ledger. */
  ledger: boolean
  /** The wallet's balance and the chain's current max fee per gas, from the node's provider. */
  readWallet: () => Promise<{balanceWei: bigint, maxFeePerGasWei: bigint}>
  /** How often the wallet, ACL grant and owed payouts are read while nobody asks (four RPC calls each time). */
  probeIntervalMs: number
  /** A `Refresh` (someone reads the status) starts a read when the last is older than this; the next status shows it. */
  freshMs: number
  /** Where a closed task's own events are looked up from (the block the node started watching at). */
  fromBlock: number
}

type Internal =
  | {type: '$ProbeTick'}
  | {type: '$Probed', at: number, wallet?: {balanceWei: bigint, maxFeePerGasWei: bigint}, aclGranted?: boolean, owedWei?: bigint, error?: string}
  | {type: '$Closed', closing: Closing, at: number, detail?: ClosingDetail}

interface EarningsState {
  timer?: NodeJS.Timeout
  /** When the last read started; undefined before the first. */
  probedAt?: number
  probing: boolean
}

/**
 * The chain's side of "why am I (not) earning?": reads the wallet, the ACL grant and the payouts
 * owed at a slow pace (and when someone looks); for a miner, follows each task it took on (one it
 * competed for, an assignment) to its TaskEnded or TaskExpired and books the outcome: won
 * (with the payout), lost (to whom), expired, rejected by the oracle, or disagreed. It also keeps
 * what oracles' heartbeats say: whether they hear this node, and their verdicts on its outputs.
 */
export function earningsActor (init: EarningsActorInit): ActorDefinition<EarningsState, EarningsMessage | Internal> {
  const {system, address} = init
  const chain = new ChainClient(system, init.chain)
  // Outside the state: the ledger and what oracles said outlive a crash-restart of this actor.
  const ledger: LedgerState = emptyLedger(address)
  const status: Omit<EarningsStatus, 'ledger' | 'oracles' | 'verdicts'> = {address, chain: {}}
  const oracles = new Map<Address, OracleHeard>()
  const verdicts: VerdictOnMe[] = []

  const probe = async (): Promise<Internal> => {
    const at = Date.now()
    try {
      const [wallet, acl, owed] = await Promise.all([
        init.readWallet(),
        chain.read({contract: 'acl', functionName: 'hasRole', args: [ROLE_CODE[init.role], address]}),
        chain.read({contract: 'cognitive', functionName: 'owed', args: [address]})
      ])
      return {
        type: '$Probed', at, wallet,
        aclGranted: acl.type === 'Value' ? acl.value : undefined,
        owedWei: owed.type === 'Value' ? owed.value : undefined,
        error: acl.type === 'Failed' ? failureForLogs(acl.error) : owed.type === 'Failed' ? failureForLogs(owed.error) : undefined
      }
    } catch (err) {
      // Shown on the status page and the dashboard: no RPC URL path (an API key rides in it).
      return {type: '$Probed', at, error: failureForLogs(err)}
    }
  }

  /** A closing's entry, once the task's own events (escrow, OutputRejected) are read where they matter. */
  const close = async (closing: Closing): Promise<Internal> => {
    const at = Date.now()
    if (!needsDetail(closing, address)) return {type: '$Closed', closing, at}
    const reply = await chain.events('cognitive', BigInt(closing.task.taskId), init.fromBlock)
    if (reply.type === 'Failed') return {type: '$Closed', closing, at}
    const created = reply.events.find(e => e.name === 'TaskCreated')
    return {
      type: '$Closed', closing, at,
      detail: {
        escrowWei: created == null ? undefined : BigInt(created.args.escrow as string),
        rejected: reply.events.some(e => e.name === 'OutputRejected' && e.args.miner === address)
      }
    }
  }

  /** One read at a time: a slow RPC does not pile reads up. */
  const startProbe = (state: EarningsState, self: ActorRef<Internal>): EarningsState => {
    if (state.probing) return state
    void probe().then(probed => { system.tell(self, probed) })
    return {...state, probing: true, probedAt: Date.now()}
  }

  return {
    name: 'earnings',
    init: async (ctx) => {
      const self = ctx.self as ActorRef<EarningsMessage | Internal>
      if (init.ledger) chain.subscribe(ctx.self as ActorRef<ChainEventsMessage>, {assignee: address, taskIds: () => ledger.followed.keys()})
      const tick = (): void => { system.tell(self, {type: '$ProbeTick'}) }
      tick()
      return {timer: setInterval(tick, init.probeIntervalMs), probing: false}
    },
    receive: (state, msg, ctx) => {
      const self = ctx.self as ActorRef<Internal>
      switch (msg.type) {
        case 'TaskSeen': {
          const {task} = msg
          if (init.ledger && (task.mode === 'competing' || task.assignees.includes(address))) {
            follow(ledger, task.taskId, {mode: task.mode, ...(task.assignees.includes(address) ? {assigned: true} : {})})
          }
          return state
        }
        case 'OracleHeard': {
          const hb = msg.heartbeat
          oracles.delete(hb.address)
          oracles.set(hb.address, {oracle: hb.address, at: Date.now(), hearsMe: hb.heard.includes(address)})
          if (oracles.size > ORACLES_KEPT) oracles.delete(oracles.keys().next().value!)
          for (const v of hb.verdicts) {
            if (v.miner !== address || verdicts.some(known => known.taskId === v.taskId && known.oracle === hb.address)) continue
            verdicts.unshift({oracle: hb.address, taskId: v.taskId, verdict: v.verdict, reason: v.reason})
          }
          verdicts.length = Math.min(verdicts.length, VERDICTS_KEPT)
          return state
        }
        case 'ChainEvents':
          for (const {event} of msg.events) {
            const closing = onTaskEvent(ledger, event)
            if (closing != null) void close(closing).then(closed => { system.tell(self, closed) })
          }
          return state
        case '$Closed': {
          const entry = entryOf(msg.closing, address, msg.at, msg.detail)
          if (entry != null) {
            record(ledger, entry)
            ctx.log.info({taskId: entry.taskId, outcome: entry.outcome, payoutWei: entry.payoutWei, reason: entry.reason}, 'task closed')
          }
          return state
        }
        case '$ProbeTick':
          return startProbe(state, self)
        case '$Probed':
          state = {...state, probing: false}
          if (msg.wallet != null) {
            status.chain = {...status.chain, lastOkAt: msg.at, balanceWei: msg.wallet.balanceWei, maxFeePerGasWei: msg.wallet.maxFeePerGasWei}
          }
          if (msg.aclGranted != null) status.aclGranted = msg.aclGranted
          if (msg.owedWei != null) status.chain.owedWei = msg.owedWei
          status.chain.lastError = msg.error
          return state
        case 'Refresh':
          return state.probedAt == null || Date.now() - state.probedAt > init.freshMs ? startProbe(state, self) : state
        case 'GetStatus':
          system.tell(msg.replyTo, {
            ...status,
            chain: {...status.chain},
            ...(init.ledger ? {ledger: ledgerStatus(ledger)} : {}),
            oracles: [...oracles.values()],
            verdicts: verdicts.map(v => ({...v}))
          })
          return state
        default:
          return assertNever(msg, 'earnings message')
      }
    },
    dispose: (state) => {
      if (state.timer != null) clearInterval(state.timer)
    }
  }
}
