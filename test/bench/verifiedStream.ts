// What verification costs a streaming user: time to the first token and to the whole answer
// through the oracle's OpenAI SSE route, with the oracle verifying in process (`local`: text goes
// out only once verified; k ≥ 2 also waits for a majority of miners to agree) next to an oracle
// that verifies nothing (`off`: tokens as the first miner streams them). Two devnets of 1 oracle +
// 3 miner processes run side by side; requests alternate between them.
// Run: npm run bench -- verifiedStream
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {startDevnet, type Devnet} from '../../src/devnet/devnet.js'
import {minersFree} from '../support/minersFree.js'
import {streamedCompletion} from '../support/streamedCompletion.js'

const MINERS = 3
const PROMPT = 'Once upon a time'
const MAX_TOKENS = 64
const REPETITIONS = 10

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}

const dirs: string[] = []
const devnets: Record<'off' | 'local', Devnet> = {} as Record<'off' | 'local', Devnet>
try {
  for (const verifier of ['off', 'local'] as const) {
    const dir = await mkdtemp(join(tmpdir(), `cortensor-bench-verified-${verifier}-`))
    dirs.push(dir)
    process.stderr.write(`starting the ${verifier} devnet\n`)
    devnets[verifier] = await startDevnet({miners: MINERS, dir, logLevel: 'warn', nodeConfig: {stats: {heartbeatIntervalMs: 500}, inference: {sequences: 1}, oracle: {verifier, auditRate: 0}}})
  }
  const first: Record<string, number[]> = {}
  const total: Record<string, number[]> = {}
  const texts: Record<string, Set<string>> = {}
  for (let i = 0; i < REPETITIONS + 1; i++) {
    // Interleaved, so machine noise hits every column alike; the first round warms up.
    for (const k of [1, 3]) {
      for (const verifier of ['off', 'local'] as const) {
        const devnet = devnets[verifier]
        await minersFree(devnet, k)
        const r = await streamedCompletion(devnet, {prompt: PROMPT, max_tokens: MAX_TOKENS, redundancy: k})
        const key = `${verifier} k=${k}`
        ;(texts[key] ??= new Set()).add(r.text)
        if (i > 0) { (first[key] ??= []).push(r.firstMs); (total[key] ??= []).push(r.totalMs) }
      }
    }
    process.stderr.write(`round ${i}/${REPETITIONS}\n`)
  }
  console.log(`2 devnets of 1 oracle + ${MINERS} miners (separate processes, threads 1), prompt "${PROMPT}", ${MAX_TOKENS} tokens greedy, OpenAI SSE, ${REPETITIONS} repetitions (+1 warm-up) interleaved, medians`)
  console.log('| k | oracle verifier | time to first token ms | whole answer ms | first token vs. off |')
  console.log('| ---: | --- | ---: | ---: | ---: |')
  for (const k of [1, 3]) {
    for (const verifier of ['off', 'local'] as const) {
      const key = `${verifier} k=${k}`
      const ratio = median(first[key] ?? []) / median(first[`off k=${k}`] ?? [])
      console.log(`| ${k} | ${verifier} | ${median(first[key] ?? []).toFixed(1)} | ${median(total[key] ?? []).toFixed(1)} | ${ratio.toFixed(2)}× |`)
    }
  }
  const same = [...Object.values(texts)].every(set => set.size === 1) && new Set(Object.values(texts).map(s => [...s][0])).size === 1
  console.log(`every streamed text identical (verified or not, k=1 or 3): ${same ? 'yes' : 'NO'}`)
} finally {
  for (const devnet of Object.values(devnets)) await devnet.stop()
  for (const dir of dirs) await rm(dir, {recursive: true, force: true})
}
