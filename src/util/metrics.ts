import {collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type LabelValues} from 'prom-client'

const EVENT_LOOP_SAMPLE_MS = 100
/** Seconds, from a fast local call to a slow task: API latency and task stages. */
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

/**
 * Every figure a node exports, in one place, on prom-client: a dashboard's query names one of
 * these (test/unit/grafanaDashboard.test.ts checks each panel against this registry). One node
 * runs per process, so the daemon uses the process's `nodeMetrics`; a test that wants figures of
 * its own makes a `new NodeMetrics()`.
 */
export class NodeMetrics {
  readonly registry = new Registry()

  // --- API (src/api) ---
  readonly apiRequestSeconds = new Histogram({
    name: 'cortensor_api_request_duration_seconds', help: 'HTTP API requests, from the request to the last byte of the answer, by route and status',
    labelNames: ['method', 'route', 'status'] as const, buckets: SECONDS_BUCKETS, registers: [this.registry]
  })

  readonly apiRefused = new Counter({
    name: 'cortensor_api_refused_total', help: 'HTTP API requests refused before their handler ran, by reason (rate, concurrency, timeout, body)',
    labelNames: ['reason'] as const, registers: [this.registry]
  })

  /** Per bearer token (its id, never the token): requests and the tokens they used. */
  readonly apiTokenUsage = new Counter({
    name: 'cortensor_api_usage_total', help: 'Usage per API token id: requests, prompt tokens and completion tokens',
    labelNames: ['token', 'kind'] as const, registers: [this.registry]
  })

  // --- Tasks (oracle and miner) ---
  readonly tasks = new Counter({
    name: 'cortensor_tasks_total', help: 'Tasks finished, by mode and outcome',
    labelNames: ['mode', 'outcome'] as const, registers: [this.registry]
  })

  readonly timeToFirstToken = new Histogram({
    name: 'cortensor_task_first_token_seconds', help: 'From a streamed request to the first verified text sent to its client, by mode',
    labelNames: ['mode'] as const, buckets: SECONDS_BUCKETS, registers: [this.registry]
  })

  readonly minerTaskEnds = new Counter({
    name: 'cortensor_miner_task_ends_total',
    help: 'Tasks this miner stopped working on, by outcome (done: revealed; lost; failed) and reason (a lost task: cancelled by the oracle, reassigned, rejected by the chain, taskClosed, deadline)',
    labelNames: ['outcome', 'reason'] as const, registers: [this.registry]
  })

  readonly taskStageSeconds = new Histogram({
    name: 'cortensor_task_stage_seconds', help: 'Each stage of a task, from its request (oracle) or its assignment (miner), by stage',
    labelNames: ['stage'] as const, buckets: SECONDS_BUCKETS, registers: [this.registry]
  })

  readonly inferenceTokensPerSecond = new Histogram({
    name: 'cortensor_inference_tokens_per_second', help: 'Generation speed of each inference, by model',
    labelNames: ['model'] as const, buckets: [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000], registers: [this.registry]
  })

  readonly verificationVerdicts = new Counter({
    name: 'cortensor_verification_verdicts_total', help: 'Verdicts on miners\' outputs, by verdict (accepted, rejected; unavailable: a verifier could not be reached)',
    labelNames: ['verdict'] as const, registers: [this.registry]
  })

  // --- Gossip ---
  readonly gossipMessages = new Counter({
    name: 'cortensor_gossip_validation_total', help: 'Gossip messages validated, by topic, verdict and reason',
    labelNames: ['topic', 'result', 'code'] as const, registers: [this.registry]
  })

  readonly gossipPublished = new Counter({
    name: 'cortensor_gossip_published_total', help: 'Gossip messages this node published, by topic',
    labelNames: ['topic'] as const, registers: [this.registry]
  })

  // --- Chain ---
  readonly transactions = new Counter({
    name: 'cortensor_transactions_total', help: 'Transactions by contract method (contract.function) and status (sent, confirmed, reverted, failed)',
    labelNames: ['method', 'status'] as const, registers: [this.registry]
  })

  readonly gasUsed = new Counter({
    name: 'cortensor_gas_used_total', help: 'Gas used by confirmed transactions, by contract method',
    labelNames: ['method'] as const, registers: [this.registry]
  })

  // --- Models ---
  readonly modelBytes = new Counter({
    name: 'cortensor_model_bytes_total', help: 'Model bytes fetched from peers and served to them',
    labelNames: ['direction'] as const, registers: [this.registry]
  })

  // --- Why am I (not) earning? (src/operator/earningReport.ts) ---
  /**
   * Brings the earning gauges up to date; each of them awaits it when scraped, so they are
   * computed for a scrape (once: the node shares one report between them) and never in between.
   */
  private refreshEarning: () => Promise<void> = async () => {}
  private readonly collectEarning = async (): Promise<void> => { await this.refreshEarning() }

  readonly peers = new Gauge({name: 'cortensor_peers', help: 'Peers connected', registers: [this.registry], collect: this.collectEarning})

  readonly walletBalanceWei = new Gauge({name: 'cortensor_wallet_balance_wei', help: 'The node\'s wallet balance (pays its gas)', registers: [this.registry], collect: this.collectEarning})

  readonly earnedWei = new Gauge({name: 'cortensor_earned_wei', help: 'Payouts to this node booked in its ledger, which counts across restarts from its data folder\'s first start (wei)', registers: [this.registry], collect: this.collectEarning})

  readonly minerTasks = new Gauge({
    name: 'cortensor_miner_tasks', help: 'This miner\'s tasks by outcome (won, lost, expired, rejected, disagreed), booked in its ledger, which counts across restarts',
    labelNames: ['outcome'] as const, registers: [this.registry], collect: this.collectEarning
  })

  readonly earningProblems = new Gauge({
    name: 'cortensor_earning_problem', help: '1 while a reason this node is not earning holds, by its code',
    labelNames: ['code'] as const, registers: [this.registry], collect: this.collectEarning
  })

  /** The running node's way to set the earning gauges before a scrape reads them. */
  onEarningScrape (refresh: () => Promise<void>): void {
    this.refreshEarning = refresh
  }

  private processCollected = false

  /**
   * Memory, CPU, event-loop lag, handles: the standard names every Node dashboard reads. Called
   * by a running node, not on import: CLI commands and tests need no event-loop sampler.
   */
  collectProcessMetrics (): void {
    if (this.processCollected) return
    this.processCollected = true
    // The event-loop delay is sampled every 100 ms: prom-client's 10 ms timer alone cost an idle
    // node 0.6 % of a core (measured: 0.70 % vs 0.18 % for a bare process with a 100 ms sampler).
    collectDefaultMetrics({register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS})
  }

  /** Prometheus text exposition format. */
  async render (): Promise<string> {
    return await this.registry.metrics()
  }

  get contentType (): string {
    return this.registry.contentType
  }
}

/** The running node's metrics (one node per process). */
export const nodeMetrics = new NodeMetrics()

/** The value of one labelled series of a counter or gauge (0 if it was never touched). */
export async function metricValue<L extends string> (metric: Counter<L> | Gauge<L>, labels: LabelValues<L>): Promise<number> {
  const {values} = await metric.get()
  return values.find(v => Object.entries(labels).every(([k, want]) => String(v.labels[k as L]) === String(want)))?.value ?? 0
}
