/**
 * Figures, not pass/fail: what LlamaEngine costs over calling node-llama-cpp's LlamaCompletion
 * directly, on the same model, prompt and settings, in the same process; threads 1 vs 2.
 * Run: npx tsx test/bench/inference.ts [repetitions] [maxTokens]
 */
import {LlamaCompletion} from 'node-llama-cpp'
import {getSharedLlama} from '../../src/inference/getSharedLlama.js'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import {greedy} from '../../src/protocols/messages.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {SHARED_MODEL_PATH} from '../../src/util/paths.js'

const REPETITIONS = Number(process.argv[2] ?? 9)
const MAX_TOKENS = Number(process.argv[3] ?? 128)
const CONTEXT_SIZE = 512
const PROMPT = 'Once upon a time'
const logger = createSilentLogger()

interface Sample {text: string, tokens: number, ttftMs: number, tokensPerSecond: number}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? 0 : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

/** LlamaCompletion as a user would call it: one context, the same greedy settings the engine uses. */
async function directRunner (threads: number): Promise<{run: () => Promise<Sample>, dispose: () => Promise<void>}> {
  const llama = await getSharedLlama({logger})
  const model = await llama.loadModel({modelPath: SHARED_MODEL_PATH, gpuLayers: 0})
  const context = await model.createContext({contextSize: CONTEXT_SIZE, sequences: 1, threads})
  const completion = new LlamaCompletion({contextSequence: context.getSequence()})
  return {
    run: async () => {
      const start = performance.now()
      let first: number | undefined
      let tokens = 0
      const text = await completion.generateCompletion(PROMPT, {
        maxTokens: MAX_TOKENS,
        temperature: 0,
        seed: 42,
        repeatPenalty: false,
        disableContextShift: true,
        onToken: chunk => { first ??= performance.now(); tokens += chunk.length }
      })
      const durationMs = performance.now() - start
      return {text, tokens, ttftMs: (first ?? performance.now()) - start, tokensPerSecond: tokens / (durationMs / 1000)}
    },
    dispose: async () => { await context.dispose(); await model.dispose() }
  }
}

async function engineRunner (threads: number): Promise<{run: () => Promise<Sample>, dispose: () => Promise<void>}> {
  const engine = await LlamaEngine.load({modelPath: SHARED_MODEL_PATH, threads, contextSize: CONTEXT_SIZE, logger})
  return {
    run: async () => {
      const result = await engine.complete({prompt: PROMPT, seed: 42, params: greedy(MAX_TOKENS)})
      return {text: result.text, tokens: result.completionTokens, ttftMs: result.timeToFirstTokenMs, tokensPerSecond: result.tokensPerSecond}
    },
    dispose: async () => { await engine.dispose() }
  }
}

async function measure (runner: {run: () => Promise<Sample>, dispose: () => Promise<void>}): Promise<{samples: Sample[], text: string}> {
  await runner.run() // warm-up: first-call allocations are not what a miner sees per task
  const samples: Sample[] = []
  for (let i = 0; i < REPETITIONS; i++) samples.push(await runner.run())
  await runner.dispose()
  const texts = new Set(samples.map(s => s.text))
  if (texts.size !== 1) throw new Error(`greedy output varied across repetitions: ${texts.size} distinct texts`)
  return {samples, text: samples[0]?.text ?? ''}
}

const fmt = (n: number, digits = 1): string => n.toFixed(digits).padStart(9)
console.log(`stories260K, prompt ${JSON.stringify(PROMPT)}, greedy, maxTokens ${MAX_TOKENS}, context ${CONTEXT_SIZE}, ${REPETITIONS} repetitions (+1 warm-up), medians`)
console.log('threads  runner           tokens   tok/s   TTFT ms   tok/s min..max')
const texts = new Set<string>()
for (const threads of [1, 2]) {
  const direct = await measure(await directRunner(threads))
  const engine = await measure(await engineRunner(threads))
  texts.add(direct.text).add(engine.text)
  const rows = [['LlamaCompletion', direct], ['LlamaEngine', engine]] as const
  for (const [name, {samples}] of rows) {
    const tps = samples.map(s => s.tokensPerSecond)
    console.log(`${String(threads).padStart(7)}  ${name.padEnd(15)} ${fmt(median(samples.map(s => s.tokens)), 0)} ${fmt(median(tps), 0)} ${fmt(median(samples.map(s => s.ttftMs)), 2)}   ${Math.min(...tps).toFixed(0)}..${Math.max(...tps).toFixed(0)}`)
  }
  const ratio = median(engine.samples.map(s => s.tokensPerSecond)) / median(direct.samples.map(s => s.tokensPerSecond))
  console.log(`${String(threads).padStart(7)}  engine/direct tok/s ratio ${ratio.toFixed(2)}`)
}
console.log(`identical greedy text across runners and thread counts: ${texts.size === 1 ? 'yes' : `NO (${texts.size} variants)`}`)
