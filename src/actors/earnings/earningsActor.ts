import type {Address} from '../../protocols/address.js'
import type {Role} from '../../protocols/messages.js'
import {ROLE_CODE} from '../../chain/enums.js'
import {failureForLogs} from '../../chain/provider.js'
import {toTaskEvent, type TaskEvent} from '../../chain/taskEvents.js'
import type {TaskJournal} from '../../journal/taskJournal.js'
import {verdictOn, type OracleHeard, type VerdictOnMe} from '../../operator/earningReport.js'
import {assertNever} from '../../util/assertNever.js'
import type {Logger} from '../../util/logger.js'
import type {ActorDefinition, ActorRef, ActorSystem} from '../actorSystem.js'
import {ChainClient} from '../chain/chainClient.js'
import type {ChainEventsMessage, ChainMessage} from '../chain/messages.js'
import {emptyLedger, entryOf, follow, LEDGER_RECENT, ledgerStatus, ledgerTotals, needsDetail, onTaskEvent, record, restoreLedger, type Closing, type ClosingDetail, type LedgerState} from './earningsLedger.js'
import type {EarningsMessage, EarningsStatus} from './messages.js'

/** Verdicts on this node kept from oracles' heartbeats (they repeat each verdict for a while). */
export const VERDICTS_KEPT = 32
/** Oracles remembered (the last heartbeat of each). */
const ORACLES_KEPT = 64

/** Where a miner's ledger is kept across restarts: the node's journal. */
export type LedgerStore = Pick<TaskJournal, 'ledger' | 'setLedgerTotals' | 'resetLedger' | 'followLedgerTask' | 'closeLedgerTask'>

export interface EarningsActorInit {
  system: ActorSystem
  chain: ActorRef<ChainMessage>
  address: Address
  role: Role
  /** Miners: follow their tasks on chain and keep the ledger, here. */
  ledgerStore?: LedgerStore
  /** The wallet's balance and the chain's current max fee per gas, from the node's provider. */
  readWallet: () => Promise<{balanceWei: bigint, maxFeePerGasWei: bigint}>
  /** How often the wallet, ACL grant and owed payouts are read while nobody asks (four RPC calls each time). */
  probeIntervalMs: number
  /** A `Refresh` (someone reads the status) starts a read when the last is older than this; the next status shows it. */
  freshMs: number
  /** The block the node's chain watch started at: a task newly followed has its own events looked up from there. */
  fromBlock: number
}

type Internal =
  | {type: '$ProbeTick'}
  | {type: '$Probed', at: number, wallet?: {balanceWei: bigint, maxFeePerGasWei: bigint}, aclGranted?: boolean, owedWei?: bigint, error?: string}
  | {type: '$Closed', closing: Closing, at: number, detail?: ClosingDetail}
  /** A task followed before a restart, with its chain events so far (the node was not watching for some). */
  | {type: '$CaughtUp', taskId: string, events: TaskEvent[]}
  | {type: '$CatchUpFailed', taskId: string, error: string}

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
 * (with the payout), lost (to whom), expired, rejected by the oracle, or disagreed. The ledger
 * lives in the node's journal, written as it changes: a node killed and started again keeps its
 * totals, and looks up the end of each task it was following (it may have come while it was down).
 * It also keeps what oracles' heartbeats say: whether they hear this node, and their verdicts on
 * its outputs.
 */
