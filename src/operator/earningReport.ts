import type {Address} from '../protocols/address.js'
import type {NegativeVerdict, Role} from '../protocols/messages.js'

/**
 * "Why am I (not) earning?": one pure function from what a node knows (its access on chain, its
 * models, its peers, what oracles say they hear, its wallet, its tasks' chain events) to checks,
 * findings with a fix each, and the ledger. The node adds it to `GET /api/v1/status` as
 * `earning`, so `cortensord status` and the dashboard give the same answers.
 */

/** Gas of one task's transactions for a node of each role (BENCHMARKS.md, `npm run bench -- gas`), rounded up. */
export const TASK_GAS: {[K in Role]: bigint} = {
  /** precommit competing (takes a slot) 156,916 + commit 83,013, plus room for a longer output. */
  miner: 260_000n,
  /** createTask parallel k=3 418,989 + settle k=3 125,428. */
  oracle: 560_000n,
  /** A validator sends only its NodeStats pings (48,602 each). */
  validator: 50_000n
}
/** The balance a node should hold: the gas of this many tasks at the current fee. */
export const GAS_RESERVE_TASKS = 20n
/** Oracle heartbeats older than this many heartbeat intervals are not news any more. */
export const ORACLE_SILENCE_INTERVALS = 5
/** Competing tasks lost in a row, without a win between, that make a finding. */
export const LOSING_STREAK = 3

export const TASK_OUTCOMES = ['won', 'lost', 'expired', 'rejected', 'disagreed'] as const
export type TaskOutcome = typeof TASK_OUTCOMES[number]

/** One finished task of this miner, from its chain events. */
export interface LedgerEntry {
  taskId: string
  outcome: TaskOutcome
  /** When the chain closed it (ms). */
  at: number
  mode?: 'parallel' | 'competing'
  /** TaskEnded's winners (who took the slots this miner lost). */
  winners: Address[]
  /** Paid to this miner (wei, decimal). */
  payoutWei: string
  /** Why, as far as the chain tells it. */
  reason: string
  /** A rejected or outvoted output: the oracle's word on it, from its heartbeat, kept with the entry (heartbeats repeat it for two minutes only). */
  verdict?: {oracle: Address, reason: string}
}

export interface LedgerStatus {
  totals: {[K in TaskOutcome]: number}
  /** Sum of the payouts of the tasks won (wei, decimal). */
  earnedWei: string
  /** When the ledger began (ms): it is kept in the node's data folder, so it counts across restarts. */
  since: number
  /** Newest first, bounded. */
  recent: LedgerEntry[]
}

/** An oracle's heartbeat as a miner or validator last received it. */
export interface OracleHeard {
  oracle: Address
  at: number
  /** Did this heartbeat list this node as heard? */
  hearsMe: boolean
}

/** A negative verdict on this miner's output, from an oracle's heartbeat. */
export interface VerdictOnMe {
  oracle: Address
  taskId: string
  verdict: NegativeVerdict
  reason: string
}

export type ModelPhase = 'resolving' | 'importing' | 'fetching' | 'verifying' | 'ready' | 'failed'

export interface EarningFacts {
  now: number
  role: Role
  address: Address
  /** Since when the node runs (ms): a young node has not heard an oracle yet and is no finding. */
  upSince: number
  heartbeatIntervalMs: number
  /** ACL grant for the node's role; undefined while the chain was not read. */
  aclGranted?: boolean
  /** IAM registration active with this role. */
  registered: boolean
  models: Array<{
    modelId: string
    phase: ModelPhase
    error?: string
    progress?: {bytes: number, total: number}
    /** The role took it into service (a miner mines it, a validator checks it); undefined: the role does not serve models (an oracle). */
    served?: boolean
    /** Why the role could not serve it. */
    serveError?: string
  }>
  peers: number
  /** Miners and validators: the oracle heartbeats received (one per oracle, the last). */
  oracles?: OracleHeard[]
  chain: {
    lastOkAt?: number
    lastError?: string
    balanceWei?: bigint
    maxFeePerGasWei?: bigint
    /** Payouts the contract could not push (`Cognitive.owed`): collect with `withdraw()`. */
    owedWei?: bigint
  }
  /** Miners: the task ledger. */
  ledger?: LedgerStatus
  /** Miners: oracles' recent negative verdicts on this node's outputs. */
  verdicts?: VerdictOnMe[]
}

