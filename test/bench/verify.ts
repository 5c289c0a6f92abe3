// Figures, not pass/fail: how often the verifier (src/verify/verifier.ts) accepts the attacks of
// issue 11 and refuses honest work, over story prompts, greedy and sampled; then what a check
// costs next to generating the same output, side by side in one run. The verifier holds the F32
// model; the Q4_0 file stands in for another hardware class: its honest output declared as a
// `cuda` class is honest cross-class work, declared as the verifier's own class it is a swapped
// model. Run: npx tsx test/bench/verify.ts [prompts] [maxTokens]
import {resolve} from 'node:path'
import {determinismClass} from '../../src/inference/determinismClass.js'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import type {SamplingParams} from '../../src/protocols/messages.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {PROJECT_ROOT, SHARED_MODEL_PATH, STORIES_260K} from '../../src/util/paths.js'
import {Verifier, type Claim, type Verdict} from '../../src/verify/verifier.js'
import {editedTokens, inventedTokens, prng, storyPrompts, wordTokens} from '../support/attacks.js'

const PROMPTS = Number(process.argv[2] ?? 100)
const MAX_TOKENS = Number(process.argv[3] ?? 64)
const CONTEXT_SIZE = 256
/** Replay: the honest answer of the prompt this many places further on (always another opening). */
const REPLAY_OFFSET = 7
const Q4_MODEL_PATH = resolve(PROJECT_ROOT, '..', 'shared', 'models', 'stories260K-Q4_0.gguf')
const DECODINGS: Record<'greedy' | 'sampled', SamplingParams> = {
  greedy: {maxTokens: MAX_TOKENS, temperature: 0, topK: 0, topP: 1},
  sampled: {maxTokens: MAX_TOKENS, temperature: 0.8, topK: 40, topP: 0.9}
}
type Decoding = keyof typeof DECODINGS

const logger = createSilentLogger()
const f32 = await LlamaEngine.load({modelPath: SHARED_MODEL_PATH, threads: 1, contextSize: CONTEXT_SIZE, logger})
const q4 = await LlamaEngine.load({modelPath: Q4_MODEL_PATH, threads: 1, contextSize: CONTEXT_SIZE, logger})
const ownClass = determinismClass(STORIES_260K.sha256, false)
const gpuClass = determinismClass(STORIES_260K.sha256, 'cuda')
const verifier = new Verifier(f32, ownClass)
const words = wordTokens(f32)
const random = prng(11)
const prompts = storyPrompts(PROMPTS)

/** One row of the table: a case in a class relation, checked by one method, under one decoding. */
interface Row {
  attack: boolean
  caseName: string
  relation: string
  method: 'teacher-forced' | 're-execution'
  decoding: Decoding
  verdicts: Verdict[]
}
const rows = new Map<string, Row>()
function note (row: Omit<Row, 'verdicts'>, verdict: Verdict): void {
  const key = `${row.caseName}|${row.relation}|${row.method}|${row.decoding}`
  const found = rows.get(key) ?? {...row, verdicts: []}
  rows.set(key, found)
  found.verdicts.push(verdict)
  const expected = row.method === 're-execution' ? 're-execution' : 'teacher-forced'
  if (verdict.method !== expected) throw new Error(`${key}: the verifier answered by ${verdict.method} (${verdict.reason})`)
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? NaN : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2
}
const percentile = (values: number[], q: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))] ?? NaN

interface Cost {generateMs: number, checkMs: number, reexecuteMs: number, tokens: number}
const costs: Record<Decoding, Cost[]> = {greedy: [], sampled: []}

// Warm-up: first-call allocations are not what a verifier sees per claim.
{
  const warm = await f32.complete({prompt: prompts[0] ?? 'Once upon a time', seed: 0, params: DECODINGS.greedy})
  await verifier.check({prompt: prompts[0] ?? 'Once upon a time', params: DECODINGS.greedy, seed: 0, tokenIds: warm.tokens, output: warm.text, determinismClass: ownClass, finishReason: warm.finishReason === 'stop' ? 'stop' : 'length'})
  await q4.complete({prompt: 'Once upon a time', seed: 0, params: DECODINGS.greedy})
}

