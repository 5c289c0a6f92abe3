import type {Provider} from 'ethers'
import type {ActorRef, ActorSystem} from '../actors/actorSystem.js'
import type {EarningsMessage, EarningsStatus} from '../actors/earnings/messages.js'
import type {ModelMessage, ModelStatus} from '../actors/model/messages.js'
import type {AccessCache} from '../chain/accessCache.js'
import {explainEarning, FINDING_CODES, TASK_OUTCOMES, type EarningReport} from '../operator/earningReport.js'
import type {Address} from '../protocols/address.js'
import type {Role} from '../protocols/messages.js'
import type {NodeMetrics} from '../util/metrics.js'
import {RecentAnswer} from '../util/recentAnswer.js'
import {askStatus} from './roles/askStatus.js'
import type {RoleRuntime} from './roles/nodeRole.js'

const WALLET_READ_TIMEOUT_MS = 10_000
/** The gauges of one scrape share one report (each gauge asks for it). */
const SCRAPE_REPORT_MAX_AGE_MS = 1_000

export interface EarningStatusInit {
  system: ActorSystem
  model: ActorRef<ModelMessage>
  earnings: ActorRef<EarningsMessage>
  access: AccessCache
  role: Role
  runtime: RoleRuntime
  address: Address
  heartbeatIntervalMs: number
  peers: () => number
  metrics: NodeMetrics
}

/**
 * The node's answer to "why am I (not) earning?" (`earning` in `GET /api/v1/status`), from the
 * earnings actor, the access cache, the models and the role; each report also sets the earning
 * gauges, and a scrape of /metrics makes one from what is known (it starts no chain reads: the
 * route is open; `refresh` is for the status route, behind a token).
 */
export function earningStatus (init: EarningStatusInit): {report: (models?: ModelStatus[], opts?: {refresh?: boolean}) => Promise<EarningReport>} {
  const {system, role, address, metrics} = init
  const upSince = Date.now()

  const report = async (models?: ModelStatus[], opts: {refresh?: boolean} = {}): Promise<EarningReport> => {
    if (opts.refresh === true) system.tell(init.earnings, {type: 'Refresh'})
    models ??= await askStatus<ModelStatus[]>(system, init.model)
    const known = await askStatus<EarningsStatus>(system, init.earnings)
    const iam = init.access.nodeOf(address)
    const peers = init.peers()
    const answer = explainEarning({
      now: Date.now(), role, address, upSince, heartbeatIntervalMs: init.heartbeatIntervalMs,
      aclGranted: known?.aclGranted,
      registered: iam?.active === true && iam.role === role,
      models: (models ?? []).map(m => {
        const serving = init.runtime.serving?.get(m.modelId)
        return {modelId: m.modelId, phase: m.phase, error: m.error, progress: m.progress, served: serving?.served, serveError: serving?.error}
      }),
      peers,
      oracles: role === 'oracle' ? undefined : known?.oracles ?? [],
      chain: known?.chain ?? {},
      ledger: known?.ledger,
      verdicts: known?.verdicts
    })
    metrics.peers.set(peers)
    if (answer.balanceWei != null) metrics.walletBalanceWei.set(Number(answer.balanceWei))
    metrics.earnedWei.set(Number(answer.earnedWei))
    for (const outcome of TASK_OUTCOMES) metrics.minerTasks.set({outcome}, answer.tasks[outcome])
    const holding = new Set(answer.findings.map(f => f.code))
    for (const code of FINDING_CODES) metrics.earningProblems.set({code}, holding.has(code) ? 1 : 0)
    return answer
  }

  const scraped = new RecentAnswer<EarningReport>()
  // A report that cannot be made leaves the gauges as they were: the scrape itself still answers.
  metrics.onEarningScrape(async () => { await scraped.get(SCRAPE_REPORT_MAX_AGE_MS, async () => await report()).catch(() => {}) })
  return {report}
}

/** The wallet's balance and the chain's current max fee per gas (what NO_GAS weighs), within a deadline. */
export function walletReader (provider: Provider, address: Address): () => Promise<{balanceWei: bigint, maxFeePerGasWei: bigint}> {
  return async () => {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`no answer for the wallet balance within ${WALLET_READ_TIMEOUT_MS / 1000} s`)) }, WALLET_READ_TIMEOUT_MS)
    })
    try {
      const [balanceWei, fees] = await Promise.race([Promise.all([provider.getBalance(address), provider.getFeeData()]), deadline])
      return {balanceWei, maxFeePerGasWei: fees.maxFeePerGas ?? fees.gasPrice ?? 0n}
    } finally {
      clearTimeout(timer)
    }
  }
}
