// The oracle as a gateway, on a devnet of 1 oracle + 7 miner processes: time to first token
// through the oracle (SSE, OpenAI's /v1/completions) vs. node-llama-cpp directly on the same
// prompt in the same run, then the requests/s the API sustains with a bounded loop of clients.
// Run: npm run bench -- gateway
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import {greedy} from '../../src/protocols/messages.js'
import {startDevnet} from '../../src/devnet/devnet.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {SHARED_MODEL_PATH} from '../../src/util/paths.js'
import {minersFree} from '../support/minersFree.js'
import {streamedCompletion, type TimedStream} from '../support/streamedCompletion.js'

const MINERS = 7
const PROMPT = 'Once upon a time'
const MAX_TOKENS = 64
const REPETITIONS = 10
/** Throughput: this many requests in all, from this many concurrent clients. */
const LOAD_REQUESTS = 210
const LOAD_CLIENTS = [7, 14]
const LOAD_MAX_TOKENS = 16
/** A refused request (no miner free right now) is retried after this pause; refusals are counted. */
const RETRY_PAUSE_MS = 20

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}
const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? NaN
}

const dir = await mkdtemp(join(tmpdir(), 'cortensor-bench-gateway-'))
const engine = await LlamaEngine.load({modelPath: SHARED_MODEL_PATH, threads: 1, contextSize: 512, logger: createSilentLogger()})
// One token sends the whole load and retries each refusal after 20 ms: far past a client's default rate.
const devnet = await startDevnet({miners: MINERS, dir, logLevel: 'warn', nodeConfig: {stats: {heartbeatIntervalMs: 500}}})
const headers = {'content-type': 'application/json', authorization: `Bearer ${devnet.apiToken}`}

const throughOracle = async (redundancy: number): Promise<TimedStream> => await streamedCompletion(devnet, {prompt: PROMPT, max_tokens: MAX_TOKENS, redundancy})

async function direct (): Promise<{firstMs: number, totalMs: number, text: string}> {
  const t0 = performance.now()
  let firstMs = NaN
  const result = await engine.complete({prompt: PROMPT, seed: 42, params: greedy(MAX_TOKENS)}, {onToken: () => { if (Number.isNaN(firstMs)) firstMs = performance.now() - t0 }})
  return {firstMs, totalMs: performance.now() - t0, text: result.text}
}

