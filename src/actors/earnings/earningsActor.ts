import type {Address} from '../../protocols/address.js'
import type {Role} from '../../protocols/messages.js'
import {ROLE_CODE} from '../../chain/enums.js'
import {failureForLogs} from '../../chain/provider.js'
import {toTaskEvent, type TaskEvent} from '../../chain/taskEvents.js'
import {JournalError, type TaskJournal} from '../../journal/taskJournal.js'
import {verdictOn, type OracleHeard, type VerdictOnMe} from '../../operator/earningReport.js'
import {assertNever} from '../../util/assertNever.js'
import type {Logger} from '../../util/logger.js'
import type {ActorDefinition, ActorRef, ActorSystem} from '../actorSystem.js'
import {ChainClient} from '../chain/chainClient.js'
import type {ChainEventsMessage, ChainMessage} from '../chain/messages.js'
import {dropOverflow, emptyLedger, entryOf, follow, FOLLOW_MARGIN_BLOCKS, isBooked, LEDGER_RECENT, ledgerStatus, ledgerTotals, needsDetail, onTaskEvent, record, restoreLedger, totalsWith, type Closing, type ClosingDetail, type LedgerState} from './earningsLedger.js'
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
  /** Miners: follow their tasks on chain and keep the ledger in `store`, for `key` (`ledgerKey`: chain id, Cognitive contract, this miner). */
  ledger?: {store: LedgerStore, key: string}
  /** The wallet's balance and the chain's current max fee per gas, from the node's provider. */
  readWallet: () => Promise<{balanceWei: bigint, maxFeePerGasWei: bigint}>
  /** How often the wallet, ACL grant and owed payouts are read while nobody asks (four RPC calls each time). */
  probeIntervalMs: number
  /** A `Refresh` (someone reads the status) starts a read when the last is older than this; the next status shows it. */
  freshMs: number
  /** The block the node's chain watch started at: where a task followed before the watch's first batch has its events looked up from. */
  fromBlock: number
}

/** Followed tasks whose events one catch-up query asks for (one topic filter listing their ids). */
const CATCH_UP_BATCH = 32

