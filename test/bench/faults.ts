// Answers/s and latency under faults, next to the same load without them, in one run: 1 oracle +
// 7 miners as processes on anvil; 40 mixed requests (parallel and competing, k = 1..3), 6 at a
// time, per row. Then how long a killed oracle takes from its restart to its first answer.
// Run: npx tsx test/bench/faults.ts
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {startDevnet} from '../../src/devnet/devnet.js'
import {loadSummary, mixedRequests, runLoad, type LoadResult} from '../support/load.js'
import {minersFree} from '../support/minersFree.js'

const REQUESTS = 40
const CONCURRENCY = 6
const TIMEOUT_MS = 60_000
const dir = await mkdtemp(join(tmpdir(), 'cortensor-bench-faults-'))
const devnet = await startDevnet({
  miners: 7, dir, logLevel: 'warn',
  nodeConfig: {stats: {heartbeatIntervalMs: 1_000}, inference: {threads: 1, sequences: 2}, oracle: {precommitWindowS: 40, commitWindowS: 60}},
  onProgress: line => { process.stderr.write(`  ${line}\n`) }
})
const rows: Array<[string, LoadResult[]]> = []
const load = async (onSettled?: (result: LoadResult, settled: number) => Promise<void>): Promise<LoadResult[]> =>
  await runLoad(devnet, mixedRequests(REQUESTS), {concurrency: CONCURRENCY, timeoutMs: TIMEOUT_MS, onSettled})
try {
  await minersFree(devnet, 7, 180_000)
  rows.push(['no fault', await load()])

  const victims = devnet.miners.slice(0, 3)
  const killAt = new Map([[5, victims[0]], [15, victims[1]], [25, victims[2]]])
  rows.push(['kill -9 of 3 of 7 miners during the run', await load(async (_r, settled) => {
    const victim = killAt.get(settled)
    if (victim != null) await devnet.kill(victim)
  })])
  for (const miner of victims) await devnet.restart(miner)
  await minersFree(devnet, 7, 180_000)
  rows.push(['no fault (miners back)', await load()])

  process.kill(devnet.anvil.pid, 'SIGSTOP')
  const thawAt = Date.now() + 30_000
  try {
    rows.push(['chain frozen (SIGSTOP of anvil, 30 s)', await load()])
    await new Promise(resolve => setTimeout(resolve, Math.max(0, thawAt - Date.now())))
  } finally {
    process.kill(devnet.anvil.pid, 'SIGCONT')
  }
  rows.push(['no fault (chain back, settlement catching up)', await load()])

  await devnet.kill(devnet.oracle)
  const restartedAt = performance.now()
  await devnet.restart(devnet.oracle)
  const upMs = performance.now() - restartedAt
  let first: LoadResult | undefined
  for (;;) {
    [first] = await runLoad(devnet, mixedRequests(1), {concurrency: 1, timeoutMs: TIMEOUT_MS})
    if (first?.status === 200) break
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const firstAnswerMs = performance.now() - restartedAt

  const fmt = (n: number): string => Number.isFinite(n) ? n.toFixed(0) : '–'
  process.stdout.write([
    `${REQUESTS} mixed requests per row, ${CONCURRENCY} at a time; 1 oracle + 7 miners on one 2-core host:`,
    '',
    '| load | answered | answers/s | p50 latency | p99 latency |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows.map(([name, results]) => {
      const s = loadSummary(results)
      return `| ${name} | ${s.answered}/${results.length} | ${s.answersPerSecond.toFixed(2)} | ${fmt(s.p50Ms)} ms | ${fmt(s.p99Ms)} ms |`
    }),
    '',
    `oracle kill -9 and restart with the same config: node up (node.json written) after ${fmt(upMs)} ms, first answer after ${fmt(firstAnswerMs)} ms`
  ].join('\n') + '\n')
} finally {
  await devnet.stop()
  await rm(dir, {recursive: true, force: true})
}