export const FINDING_CODES = [
  'NOT_ADMITTED', 'NOT_REGISTERED', 'MODEL_NOT_VERIFIED', 'MODEL_NOT_LOADED', 'NO_PEERS', 'NO_ORACLE_HEARTBEAT',
  'ORACLE_DOES_NOT_HEAR', 'CHAIN_UNREACHABLE', 'NO_GAS', 'LOSING_COMPETING', 'FAILING_VERIFICATION', 'PAYOUT_OWED'
] as const
export type FindingCode = typeof FINDING_CODES[number]

export interface Finding {
  code: FindingCode
  message: string
  /** What to do: a command, a setting, an amount. */
  fix: string
}

export interface Check {
  name: string
  ok: boolean
  detail: string
}

export interface EarningReport {
  /** No finding holds, and (a miner) it has been paid. */
  earning: boolean
  checks: Check[]
  findings: Finding[]
  tasks: {[K in TaskOutcome]: number}
  earnedWei: string
  /** Miners: when the ledger began (ms); `tasks` and `earnedWei` count from then, across restarts. */
  since?: number
  owedWei: string
  balanceWei?: string
  /** What GAS_RESERVE_TASKS tasks cost at the current fee. */
  gasReserveWei?: string
  /** Newest first, each with its reason (a rejection with the oracle's). */
  recent: LedgerEntry[]
}

const ZERO_TOTALS: {[K in TaskOutcome]: number} = {won: 0, lost: 0, expired: 0, rejected: 0, disagreed: 0}