export function earningsActor (init: EarningsActorInit): ActorDefinition<EarningsState, EarningsMessage | Internal> {
  const {system, address, ledgerStore: store} = init
  const chain = new ChainClient(system, init.chain)
  // Outside the state: the ledger and what oracles said outlive a crash-restart of this actor.
  // The ledger is read from the journal once, at the first init.
  let ledger: LedgerState | undefined
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
    const reply = await chain.events('cognitive', BigInt(closing.task.taskId), closing.task.fromBlock)
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

  /**
   * The ledger this data folder kept (a new one, since now, the first time). One the journal
   * holds in a form this build cannot read is set aside for a new one: the ledger is a view, and
   * the node's work must not stop over it.
   */
  const openLedger = (store: LedgerStore, log: Logger): LedgerState => {
    const now = Date.now()
    try {
      const stored = store.ledger(LEDGER_RECENT)
      const restored = restoreLedger(address, stored, init.fromBlock, now)
      if (stored.totals == null) store.setLedgerTotals(ledgerTotals(restored))
      else log.info({since: new Date(restored.since).toISOString(), ...restored.totals, earnedWei: restored.earnedWei.toString(), followed: restored.followed.size}, 'earnings ledger restored')
      return restored
    } catch (err) {
      log.warn({err}, 'the earnings ledger in the journal is unreadable; starting a new one')
      const fresh = emptyLedger(address, init.fromBlock, now)
      store.resetLedger(ledgerTotals(fresh))
      return fresh
    }
  }

  /** A task followed before a restart: its events so far (some came while the node was down). */
  const catchUp = async (taskId: string, fromBlock: number): Promise<Internal> => {
    const reply = await chain.events('cognitive', BigInt(taskId), fromBlock)
    if (reply.type === 'Failed') return {type: '$CatchUpFailed', taskId, error: reply.error}
    try {
      return {type: '$CaughtUp', taskId, events: reply.events.map(toTaskEvent).filter(e => e != null)}
    } catch (err) {
      // A log the decoder cannot read (a garbled answer): tried again, as a failed query is.
      return {type: '$CatchUpFailed', taskId, error: (err as Error).message}
    }
  }
  /** Followed tasks whose catch-up is still to start (again at each probe tick while the chain fails). */
  const behind = new Set<string>()
  const startCatchUps = (self: ActorRef<Internal>): void => {
    for (const taskId of behind) {
      behind.delete(taskId)
      const task = ledger?.followed.get(taskId)
      if (task != null) void catchUp(taskId, task.fromBlock).then(caught => { system.tell(self, caught) })
    }
  }

  /**
   * Task events through the ledger: a close goes on to `close` (its entry is booked on
   * `$Closed`), and each task still followed is written to the journal as it now stands.
   */
  const applyEvents = (events: Iterable<TaskEvent>, self: ActorRef<Internal>): void => {
    if (ledger == null || store == null) return
    const touched = new Set<string>()
    for (const event of events) {
      const closing = onTaskEvent(ledger, event)
      if (closing != null) void close(closing).then(closed => { system.tell(self, closed) })
      else touched.add(event.taskId)
    }
    for (const taskId of touched) {
      const task = ledger.followed.get(taskId)
      if (task != null) store.followLedgerTask(taskId, task)
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
      if (store != null) {
        if (ledger == null) {
          ledger = openLedger(store, ctx.log)
          for (const taskId of ledger.followed.keys()) behind.add(taskId)
        }
        const followed = ledger.followed
        chain.subscribe(ctx.self as ActorRef<ChainEventsMessage>, {assignee: address, taskIds: () => followed.keys()})
        startCatchUps(self)
      }
      const tick = (): void => { system.tell(self, {type: '$ProbeTick'}) }
      tick()
      return {timer: setInterval(tick, init.probeIntervalMs), probing: false}
    },
    receive: (state, msg, ctx) => {
      const self = ctx.self as ActorRef<Internal>
      switch (msg.type) {
        case 'TaskSeen': {
          const {task} = msg
          if (ledger != null && store != null && (task.mode === 'competing' || task.assignees.includes(address))) {
            const followed = follow(ledger, task.taskId, {mode: task.mode, ...(task.assignees.includes(address) ? {assigned: true} : {})})
            store.followLedgerTask(task.taskId, followed.task)
            if (followed.dropped != null) store.closeLedgerTask(followed.dropped, undefined, LEDGER_RECENT)
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
          applyEvents(msg.events.map(e => e.event), self)
          return state
        case '$CaughtUp':
          // Only a task still followed: one closed meanwhile (the watch brought its end) is booked already.
          if (ledger?.followed.has(msg.taskId) === true) applyEvents(msg.events, self)
          return state
        case '$CatchUpFailed':
          ctx.log.debug({taskId: msg.taskId, err: msg.error}, 'catching up on a followed task failed; tried again at the next probe')
          behind.add(msg.taskId)
          return state
        case '$Closed': {
          if (ledger == null || store == null) return state
          const closed = entryOf(msg.closing, address, msg.at, msg.detail)
          // The oracle's reason is kept with the entry: its heartbeats repeat it for two minutes only.
          const verdict = closed == null ? undefined : verdictOn(closed, verdicts)
          const entry = closed == null || verdict == null ? closed : {...closed, verdict}
          const booked = entry != null && record(ledger, entry)
          store.closeLedgerTask(msg.closing.task.taskId, booked ? {entry, totals: ledgerTotals(ledger)} : undefined, LEDGER_RECENT)
          if (booked) ctx.log.info({taskId: entry.taskId, outcome: entry.outcome, payoutWei: entry.payoutWei, reason: entry.reason}, 'task closed')
          return state
        }
        case '$ProbeTick':
          startCatchUps(self)
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
            ...(ledger == null ? {} : {ledger: ledgerStatus(ledger)}),
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