type Internal =
  | {type: '$ProbeTick'}
  | {type: '$Probed', at: number, wallet?: {balanceWei: bigint, maxFeePerGasWei: bigint}, aclGranted?: boolean, owedWei?: bigint, error?: string}
  | {type: '$Closed', closing: Closing, at: number, detail?: ClosingDetail}
  /** Tasks followed before a restart, with their chain events so far (the node was not watching for some). */
  | {type: '$CaughtUp', taskIds: string[], events: TaskEvent[]}
  | {type: '$CatchUpFailed', taskIds: string[], error: string}

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
  const {system, address} = init
  const store = init.ledger?.store
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
   * A ledger write to the journal; one that fails (a full disk) is said and skipped: the ledger
   * is a view, and the node's work must not stop over it. What it missed is caught up at the
   * next start (a task stays followed in the journal until its entry is booked there).
   */
  const journaled = (log: Logger, what: string, write: () => void): boolean => {
    try {
      write()
      return true
    } catch (err) {
      log.warn({err}, `could not write the earnings ledger (${what}); carrying on without`)
      return false
    }
  }

  /**
   * The ledger this data folder kept (a new one, since now, the first time). One the journal
   * holds in a form this build cannot read, or kept for another chain, contract or miner, is
   * replaced by a new one (the warning quotes what was there).
   */
  const openLedger = (store: LedgerStore, key: string, log: Logger): LedgerState => {
    const now = Date.now()
    try {
      const stored = store.ledger(LEDGER_RECENT)
      const restored = restoreLedger(address, key, stored, init.fromBlock, now)
      if (stored.totals == null) journaled(log, 'start', () => { store.setLedgerTotals(ledgerTotals(restored)) })
      else log.info({since: new Date(restored.since).toISOString(), ...restored.totals, earnedWei: restored.earnedWei.toString(), followed: restored.followed.size}, 'earnings ledger restored')
      unfollowOverflow(restored, store, log)
      return restored
    } catch (err) {
      // JournalError: a row that is not JSON; TypeError: JSON that is not this node's ledger.
      if (!(err instanceof JournalError) && !(err instanceof TypeError)) throw err
      log.warn({err: err.message}, 'the earnings ledger in the journal is unreadable or not this node\'s; starting a new one')
      const fresh = emptyLedger(address, key, init.fromBlock, now)
      journaled(log, 'reset', () => { store.resetLedger(ledgerTotals(fresh)) })
      return fresh
    }
  }

  /** Drops the oldest followed tasks beyond the cap, from the journal too. */
  const unfollowOverflow = (ledger: LedgerState, store: LedgerStore, log: Logger): void => {
    for (const taskId of dropOverflow(ledger)) journaled(log, 'unfollow', () => { store.closeLedgerTask(taskId, undefined, LEDGER_RECENT) })
  }

  /** Tasks followed before a restart: their events so far (some came while the node was down), in one query per batch. */
  const catchUp = async (taskIds: string[], fromBlock: number): Promise<Internal> => {
    const reply = await chain.events('cognitive', taskIds.map(id => BigInt(id)), fromBlock)
    if (reply.type === 'Failed') return {type: '$CatchUpFailed', taskIds, error: reply.error}
    try {
      return {type: '$CaughtUp', taskIds, events: reply.events.map(toTaskEvent).filter(e => e != null)}
    } catch (err) {
      // A log the decoder cannot read (a garbled answer): tried again, as a failed query is.
      return {type: '$CatchUpFailed', taskIds, error: (err as Error).message}
    }
  }
  /** Followed tasks whose catch-up is still to start (again at each probe tick while the chain fails). */
  const behind = new Set<string>()
  const startCatchUps = (self: ActorRef<Internal>): void => {
    const tasks = [...behind].flatMap(taskId => ledger?.followed.get(taskId) ?? [])
    behind.clear()
    for (let i = 0; i < tasks.length; i += CATCH_UP_BATCH) {
      const batch = tasks.slice(i, i + CATCH_UP_BATCH)
      void catchUp(batch.map(t => t.taskId), Math.min(...batch.map(t => t.fromBlock))).then(caught => { system.tell(self, caught) })
    }
  }

  /**
   * Task events through the ledger: a close goes on to `close` (its entry is booked on
   * `$Closed`), and each task still followed is written to the journal as it now stands.
   */
  const applyEvents = (events: Iterable<TaskEvent>, self: ActorRef<Internal>, log: Logger): void => {
    if (ledger == null || store == null) return
    const touched = new Set<string>()
    for (const event of events) {
      const closing = onTaskEvent(ledger, event)
      if (closing != null) void close(closing).then(closed => { system.tell(self, closed) })
      else touched.add(event.taskId)
    }
    for (const taskId of touched) {
      const task = ledger.followed.get(taskId)
      if (task != null) journaled(log, 'follow', () => { store.followLedgerTask(taskId, task) })
    }
    unfollowOverflow(ledger, store, log)
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
        ledger ??= openLedger(store, init.ledger!.key, ctx.log)
        // At the node's start, and at a restart of this actor (a catch-up in flight when it crashed is asked again).
        for (const taskId of ledger.followed.keys()) behind.add(taskId)
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
            journaled(ctx.log, 'follow', () => { store.followLedgerTask(task.taskId, followed) })
            unfollowOverflow(ledger, store, ctx.log)
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
          // A task followed from now on is looked up from a little before the watch's latest block: a bounded range.
          if (ledger != null) ledger.watchFrom = Math.max(ledger.watchFrom, msg.toBlock - FOLLOW_MARGIN_BLOCKS)
          applyEvents(msg.events.map(e => e.event), self, ctx.log)
          return state
        case '$CaughtUp': {
          // Only tasks still followed: one closed meanwhile (the watch brought its end) is booked already.
          const followed = ledger?.followed
          applyEvents(msg.events.filter(e => followed?.has(e.taskId) === true), self, ctx.log)
          return state
        }
        case '$CatchUpFailed':
          ctx.log.debug({tasks: msg.taskIds.length, err: msg.error}, 'catching up on followed tasks failed; tried again at the next probe')
          for (const taskId of msg.taskIds) behind.add(taskId)
          return state
        case '$Closed': {
          if (ledger == null || store == null) return state
          const closed = entryOf(msg.closing, address, msg.at, msg.detail)
          // The oracle's reason is kept with the entry: its heartbeats repeat it for two minutes only.
          const verdict = closed == null ? undefined : verdictOn(closed, verdicts)
          const entry = closed == null || verdict == null ? closed : {...closed, verdict}
          const taskId = msg.closing.task.taskId
          if (entry == null || isBooked(ledger, taskId)) {
            journaled(ctx.log, 'unfollow', () => { store.closeLedgerTask(taskId, undefined, LEDGER_RECENT) })
            return state
          }
          // The journal first: an entry it did not take is not counted here either (the next
          // start books it from the chain, once), so the totals it holds never count it twice.
          if (!journaled(ctx.log, 'book', () => { store.closeLedgerTask(taskId, {entry, totals: totalsWith(ledger!, entry)}, LEDGER_RECENT) })) return state
          record(ledger, entry)
          ctx.log.info({taskId, outcome: entry.outcome, payoutWei: entry.payoutWei, reason: entry.reason}, 'task closed')
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
