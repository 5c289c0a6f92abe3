/**
 * The Grafana dashboard in grafana/ against the metrics a node really exports: a metric renamed
 * or dropped in src/util/metrics.ts breaks this test rather than leave a panel silently empty.
 */
import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {before, describe, it} from 'node:test'
import {NodeMetrics} from '../../src/util/metrics.js'
import {PROJECT_ROOT} from '../../src/util/paths.js'

const DASHBOARD_FILE = join(PROJECT_ROOT, 'grafana', 'cortensor-dashboard.json')

interface Target {refId?: string, expr?: string, datasource?: {type?: string, uid?: string}}
interface Panel {id?: number, type: string, title?: string, datasource?: {type?: string, uid?: string}, targets?: Target[], panels?: Panel[], gridPos?: unknown}
interface Dashboard {panels: Panel[], templating: {list: Array<{name: string, type: string, query?: unknown}>}, schemaVersion: number, title: string, uid: string}

/** PromQL words that are not metric names: aggregation modifiers, set operators, `bool`, `offset`. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'atan2', 'inf', 'nan'])

/**
 * The metric names a PromQL expression selects. String literals, label matchers (`{…}`), range
 * and subquery durations (`[…]`) and grouping label lists (`by (…)`, `on (…)`...) are dropped
 * first; what remains of identifiers is a function (followed by `(`), a keyword, or a metric.
 */
function metricNamesIn (expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ')
  const names = new Set<string>()
  for (const match of stripped.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?=\s*(\(?))/g)) {
    const [, name, paren] = match as unknown as [string, string, string]
    if (paren === '(' || KEYWORDS.has(name.toLowerCase())) continue
    names.add(name)
  }
  return [...names]
}

/** Every series name the registry exposes: a counter or gauge by its name, a histogram by `_bucket`, `_sum`, `_count`. */
async function exportedNames (metrics: NodeMetrics): Promise<Set<string>> {
  const names = new Set<string>()
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    // A string at run time ('histogram'), whatever prom-client's types declare.
    const type = String(m.type)
    if (type === 'histogram' || type === 'summary') {
      for (const suffix of ['_sum', '_count', ...(type === 'histogram' ? ['_bucket'] : [])]) names.add(`${m.name}${suffix}`)
      if (type === 'summary') names.add(m.name)
    } else {
      names.add(m.name)
    }
  }
  return names
}

/** Panels in display order, those inside collapsed rows included. */
function allPanels (panels: Panel[]): Panel[] {
  return panels.flatMap(p => [p, ...allPanels(p.panels ?? [])])
}

/** One line per query naming a metric the node does not export: `panel "title" (refId): name`. */
function unknownMetrics (dashboard: Dashboard, exported: ReadonlySet<string>): string[] {
  const problems: string[] = []
  for (const panel of allPanels(dashboard.panels)) {
    for (const target of panel.targets ?? []) {
      for (const name of metricNamesIn(target.expr ?? '')) {
        if (!exported.has(name)) problems.push(`panel ${JSON.stringify(panel.title)} (${target.refId ?? '?'}): ${name}`)
      }
    }
  }
  return problems
}