export function explainEarning (facts: EarningFacts): EarningReport {
  const checks: Check[] = []
  const findings: Finding[] = []
  const check = (name: string, ok: boolean, detail: string, finding?: Finding): void => {
    checks.push({name, ok, detail})
    if (!ok && finding != null) findings.push(finding)
  }
  const {role, address} = facts
  const admitCommand = `cortensord network admit --role ${role} ${address}`

  if (facts.aclGranted === false) {
    check('admitted', false, `the ACL grants ${address} no ${role} role`, {code: 'NOT_ADMITTED', message: `${address} is not admitted as a ${role}: the network's admin has not granted it (ACL)`, fix: `ask the network's admin to run: ${admitCommand}`})
  } else {
    check('admitted', facts.aclGranted === true, facts.aclGranted === true ? `ACL grants the ${role} role` : 'not read from the chain yet')
  }
  const windowMs = ORACLE_SILENCE_INTERVALS * facts.heartbeatIntervalMs
  // A node registers itself and hears its first oracle within moments of starting.
  const settled = facts.now - facts.upSince > windowMs
  check('registered', facts.registered, facts.registered ? `IAM registration active as ${role}` : 'no active IAM registration',
    facts.aclGranted === true && settled ? {code: 'NOT_REGISTERED', message: `${address} is admitted but its IAM registration is not active (the node registers itself at start; it may lack gas, or was deactivated)`, fix: `restart the node with gas in its wallet (it registers itself), or have the admin re-run: ${admitCommand}`} : undefined)

  for (const m of facts.models) {
    const name = `model ${m.modelId}`
    if (m.phase === 'failed') {
      check(name, false, `failed: ${m.error ?? 'no reason given'}`, {
        code: 'MODEL_NOT_VERIFIED',
        message: `model ${m.modelId} is not verified: ${m.error ?? 'no reason given'}`,
        fix: /HASH|SIZE|mismatch/i.test(m.error ?? '')
          ? `the local file is not the registry's model ${m.modelId}: remove its \`file\` from \`models\` in the config (the node then fetches it over IPFS) or put the registry's file there, and restart`
          : `check the node can reach a peer holding model ${m.modelId} (p2p.bootstrap) and its disk (dataDir), then restart`
      })
    } else if (m.phase !== 'ready') {
      const p = m.progress
      check(name, false, `${m.phase}${p != null && p.total > 0 ? ` ${Math.floor(100 * p.bytes / p.total)}%` : ''} (on its way)`)
    } else if (m.serveError != null) {
      check(name, false, `verified but not loaded: ${m.serveError}`, {code: 'MODEL_NOT_LOADED', message: `model ${m.modelId} is verified but not loaded: ${m.serveError}`, fix: 'raise inference.memoryBudgetMiB (or free memory), or lower inference.contextSize / inference.sequences, and restart'})
    } else {
      check(name, m.served !== false, m.served === false ? 'verified, loading' : 'verified and loaded')
    }
  }

  check('peers', facts.peers > 0, `${facts.peers} connected`, {code: 'NO_PEERS', message: 'no peer is connected: nobody can send this node work', fix: 'set p2p.bootstrap to an oracle\'s multiaddr (cortensord network info prints it) and open p2p.listen\'s port in the firewall'})

  if (facts.oracles != null) {
    const live = facts.oracles.filter(o => facts.now - o.at <= windowMs)
    if (live.length === 0) {
      const last = facts.oracles.reduce<number | undefined>((a, o) => a == null || o.at > a ? o.at : a, undefined)
      check('oracle heartbeats', false, last == null ? 'none received' : `none for ${Math.round((facts.now - last) / 1000)} s`, settled
        ? {code: 'NO_ORACLE_HEARTBEAT', message: `no oracle reachable: no oracle heartbeat for ${Math.round(windowMs / 1000)} s`, fix: 'set p2p.bootstrap to the oracle\'s multiaddr (cortensord network info), check that the oracle runs and that its port is open'}
        : undefined)
    } else {
      check('oracle heartbeats', true, `from ${live.length} oracle${live.length === 1 ? '' : 's'}`)
      const hearing = live.filter(o => o.hearsMe)
      check('oracle hears me', hearing.length > 0, hearing.length > 0 ? `heard by ${hearing.map(o => o.oracle).join(', ')}` : `no oracle lists ${address} as heard`, settled
        ? {code: 'ORACLE_DOES_NOT_HEAR', message: `oracles do not hear your heartbeats (${live.map(o => o.oracle).join(', ')} send theirs, none lists ${address})`, fix: 'check p2p.announce (an address the oracle can dial), the firewall on p2p.listen\'s port, that the oracle\'s bootstrap reaches you, and this host\'s clock (NTP: heartbeats from a clock ahead are dropped)'}
        : undefined)
    }
  }

  const chain = facts.chain
  // The chain is read every minute while nobody looks: an old answer is no fault, a failed latest read after it is.
  const reachable = chain.lastOkAt != null && (chain.lastError == null || facts.now - chain.lastOkAt <= Math.max(windowMs, 30_000))
  check('chain', reachable, chain.lastOkAt == null ? `not reached yet${chain.lastError == null ? '' : `: ${chain.lastError}`}` : `last answer ${Math.round((facts.now - chain.lastOkAt) / 1000)} s ago${reachable || chain.lastError == null ? '' : `: ${chain.lastError}`}`,
    chain.lastOkAt != null || settled ? {code: 'CHAIN_UNREACHABLE', message: `the chain RPC does not answer${chain.lastError == null ? '' : `: ${chain.lastError}`}`, fix: 'check chain.rpcUrls (add a second RPC endpoint) and the node\'s network'} : undefined)

  let gasReserve: bigint | undefined
  if (chain.balanceWei != null && chain.maxFeePerGasWei != null) {
    const reserve = TASK_GAS[role] * GAS_RESERVE_TASKS * chain.maxFeePerGasWei
    gasReserve = reserve
    const enough = chain.balanceWei >= reserve
    check('gas', enough, `balance ${formatWei(chain.balanceWei)}; ${GAS_RESERVE_TASKS} tasks need ${formatWei(reserve)} at ${formatGwei(chain.maxFeePerGasWei)}`, {
      code: 'NO_GAS',
      message: `the wallet ${address} holds ${formatWei(chain.balanceWei)}, less than the gas of ${GAS_RESERVE_TASKS} tasks (${formatWei(reserve)} at ${formatGwei(chain.maxFeePerGasWei)}): its transactions will fail`,
      fix: `send at least ${formatWei(reserve - chain.balanceWei)} to ${address}`
    })
  }
  const owed = chain.owedWei ?? 0n
  if (owed > 0n) {
    check('payouts', false, `${formatWei(owed)} owed by the Cognitive contract`, {code: 'PAYOUT_OWED', message: `${formatWei(owed)} of payouts could not be pushed to ${address} and wait in the contract`, fix: `call Cognitive.withdraw() from ${address} to collect ${formatWei(owed)}`})
  }

  const verdicts = facts.verdicts ?? []
  const recent = (facts.ledger?.recent ?? []).map(entry => {
    const verdict = entry.verdict ?? verdictOn(entry, verdicts)
    return verdict == null ? entry : {...entry, reason: `${entry.reason}: ${verdict.reason} (oracle ${verdict.oracle})`}
  })
  const tasks = facts.ledger?.totals ?? {...ZERO_TOTALS}
  if (facts.ledger != null) {
    check('tasks', true, TASK_OUTCOMES.map(o => `${tasks[o]} ${o}`).join(', '))
    const streak = losingStreak(recent)
    if (streak.length >= LOSING_STREAK) {
      const winners = [...new Set(streak.flatMap(e => e.winners))]
      findings.push({
        code: 'LOSING_COMPETING',
        message: `lost the last ${streak.length} competing tasks${winners.length > 0 ? ` to ${winners.join(', ')}` : ''}: they precommitted first`,
        fix: 'answer faster: faster hardware or a lower-latency link to the chain and the oracle; fewer inference.sequences (each task gets more of the CPU/GPU); a smaller (quantized) model'
      })
    }
    const rejected = recent.filter(e => e.outcome === 'rejected')
    const rejectedVerdicts = verdicts.filter(v => v.verdict === 'rejected')
    if (rejected.length > 0 || rejectedVerdicts.length > 0) {
      const reason = rejectedVerdicts[0] != null ? `${rejectedVerdicts[0].reason} (oracle ${rejectedVerdicts[0].oracle}, task ${rejectedVerdicts[0].taskId})` : rejected[0]!.reason
      findings.push({
        code: 'FAILING_VERIFICATION',
        message: `outputs fail verification (${Math.max(rejected.length, rejectedVerdicts.length)} recently): ${reason}`,
        fix: 'run the registry\'s model file unmodified (verified by its sha256) with the official build; do not alter sampling; re-fetch the model (delete it from dataDir/models) and restart'
      })
    }
  }

  return {
    earning: findings.length === 0 && (facts.ledger == null || BigInt(facts.ledger.earnedWei) > 0n),
    checks,
    findings,
    tasks: {...tasks},
    earnedWei: facts.ledger?.earnedWei ?? '0',
    ...(facts.ledger == null ? {} : {since: facts.ledger.since}),
    owedWei: owed.toString(),
    ...(chain.balanceWei == null ? {} : {balanceWei: chain.balanceWei.toString()}),
    ...(gasReserve == null ? {} : {gasReserveWei: gasReserve.toString()}),
    recent
  }
}

