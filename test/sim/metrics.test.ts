/**
 * What `/metrics` shows of real work: a devnet (1 oracle + 2 miner processes, real chain, real
 * model; the miners fetch the model from the oracle over IPFS) runs a streamed parallel task and
 * a competing one, and each node's Prometheus page must count them where they happened.
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import type {TaskRecord} from '../../src/actors/oracle/messages.js'
import {startDevnet, type Devnet, type DevnetNode} from '../../src/devnet/devnet.js'
import {minersFree} from '../support/minersFree.js'
import {streamedCompletion} from '../support/streamedCompletion.js'
import {until} from '../support/until.js'

const SETTLE_TIMEOUT_MS = 60_000

/** One sample of the Prometheus text format: `name{label="value",...} value`. */
interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The samples of a Prometheus text page (comments and blank lines skipped). */
function parseExposition (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (match == null) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key as string] = JSON.parse(`"${value as string}"`) as string
    samples.push({name: match[1] as string, labels, value: Number(match[3])})
  }
  return samples
}

class Scrape {
  constructor (readonly node: string, readonly samples: Sample[]) {}

  /** The sum of the samples of `name` whose labels include `labels`. */
  sum (name: string, labels: Record<string, string> = {}): number {
    return this.matching(name, labels).reduce((n, s) => n + s.value, 0)
  }

  matching (name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  }

  /** A histogram's series for `labels`: buckets (the +Inf one equal to the count), sum and count. */
  histogram (name: string, labels: Record<string, string> = {}): {count: number, sum: number} {
    const count = this.sum(`${name}_count`, labels)
    const inf = this.sum(`${name}_bucket`, {...labels, le: '+Inf'})
    assert.ok(this.matching(`${name}_bucket`, labels).length > 1, `${this.node}: ${name}_bucket${JSON.stringify(labels)} has buckets`)
    assert.equal(inf, count, `${this.node}: ${name}: the +Inf bucket holds every observation`)
    assert.ok(this.matching(`${name}_sum`, labels).length > 0, `${this.node}: ${name}_sum${JSON.stringify(labels)}`)
    return {count, sum: this.sum(`${name}_sum`, labels)}
  }
}

let devnet: Devnet
let dir: string

async function scrape (node: DevnetNode): Promise<Scrape> {
  const res = await fetch(`${node.info.api}/metrics`)
  assert.equal(res.status, 200, `${node.name} /metrics`)
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/)
  return new Scrape(node.name, parseExposition(await res.text()))
}

async function api<T> (path: string, body?: unknown): Promise<{status: number, json: T}> {
  const authorization = `Bearer ${devnet.apiToken}`
  const res = await fetch(`${devnet.apiUrl}${path}`, body == null ? {headers: {authorization}} : {method: 'POST', headers: {'content-type': 'application/json', authorization}, body: JSON.stringify(body)})
  return {status: res.status, json: await res.json() as T}
}

async function settled (taskId: string): Promise<TaskRecord> {
  return await until(`task ${taskId} settled on chain`, SETTLE_TIMEOUT_MS, async () => {
    const {json} = await api<TaskRecord>(`/api/v1/tasks/${taskId}`)
    return json.phase === 'ended' || json.phase === 'expired' ? json : undefined
  })
}