describe('grafana dashboard', () => {
  let dashboard: Dashboard
  let exported: Set<string>

  before(async () => {
    dashboard = JSON.parse(await readFile(DASHBOARD_FILE, 'utf8')) as Dashboard
    const metrics = new NodeMetrics()
    metrics.collectProcessMetrics()
    exported = await exportedNames(metrics)
  })

  it('finds the metric names of PromQL expressions, not its functions, labels, keywords or durations', () => {
    const cases: Array<[string, string[]]> = [
      ['histogram_quantile(0.95, sum by (le, route) (rate(cortensor_api_request_duration_seconds_bucket{job=~"$job", route!="/x"}[$__rate_interval])))', ['cortensor_api_request_duration_seconds_bucket']],
      ['sum by (method) (rate(cortensor_gas_used_total[5m])) / on (method) sum(rate(cortensor_transactions_total{status="confirmed"}[5m]))', ['cortensor_gas_used_total', 'cortensor_transactions_total']],
      ['cortensor_earned_wei / 1e18', ['cortensor_earned_wei']],
      ['max without (instance) (cortensor_earning_problem) == bool 1', ['cortensor_earning_problem']],
      ['label_replace(up, "dst", "$1", "instance", "(.*):.*")', ['up']],
      ['process_resident_memory_bytes offset 5m and nodejs_eventloop_lag_seconds', ['process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds']]
    ]
    for (const [expr, names] of cases) assert.deepEqual(metricNamesIn(expr), names, expr)
  })

  it('reports a query naming a metric the node does not export', () => {
    const bad: Dashboard = {
      ...dashboard,
      panels: [{type: 'timeseries', title: 'Typo', targets: [
        {refId: 'A', expr: 'sum(rate(cortensor_nope_total[5m]))'},
        // A histogram has no series under its bare name: only _bucket, _sum and _count.
        {refId: 'B', expr: 'rate(cortensor_task_stage_seconds[5m])'},
        {refId: 'C', expr: 'rate(cortensor_task_stage_seconds_count[5m])'}
      ]}]
    }
    assert.deepEqual(unknownMetrics(bad, exported), ['panel "Typo" (A): cortensor_nope_total', 'panel "Typo" (B): cortensor_task_stage_seconds'])
  })

  it('is a Grafana 10+ dashboard with a Prometheus data source variable and job and instance variables', () => {
    assert.ok(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion} predates Grafana 10`)
    assert.ok(dashboard.uid.length > 0 && dashboard.title.length > 0)
    const variables = new Map(dashboard.templating.list.map(v => [v.name, v]))
    assert.equal(variables.get('datasource')?.type, 'datasource')
    assert.equal(variables.get('datasource')?.query, 'prometheus')
    for (const name of ['job', 'instance']) assert.equal(variables.get(name)?.type, 'query', `variable ${name}`)
  })

  it('gives every panel a title, a place, and queries on the data source variable that select by job and instance', () => {
    const ids = new Set<number>()
    for (const panel of allPanels(dashboard.panels)) {
      assert.ok(typeof panel.title === 'string' && panel.title.length > 0, `panel ${panel.id ?? '?'} has no title`)
      assert.ok(panel.gridPos != null, `panel ${panel.title} has no gridPos`)
      assert.ok(panel.id != null && !ids.has(panel.id), `panel ${panel.title}: id ${panel.id} missing or repeated`)
      ids.add(panel.id)
      if (panel.type === 'row') continue
      assert.deepEqual(panel.datasource, {type: 'prometheus', uid: '${datasource}'}, `panel ${panel.title}`)
      assert.ok((panel.targets ?? []).length > 0, `panel ${panel.title} has no query`)
      for (const target of panel.targets ?? []) {
        assert.ok((target.expr ?? '').trim().length > 0, `panel ${panel.title} (${target.refId}): empty query`)
        assert.match(target.expr ?? '', /job=~"\$job", instance=~"\$instance"/, `panel ${panel.title} (${target.refId}) ignores the job and instance variables`)
      }
    }
  })

  it('names in every query only metrics a node exports', () => {
    assert.deepEqual(unknownMetrics(dashboard, exported), [])
  })

  it('answers "why am I (not) earning?" and covers every figure the issue asks for', () => {
    const queried = new Set(allPanels(dashboard.panels).flatMap(p => (p.targets ?? []).flatMap(t => metricNamesIn(t.expr ?? ''))))
    const wanted = [
      'cortensor_earning_problem', 'cortensor_earned_wei', 'cortensor_wallet_balance_wei', 'cortensor_miner_tasks', 'cortensor_peers',
      'cortensor_api_request_duration_seconds_bucket', 'cortensor_task_first_token_seconds_bucket', 'cortensor_task_stage_seconds_bucket',
      'cortensor_inference_tokens_per_second_bucket', 'cortensor_tasks_total', 'cortensor_gossip_validation_total', 'cortensor_gossip_published_total',
      'cortensor_transactions_total', 'cortensor_gas_used_total', 'cortensor_model_bytes_total', 'cortensor_verification_verdicts_total',
      'process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_p99_seconds'
    ]
    assert.deepEqual(wanted.filter(name => !queried.has(name)), [])
  })
})