/** The oracle's verdict on a rejected or outvoted entry's output, if one was heard. */
export function verdictOn (entry: LedgerEntry, verdicts: readonly VerdictOnMe[]): {oracle: Address, reason: string} | undefined {
  if (entry.outcome !== 'rejected' && entry.outcome !== 'disagreed') return undefined
  const verdict = verdicts.find(v => v.taskId === entry.taskId)
  return verdict == null ? undefined : {oracle: verdict.oracle, reason: verdict.reason}
}

/** The newest competing tasks lost in a row (newest first), up to the first that was not lost. */
function losingStreak (recent: readonly LedgerEntry[]): LedgerEntry[] {
  const streak: LedgerEntry[] = []
  for (const entry of recent) {
    if (entry.mode === 'parallel') continue
    if (entry.outcome !== 'lost') break
    streak.push(entry)
  }
  return streak
}

/** Wei as ETH with up to 6 decimals ("0.0052 ETH"). */
export function formatWei (wei: bigint): string {
  const negative = wei < 0n
  const abs = negative ? -wei : wei
  const whole = abs / 10n ** 18n
  const frac = (abs % 10n ** 18n).toString().padStart(18, '0').slice(0, 6).replace(/0+$/, '')
  const shown = frac === '' && abs > 0n && whole === 0n ? `${abs} wei` : `${whole}${frac === '' ? '' : `.${frac}`} ETH`
  return `${negative ? '-' : ''}${shown}`
}

function formatGwei (wei: bigint): string {
  return `${(Number(wei) / 1e9).toFixed(wei < 10n ** 9n ? 3 : 1)} gwei`
}