try {
  await minersFree(devnet, MINERS)
  const paths = {direct, 'oracle k=1': async () => await throughOracle(1), 'oracle k=3': async () => await throughOracle(3)}
  const first: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map(name => [name, []]))
  const total: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map(name => [name, []]))
  let sameText = true
  for (let i = 0; i < REPETITIONS + 1; i++) {
    let reference: string | undefined
    // Interleaved, so machine noise hits every column alike; the first round warms up.
    for (const [name, run] of Object.entries(paths)) {
      await minersFree(devnet, 3)
      const r = await run()
      reference ??= r.text
      if (r.text !== reference) sameText = false
      if (i > 0) { first[name]?.push(r.firstMs); total[name]?.push(r.totalMs) }
    }
  }
  console.log(`devnet 1 oracle + ${MINERS} miners (separate processes, threads 1), prompt "${PROMPT}", ${MAX_TOKENS} tokens greedy, streamed, ${REPETITIONS} repetitions (+1 warm-up), medians`)
  console.log('| path | time to first token ms | whole answer ms |')
  console.log('| --- | ---: | ---: |')
  const label: Record<string, string> = {direct: 'node-llama-cpp direct (in process)', 'oracle k=1': 'oracle SSE /v1/completions, parallel k=1', 'oracle k=3': 'oracle SSE /v1/completions, parallel k=3'}
  for (const name of Object.keys(paths)) console.log(`| ${label[name]} | ${median(first[name] ?? []).toFixed(1)} | ${median(total[name] ?? []).toFixed(1)} |`)
  console.log(`streamed text identical to direct output: ${sameText ? 'yes' : 'NO'}`)

  // Where the oracle's time goes: the router API reports its own timings for each task.
  const stages: Record<'gossip_ms' | 'first_token_ms' | 'first_result_ms' | 'total_ms', number[]> = {gossip_ms: [], first_token_ms: [], first_result_ms: [], total_ms: []}
  for (let i = 0; i < REPETITIONS; i++) {
    await minersFree(devnet, 1)
    const res = await fetch(`${devnet.apiUrl}/api/v1/completions`, {method: 'POST', headers, body: JSON.stringify({prompt: PROMPT, max_tokens: MAX_TOKENS, redundancy: 1})})
    const {timings} = await res.json() as {timings: Record<keyof typeof stages, number>}
    for (const key of Object.keys(stages) as Array<keyof typeof stages>) stages[key].push(timings[key])
  }
  console.log(`oracle's own timings, router API k=1 (medians of ${REPETITIONS}): request → task gossiped (createTask accepted by the node) ${median(stages.gossip_ms)} ms, → first token at the oracle ${median(stages.first_token_ms)} ms, → whole result from the first miner ${median(stages.first_result_ms)} ms, → answer ${median(stages.total_ms)} ms`)

  // The same work without the network: 16-token completions from one engine of 2 sequences
  // (threads 1 each, as 2 miners would run them), 2 at a time, on the same 2 cores.
  const pair = await LlamaEngine.load({modelPath: SHARED_MODEL_PATH, threads: 1, sequences: 2, contextSize: 512, logger: createSilentLogger()})
  let directNext = 0
  const directT0 = performance.now()
  await Promise.all([0, 1].map(async () => {
    while (directNext < LOAD_REQUESTS) {
      directNext++
      await pair.complete({prompt: PROMPT, seed: 42, params: greedy(LOAD_MAX_TOKENS)})
    }
  }))
  const directRate = LOAD_REQUESTS / ((performance.now() - directT0) / 1000)
  await pair.dispose()

  console.log(`\nthroughput: ${LOAD_REQUESTS} non-streamed /v1/completions (k=1, ${LOAD_MAX_TOKENS} tokens, prompt "${PROMPT}") per run; a 503 (no miner free) is retried after ${RETRY_PAUSE_MS} ms`)
  console.log('| concurrent clients | requests/s | × direct | p50 latency ms | p95 latency ms | 503 refusals |')
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: |')
  console.log(`| direct node-llama-cpp, 2 sequences in this process | ${directRate.toFixed(1)} | 1.00 | | | |`)
  for (const clients of LOAD_CLIENTS) {
    await minersFree(devnet, MINERS)
    let next = 0
    let refused = 0
    const latencies: number[] = []
    const t0 = performance.now()
    await Promise.all(Array.from({length: clients}, async () => {
      while (next < LOAD_REQUESTS) {
        next++
        for (;;) {
          const t = performance.now()
          const res = await fetch(`${devnet.apiUrl}/v1/completions`, {method: 'POST', headers, body: JSON.stringify({prompt: PROMPT, max_tokens: LOAD_MAX_TOKENS})})
          const body = await res.json() as {error?: {message: string}}
          if (res.status === 503) { refused++; await new Promise(resolve => setTimeout(resolve, RETRY_PAUSE_MS)); continue }
          if (!res.ok) throw new Error(`oracle answered ${res.status}: ${body.error?.message}`)
          latencies.push(performance.now() - t)
          break
        }
      }
    }))
    const seconds = (performance.now() - t0) / 1000
    console.log(`| ${clients} | ${(LOAD_REQUESTS / seconds).toFixed(1)} | ${(LOAD_REQUESTS / seconds / directRate).toFixed(3)} | ${median(latencies).toFixed(0)} | ${percentile(latencies, 0.95).toFixed(0)} | ${refused} |`)
  }
} finally {
  await devnet.stop()
  await engine.dispose()
  await rm(dir, {recursive: true, force: true})
}