describe('metrics: /metrics of an oracle and its miners after real tasks', {timeout: 300_000}, () => {
  let oracle: Scrape
  let miners: Scrape[]
  let records: TaskRecord[]

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cortensor-metrics-'))
    devnet = await startDevnet({miners: 2, dir, logLevel: 'warn', nodeConfig: {inference: {contextSize: 2048, sequences: 1}, stats: {heartbeatIntervalMs: 1_000}}})
    await minersFree(devnet, 2)
    // Parallel k=2, streamed: the oracle releases verified text to the client (time to first token).
    const streamed = await streamedCompletion(devnet, {prompt: 'Once upon a time', max_tokens: 24, redundancy: 2})
    assert.ok(streamed.text.length > 0, 'the streamed task answered')
    await minersFree(devnet, 2)
    const competing = await api<{task_id: string}>('/api/v1/completions', {prompt: 'The dog ran', max_tokens: 16, mode: 'competing', redundancy: 1})
    assert.equal(competing.status, 200, JSON.stringify(competing.json))
    const {json} = await api<{tasks: TaskRecord[]}>('/api/v1/tasks')
    assert.equal(json.tasks.length, 2, 'two tasks on the oracle')
    records = await Promise.all(json.tasks.map(async t => await settled(t.taskId)))
    // The trail and the miners' commits are in: what follows is bookkeeping already counted.
    oracle = await scrape(devnet.oracle)
    miners = await Promise.all(devnet.miners.map(scrape))
  })

  after(async () => {
    await devnet?.stop()
    if (dir != null) await rm(dir, {recursive: true, force: true})
  })

  it('serves the process metrics every Node dashboard reads', () => {
    for (const page of [oracle, ...miners]) {
      assert.ok(page.sum('process_resident_memory_bytes') > 10_000_000, `${page.node}: resident memory`)
      assert.ok(page.sum('process_cpu_seconds_total') > 0, `${page.node}: CPU seconds`)
      assert.equal(page.matching('nodejs_eventloop_lag_seconds').length, 1, `${page.node}: event-loop lag`)
      assert.ok(page.matching('nodejs_gc_duration_seconds_bucket').length > 0, `${page.node}: GC histogram`)
    }
  })

  it('counts each task once on the oracle by mode and outcome, with its stages and time to first verified token', () => {
    assert.deepEqual(records.map(r => r.phase), ['ended', 'ended'])
    assert.equal(oracle.sum('cortensor_tasks_total', {mode: 'parallel', outcome: 'answered'}), 1)
    assert.equal(oracle.sum('cortensor_tasks_total', {mode: 'competing', outcome: 'answered'}), 1)
    assert.equal(oracle.sum('cortensor_tasks_total'), 2, 'nothing else counted')
    const ttft = oracle.histogram('cortensor_task_first_token_seconds', {mode: 'parallel'})
    assert.equal(ttft.count, 1, 'the one streamed task')
    assert.ok(ttft.sum > 0 && ttft.sum < 60)
    for (const stage of ['created', 'first_result', 'answered', 'settled']) {
      assert.equal(oracle.histogram('cortensor_task_stage_seconds', {stage}).count, 2, `oracle stage ${stage}: both tasks`)
    }
    // The stages come in order: each one's mean is no earlier than the one before.
    const mean = (stage: string): number => { const h = oracle.histogram('cortensor_task_stage_seconds', {stage}); return h.sum / h.count }
    assert.ok(mean('first_result') <= mean('answered') && mean('answered') <= mean('settled'))
  })

  it('counts the oracle\'s verdicts on the miners\' outputs, one per output it judged', () => {
    // Parallel k=2: two outputs; competing k=1: every competitor heard (up to 2k when verified).
    // The oracle's own verifier judges each; an output identical to one judged has its verdict copied.
    const results = records.flatMap(r => r.results)
    assert.ok(results.length >= 3, `outputs received: ${results.length}`)
    assert.equal(oracle.sum('cortensor_verification_verdicts_total', {verdict: 'accepted'}), results.filter(r => r.verdict?.accepted === true).length)
    assert.equal(oracle.sum('cortensor_verification_verdicts_total', {verdict: 'rejected'}), results.filter(r => r.verdict?.accepted === false).length)
    assert.equal(oracle.sum('cortensor_verification_verdicts_total', {verdict: 'accepted'}), results.length, 'honest miners: every output accepted')
  })

  it('counts the miners\' stages, inference speed, and their transactions and gas, as the chain recorded them', () => {
    const onChain = (event: string): number => records.flatMap(r => r.trail).filter(e => e.name === event).length
    const total = (name: string, labels: Record<string, string>): number => miners.reduce((n, m) => n + m.sum(name, labels), 0)
    // Both miners work the parallel task; the competing one goes to whoever precommits first.
    assert.equal(onChain('TaskPrecommitted'), 3)
    assert.equal(total('cortensor_transactions_total', {method: 'cognitive.precommit', status: 'confirmed'}), onChain('TaskPrecommitted'))
    assert.equal(total('cortensor_transactions_total', {method: 'cognitive.commit', status: 'confirmed'}), onChain('TaskCommitted'))
    assert.equal(total('cortensor_task_stage_seconds_count', {stage: 'precommitted'}), onChain('TaskPrecommitted'))
    assert.equal(total('cortensor_task_stage_seconds_count', {stage: 'committed'}), onChain('TaskCommitted'))
    for (const page of miners) {
      for (const stage of ['result_sent', 'precommitted', 'committed']) assert.ok(page.histogram('cortensor_task_stage_seconds', {stage}).count >= 1, `${page.node} ${stage}`)
      const speed = page.histogram('cortensor_inference_tokens_per_second', {model: devnet.modelId})
      // One per finished inference: each result sent, and any run that finished after its task was lost.
      assert.ok(speed.count >= page.histogram('cortensor_task_stage_seconds', {stage: 'result_sent'}).count, `${page.node}: one speed per inference`)
      assert.ok(speed.sum / speed.count > 1, `${page.node}: tokens/s ${speed.sum / speed.count}`)
      for (const method of ['cognitive.precommit', 'cognitive.commit']) {
        // A precommit that lost the race for a competing slot reverts (SlotsFull): mined, or refused
        // at estimation before it was ever sent.
        const sent = page.sum('cortensor_transactions_total', {method, status: 'sent'})
        const confirmed = page.sum('cortensor_transactions_total', {method, status: 'confirmed'})
        assert.ok(sent >= confirmed && sent <= confirmed + page.sum('cortensor_transactions_total', {method, status: 'reverted'}), `${page.node}: ${method} ${JSON.stringify(page.matching('cortensor_transactions_total', {method}))}`)
        assert.ok(page.sum('cortensor_gas_used_total', {method}) > 21_000, `${page.node}: gas of ${method}`)
      }
      assert.equal(page.sum('cortensor_transactions_total', {status: 'failed'}), 0, `${page.node}: no transaction failed`)
    }
  })

  it('counts the oracle\'s createTask and settlement transactions with their gas', () => {
    assert.equal(oracle.sum('cortensor_transactions_total', {method: 'cognitive.createTask', status: 'confirmed'}), 2)
    assert.ok(oracle.sum('cortensor_gas_used_total', {method: 'cognitive.createTask'}) > 2 * 21_000)
    // A verified task settles by verdict (`settle`), an unverified one by majority (`end`).
    const settlements = ['cognitive.settle', 'cognitive.end'].reduce((n, method) => n + oracle.sum('cortensor_transactions_total', {method, status: 'confirmed'}), 0)
    assert.equal(settlements, 2, JSON.stringify(oracle.matching('cortensor_transactions_total')))
    assert.ok(['cognitive.settle', 'cognitive.end'].reduce((n, method) => n + oracle.sum('cortensor_gas_used_total', {method}), 0) > 2 * 21_000)
  })

  it('counts gossip published and validated by topic on both sides', () => {
    assert.equal(oracle.sum('cortensor_gossip_published_total', {topic: 'task'}), 2, 'the oracle gossiped its two tasks')
    assert.ok(oracle.sum('cortensor_gossip_published_total', {topic: 'oracle-heartbeat'}) >= 1)
    assert.ok(oracle.sum('cortensor_gossip_validation_total', {topic: 'heartbeat', result: 'accept'}) >= 2, 'the oracle took the miners\' heartbeats')
    for (const page of miners) {
      assert.ok(page.sum('cortensor_gossip_published_total', {topic: 'heartbeat'}) >= 1, `${page.node}: heartbeats published`)
      assert.ok(page.sum('cortensor_gossip_published_total', {topic: 'precommit'}) >= 1, `${page.node}: precommits published`)
      assert.ok(page.sum('cortensor_gossip_published_total', {topic: 'commit'}) >= 1, `${page.node}: commits published`)
      assert.ok(page.sum('cortensor_gossip_validation_total', {topic: 'task', result: 'accept'}) >= 2, `${page.node}: took both tasks' gossip`)
    }
  })

  it('counts the model bytes the miners fetched over IPFS and the oracle served', async () => {
    // Every miner started with an empty model folder: both models (F32 and Q4) came from peers.
    for (const page of miners) assert.ok(page.sum('cortensor_model_bytes_total', {direction: 'fetched'}) > 500_000, `${page.node}: model bytes fetched`)
    assert.ok(oracle.sum('cortensor_model_bytes_total', {direction: 'served'}) > 500_000, 'the oracle seeded the model')
    assert.equal(oracle.sum('cortensor_model_bytes_total', {direction: 'fetched'}), 0, 'the oracle had its files')
  })

  it('times the API requests by route and status', () => {
    const completions = oracle.matching('cortensor_api_request_duration_seconds_count').filter(s => s.labels.route?.includes('completions') === true && s.labels.status === '200')
    assert.ok(completions.reduce((n, s) => n + s.value, 0) >= 2, `completion requests timed: ${JSON.stringify(completions)}`)
    oracle.histogram('cortensor_api_request_duration_seconds', completions[0]?.labels ?? {})
  })
})
