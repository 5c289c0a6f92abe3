// What a node costs, on a devnet of 1 oracle + 7 miner processes (npm run demo's shape):
//  1. start: chain up → all 7 miners ready (the oracle sees each with the model and a free slot);
//  2. idle: resident memory and CPU of each process over a quiet window (default heartbeat);
//  3. per task: CPU of the oracle, of the miner assigned the task (beyond its inference) and of a
//     miner not assigned, from /proc CPU counters around each of N k=1 tasks (from its request
//     to SETTLE_MS after its answer), less each process's idle rate; the assigned miner's share
//     is then reduced by the inference alone, measured in this process on the same prompt.
// Run: npm run bench -- nodeCost
import {readFileSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {startDevnet} from '../../src/devnet/devnet.js'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import {greedy} from '../../src/protocols/messages.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {SHARED_MODEL_PATH} from '../../src/util/paths.js'
import {sleep} from '../../src/util/sleep.js'
import {minersFree} from '../support/minersFree.js'

const {values: args} = parseArgs({options: {
  tasks: {type: 'string', default: '40'},
  idle: {type: 'string', default: '30'}
}})
const MINERS = 7
const TASKS = Number(args.tasks)
const IDLE_S = Number(args.idle)
const PROMPT = 'Once upon a time'
const MAX_TOKENS = 16
/** After each answer: the task's reveal and end are mined within this (anvil automine, 250 ms polling). */
const SETTLE_MS = 2_000
/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS = 100

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS
}

function rssMiB (pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(match?.[1] ?? NaN) / 1024
}

const dir = await mkdtemp(join(tmpdir(), 'cortensor-bench-cost-'))
const marks = new Map<string, number>()
const t0 = performance.now()
const devnet = await startDevnet({
  miners: MINERS, dir, logLevel: 'warn',
  onProgress: line => {
    if (line.startsWith('hashing the models')) marks.set('chainUp', performance.now())
    if (line.startsWith(`starting ${MINERS} miners`)) marks.set('minersStart', performance.now())
  }
})
try {
  const started = performance.now()
  await minersFree(devnet, MINERS)
  const ready = performance.now()
  const chainUp = marks.get('chainUp') ?? t0
  const minersStart = marks.get('minersStart') ?? t0
  const oraclePid = devnet.oracle.process.child.pid!
  const minerPids = devnet.miners.map(m => m.process.child.pid!)
  const all = [oraclePid, ...minerPids]

  // Idle: a settling pause (first pings, peer dials; chain pollers go idle 30 s after the last
  // events), then the window.
  await sleep(35_000)
  const idleFrom = all.map(cpuSeconds)
  const idleStart = performance.now()
  await sleep(IDLE_S * 1000)
  const idleWall = (performance.now() - idleStart) / 1000
  const idleRate = all.map((pid, i) => (cpuSeconds(pid) - idleFrom[i]!) / idleWall)
  const rss = all.map(rssMiB)

  // Per task: one k=1 task at a time, each followed by a pause for its settlement (precommit,
  // reveal, end); every process's CPU over that window, less its idle rate, is the task's cost,
  // booked to the miner the task went to or to the miners it did not.
  const minerIndex = new Map(devnet.miners.map((m, i) => [m.info.address.toLowerCase(), i + 1]))
  let oracleExtra = 0
  let assignedExtra = 0
  let otherExtra = 0
  let assignedCount = 0
  let otherCount = 0
  const perMiner = devnet.miners.map(() => 0)
  for (let i = 0; i < TASKS; i++) {
    const from = all.map(cpuSeconds)
    const t = performance.now()
    let miners: string[] = []
    for (;;) {
      const res = await fetch(`${devnet.apiUrl}/api/v1/completions`, {method: 'POST', headers: {authorization: `Bearer ${devnet.apiToken}`}, body: JSON.stringify({prompt: PROMPT, max_tokens: MAX_TOKENS, mode: 'parallel', redundancy: 1})})
      const body = await res.json() as {miners?: string[]}
      if (res.status === 503) { await sleep(20); continue }
      if (!res.ok) throw new Error(`task ${i}: ${res.status} ${JSON.stringify(body)}`)
      miners = (body.miners ?? []).map(m => m.toLowerCase())
      break
    }
    await sleep(SETTLE_MS)
    const wall = (performance.now() - t) / 1000
    const extra = all.map((pid, j) => cpuSeconds(pid) - from[j]! - idleRate[j]! * wall)
    oracleExtra += extra[0]!
    const assigned = new Set(miners.map(m => minerIndex.get(m)))
    for (let j = 1; j < all.length; j++) {
      if (assigned.has(j)) { assignedExtra += extra[j]!; assignedCount++; perMiner[j - 1]!++ } else { otherExtra += extra[j]!; otherCount++ }
    }
  }
  const perAssigned = assignedExtra / assignedCount
  const perOther = otherExtra / otherCount

  // The inference alone, in this process, threads 1 as the miners run it.
  const engine = await LlamaEngine.load({modelPath: SHARED_MODEL_PATH, threads: 1, contextSize: 512, logger: createSilentLogger()})
  await engine.complete({prompt: PROMPT, seed: 42, params: greedy(MAX_TOKENS)})
  const inferFrom = process.cpuUsage()
  for (let i = 0; i < 20; i++) await engine.complete({prompt: PROMPT, seed: 42, params: greedy(MAX_TOKENS)})
  const inferUsage = process.cpuUsage(inferFrom)
  const inferenceS = (inferUsage.user + inferUsage.system) / 1e6 / 20
  await engine.dispose()

  const ms = (s: number): string => (s * 1000).toFixed(1)
  console.log(`devnet 1 oracle + ${MINERS} miners (separate processes), idle window ${IDLE_S} s, ${TASKS} sequential parallel k=1 tasks of ${MAX_TOKENS} tokens`)
  console.log('| figure | value |')
  console.log('| --- | ---: |')
  console.log(`| chain up → ${MINERS} miners ready | ${((ready - chainUp) / 1000).toFixed(1)} s |`)
  console.log(`| miner processes started → ${MINERS} miners ready | ${((ready - minersStart) / 1000).toFixed(1)} s (node.json of all: ${((started - minersStart) / 1000).toFixed(1)} s) |`)
  console.log(`| idle RSS, oracle | ${rss[0]!.toFixed(0)} MB |`)
  console.log(`| idle RSS, miners (median / max) | ${median(rss.slice(1)).toFixed(0)} / ${Math.max(...rss.slice(1)).toFixed(0)} MB |`)
  console.log(`| idle CPU, oracle | ${(idleRate[0]! * 100).toFixed(2)} % of a core |`)
  console.log(`| idle CPU, miners (median / max) | ${(median(idleRate.slice(1)) * 100).toFixed(2)} / ${(Math.max(...idleRate.slice(1)) * 100).toFixed(2)} % of a core |`)
  console.log(`| CPU per task, oracle | ${ms(oracleExtra / TASKS)} ms |`)
  console.log(`| CPU per task, a miner not assigned | ${ms(perOther)} ms |`)
  console.log(`| CPU per task, the assigned miner beyond inference | ${ms(perAssigned - inferenceS)} ms (inference alone ${ms(inferenceS)} ms) |`)
  console.log(`tasks per miner: ${perMiner.join(', ')}; each task measured from its request to ${SETTLE_MS} ms after its answer`)
} finally {
  await devnet.stop()
  await rm(dir, {recursive: true, force: true})
}