const startedAt = performance.now()
for (const decoding of Object.keys(DECODINGS) as Decoding[]) {
  const params = DECODINGS[decoding]
  const honest: number[][] = []
  const swapped: number[][] = []
  const claim = (i: number, tokenIds: readonly number[], declared: string): Claim =>
    ({prompt: prompts[i] as string, params, seed: i, tokenIds, output: f32.detokenize(tokenIds), determinismClass: declared, finishReason: tokenIds.length < params.maxTokens ? 'stop' : 'length'})
  // Pass 1: honest work, and the cost of checking it measured next to generating it.
  for (const [i, prompt] of prompts.entries()) {
    const generatedAt = performance.now()
    const own = await f32.complete({prompt, seed: i, params})
    const generateMs = performance.now() - generatedAt
    honest.push(own.tokens)
    const teacherForced = await verifier.check({...claim(i, own.tokens, ownClass), output: own.text})
    note({attack: false, caseName: 'honest (F32)', relation: 'same class', method: 'teacher-forced', decoding}, teacherForced)
    const reexecuted = await verifier.check({...claim(i, own.tokens, ownClass), output: own.text}, {reexecute: true})
    note({attack: false, caseName: 'honest (F32)', relation: 'same class', method: 're-execution', decoding}, reexecuted)
    costs[decoding].push({generateMs, checkMs: teacherForced.ms, reexecuteMs: reexecuted.ms, tokens: own.tokens.length})

    const other = await q4.complete({prompt, seed: i, params})
    swapped.push(other.tokens)
    note({attack: false, caseName: 'honest (Q4)', relation: 'another class (cuda)', method: 'teacher-forced', decoding},
      await verifier.check({...claim(i, other.tokens, gpuClass), output: other.text}))
    if ((i + 1) % 20 === 0) process.stderr.write(`  ${decoding}: honest work for ${i + 1}/${prompts.length} prompts (${((performance.now() - startedAt) / 1000).toFixed(0)} s)\n`)
  }
  // Pass 2: the attacks, declared in each class relation.
  for (const [i] of prompts.entries()) {
    const own = honest[i] as number[]
    const replayed = honest[(i + REPLAY_OFFSET) % honest.length] as number[]
    const attacks: Array<[string, number[]]> = [
      ['invented', inventedTokens(words, MAX_TOKENS, random)],
      ['edited (every 5th token)', editedTokens(own, words, random)],
      ['replay (another prompt\'s answer)', replayed]
    ]
    for (const [caseName, tokens] of attacks) {
      for (const [relation, declared] of [['another class (cuda)', gpuClass], ['same class', ownClass]] as const) {
        note({attack: true, caseName, relation, method: 'teacher-forced', decoding}, await verifier.check(claim(i, tokens, declared)))
      }
    }
    note({attack: true, caseName: 'replay (another prompt\'s answer)', relation: 'same class', method: 're-execution', decoding},
      await verifier.check(claim(i, replayed, ownClass), {reexecute: true}))
    const swap = claim(i, swapped[i] as number[], ownClass)
    note({attack: true, caseName: 'swapped model (Q4 as F32)', relation: 'same class (false)', method: 'teacher-forced', decoding}, await verifier.check(swap))
    note({attack: true, caseName: 'swapped model (Q4 as F32)', relation: 'same class (false)', method: 're-execution', decoding}, await verifier.check(swap, {reexecute: true}))
    if ((i + 1) % 20 === 0) process.stderr.write(`  ${decoding}: attacks on ${i + 1}/${prompts.length} prompts (${((performance.now() - startedAt) / 1000).toFixed(0)} s)\n`)
  }
}
const elapsedS = (performance.now() - startedAt) / 1000

const percent = (part: number, whole: number): string => `${(100 * part / whole).toFixed(0)} %`
console.log(`stories260K: verifier F32 (threads 1), ${prompts.length} story prompts, ${MAX_TOKENS} tokens; greedy, and sampled at temperature ${DECODINGS.sampled.temperature}, top-k ${DECODINGS.sampled.topK}, top-p ${DECODINGS.sampled.topP} (seed = prompt index). Q4_0 output stands in for another class. ${elapsedS.toFixed(0)} s.`)
console.log('')
console.log('| case | class relation | method | decoding | n | accepted | rejected | error rate | failures median / max | mean ln p min … max |')
console.log('| --- | --- | --- | --- | ---: | ---: | ---: | --- | ---: | --- |')
const ordered = [...rows.values()].sort((a, b) => Number(a.attack) - Number(b.attack))
for (const row of ordered) {
  const n = row.verdicts.length
  const accepted = row.verdicts.filter(v => v.accepted).length
  const rate = row.attack ? `${percent(accepted, n)} false neg.` : `${percent(n - accepted, n)} false pos.`
  const failures = row.verdicts.map(v => v.failures)
  const means = row.verdicts.map(v => v.meanLogProbability).filter((m): m is number => m != null)
  const margin = row.method === 'teacher-forced' ? `${median(failures)} / ${Math.max(...failures)}` : '–'
  const meanRange = means.length > 0 ? `${Math.min(...means).toFixed(2)} … ${Math.max(...means).toFixed(2)}` : '–'
  console.log(`| ${row.caseName} | ${row.relation} | ${row.method} | ${row.decoding} | ${n} | ${accepted} | ${n - accepted} | ${rate} | ${margin} | ${meanRange} |`)
}

console.log('')
console.log('Cost of checking an honest F32 output in its own class, per prompt, next to generating it (medians over the prompts; p90 of the ratio in brackets):')
console.log('')
console.log('| decoding | tokens | generation | teacher-forced check | check / generation | re-execution | re-execution / generation |')
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const decoding of Object.keys(DECODINGS) as Decoding[]) {
  const c = costs[decoding]
  const checkRatio = c.map(x => x.checkMs / x.generateMs)
  const rerunRatio = c.map(x => x.reexecuteMs / x.generateMs)
  console.log(`| ${decoding} | ${median(c.map(x => x.tokens))} | ${median(c.map(x => x.generateMs)).toFixed(1)} ms | ${median(c.map(x => x.checkMs)).toFixed(1)} ms | ${median(checkRatio).toFixed(2)} (${percentile(checkRatio, 0.9).toFixed(2)}) | ${median(c.map(x => x.reexecuteMs)).toFixed(1)} ms | ${median(rerunRatio).toFixed(2)} (${percentile(rerunRatio, 0.9).toFixed(2)}) |`)
}
await f32.dispose()
await q4.dispose()
