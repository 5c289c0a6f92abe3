// Oracle round trip vs. direct node-llama-cpp on the same prompt, measured side by side in one
// run on a devnet of 1 oracle + 3 miner processes. Run: npm run bench -- roundTrip
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import {greedy} from '../../src/protocols/messages.js'
import {startDevnet} from '../../src/devnet/devnet.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {SHARED_MODEL_PATH} from '../../src/util/paths.js'
import {minersFree} from '../support/minersFree.js'

const REPETITIONS = 10
const PROMPT = 'Once upon a time'
const MAX_TOKENS = 64
const MINERS = 3

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}

const dir = await mkdtemp(join(tmpdir(), 'cortensor-bench-'))
const engine = await LlamaEngine.load({modelPath: SHARED_MODEL_PATH, threads: 1, contextSize: 512, logger: createSilentLogger()})
const devnet = await startDevnet({miners: MINERS, dir, logLevel: 'warn'})
try {
  await minersFree(devnet, MINERS)
  const variants = [
    {name: 'parallel k=1', mode: 'parallel', redundancy: 1},
    {name: 'parallel k=3', mode: 'parallel', redundancy: 3},
    {name: 'competing k=1', mode: 'competing', redundancy: 1}
  ]
  const times: Record<string, number[]> = {direct: [], ...Object.fromEntries(variants.map(v => [v.name, []]))}
  let sameText = true
  for (let i = 0; i < REPETITIONS + 1; i++) {
    const t0 = performance.now()
    const direct = await engine.complete({prompt: PROMPT, seed: 42, params: greedy(MAX_TOKENS)})
    const directMs = performance.now() - t0
    if (i > 0) times.direct?.push(directMs)
    // Interleaved, so machine noise hits every column alike.
    for (const v of variants) {
      // Outside the timing: a late heartbeat on this busy box must not fail the variant.
      await minersFree(devnet, v.redundancy)
      const t = performance.now()
      const res = await fetch(`${devnet.apiUrl}/api/v1/completions`, {method: 'POST', headers: {authorization: `Bearer ${devnet.apiToken}`}, body: JSON.stringify({prompt: PROMPT, max_tokens: MAX_TOKENS, mode: v.mode, redundancy: v.redundancy})})
      const body = await res.json() as {answer: string}
      const ms = performance.now() - t
      if (!res.ok) throw new Error(`${v.name}: ${JSON.stringify(body)}`)
      if (body.answer !== direct.text) sameText = false
      if (i > 0) times[v.name]?.push(ms)
    }
  }
  const base = median(times.direct ?? [])
  console.log(`devnet 1 oracle + ${MINERS} miners (separate processes, threads 1), prompt "${PROMPT}", ${MAX_TOKENS} tokens greedy, ${REPETITIONS} repetitions (+1 warm-up), medians`)
  console.log('| path | median ms | × direct |')
  console.log('| --- | ---: | ---: |')
  for (const [name, xs] of Object.entries(times)) console.log(`| ${name === 'direct' ? 'node-llama-cpp direct (in process)' : `oracle API, ${name}`} | ${median(xs).toFixed(1)} | ${(median(xs) / base).toFixed(1)} |`)
  console.log(`answers identical to direct output: ${sameText ? 'yes' : 'NO'}`)
} finally {
  await devnet.stop()
  await engine.dispose()
  await rm(dir, {recursive: true, force: true})
}
