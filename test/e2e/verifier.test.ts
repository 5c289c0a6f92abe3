import assert from 'node:assert/strict'
import {resolve} from 'node:path'
import {existsSync} from 'node:fs'
import {after, before, describe, it} from 'node:test'
import {determinismClass} from '../../src/inference/determinismClass.js'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import {greedy, type SamplingParams} from '../../src/protocols/messages.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {PROJECT_ROOT, SHARED_MODEL_PATH, STORIES_260K, sharedModelAvailable} from '../../src/util/paths.js'
import {Verifier, type Claim, type Verdict} from '../../src/verify/verifier.js'
import {editedTokens, inventedTokens, prng, storyPrompts, wordTokens} from '../support/attacks.js'

// Real models, real llama.cpp, one thread each. The verifier holds the F32 model; the Q4_0 file of
// the same model stands in for a miner on other hardware (its own rounding, its own argmax).
const THREADS = 1
const CONTEXT_SIZE = 256
const MAX_TOKENS = 48
const Q4_MODEL_PATH = resolve(PROJECT_ROOT, '..', 'shared', 'models', 'stories260K-Q4_0.gguf')
const PROMPTS = storyPrompts(6)
const SAMPLED: SamplingParams = {maxTokens: MAX_TOKENS, temperature: 0.8, topK: 40, topP: 0.9}
const OWN_CLASS = determinismClass(STORIES_260K.sha256, false)
/** Another backend for the same model file: what a GPU miner declares. */
const GPU_CLASS = determinismClass(STORIES_260K.sha256, 'cuda')
const logger = createSilentLogger()

/** What generation reports for these tokens: fewer than maxTokens means the model stopped. */
function finishOf (tokenIds: readonly number[], params: SamplingParams): 'stop' | 'length' {
  return tokenIds.length < params.maxTokens ? 'stop' : 'length'
}

describe('Verifier on stories260K', {skip: !(sharedModelAvailable() && existsSync(Q4_MODEL_PATH)) && 'shared models missing'}, () => {
  let f32: LlamaEngine
  let q4: LlamaEngine
  let verifier: Verifier
  let words: number[]
  /** Greedy outputs of each prompt, by engine. */
  const honest: number[][] = []
  const other: number[][] = []

  /** A claim for prompt `i`, its text decoded from its tokens, seed `i`. */
  function claim (i: number, tokenIds: readonly number[], declared: string, params: SamplingParams = greedy(MAX_TOKENS)): Claim {
    return {prompt: PROMPTS[i] as string, params, seed: i, tokenIds, output: f32.detokenize(tokenIds), determinismClass: declared, finishReason: finishOf(tokenIds, params)}
  }

  function assertRefused (verdict: Verdict, reason: RegExp): void {
    assert.equal(verdict.accepted, false, `accepted, expected a refusal matching ${reason}`)
    assert.match(verdict.reason, reason)
  }

  before(async () => {
    f32 = await LlamaEngine.load({modelPath: SHARED_MODEL_PATH, threads: THREADS, contextSize: CONTEXT_SIZE, logger})
    q4 = await LlamaEngine.load({modelPath: Q4_MODEL_PATH, threads: THREADS, contextSize: CONTEXT_SIZE, logger})
    verifier = new Verifier(f32, OWN_CLASS)
    words = wordTokens(f32)
    for (const [i, prompt] of PROMPTS.entries()) {
      honest.push((await f32.complete({prompt, seed: i, params: greedy(MAX_TOKENS)})).tokens)
      other.push((await q4.complete({prompt, seed: i, params: greedy(MAX_TOKENS)})).tokens)
    }
  })

  after(async () => {
    await f32?.dispose()
    await q4?.dispose()
  })

  it('accepts its own greedy output in its own class, teacher-forced and re-executed', async () => {
    for (const i of PROMPTS.keys()) {
      const checked = await verifier.check(claim(i, honest[i] as number[], OWN_CLASS))
      assert.deepEqual({accepted: checked.accepted, method: checked.method, sameClass: checked.sameClass, failures: checked.failures, reason: checked.reason},
        {accepted: true, method: 'teacher-forced', sameClass: true, failures: 0, reason: ''}, PROMPTS[i])
      const audited = await verifier.check(claim(i, honest[i] as number[], OWN_CLASS), {reexecute: true})
      assert.deepEqual({accepted: audited.accepted, method: audited.method}, {accepted: true, method: 're-execution'}, PROMPTS[i])
    }
  })

  it('accepts another class\'s honest greedy output within tolerance', async () => {
    for (const i of PROMPTS.keys()) {
      const verdict = await verifier.check(claim(i, other[i] as number[], GPU_CLASS))
      assert.equal(verdict.accepted, true, `${PROMPTS[i]}: ${verdict.reason}`)
      assert.equal(verdict.sameClass, false)
      assert.equal(verdict.method, 'teacher-forced')
    }
  })

  it('refuses the same output declared in its own class: a swapped model is caught on greedy tasks', async () => {
    for (const i of PROMPTS.keys()) {
      assert.notDeepEqual(other[i], honest[i], 'Q4 output equal to F32 output: pick other prompts')
      const verdict = await verifier.check(claim(i, other[i] as number[], OWN_CLASS))
      assertRefused(verdict, /tokens not the model's own choice \(at most 0 allowed/)
      assert.ok(verdict.failures > 0)
    }
  })

  it('refuses invented and edited text in either class relation', async () => {
    const random = prng(3)
    for (const i of PROMPTS.keys()) {
      for (const declared of [GPU_CLASS, OWN_CLASS]) {
        const invented = await verifier.check(claim(i, inventedTokens(words, MAX_TOKENS, random), declared))
        assertRefused(invented, declared === OWN_CLASS ? /not the model's own choice/ : /ranked ≥ \d+ by the model|mean ln p/)
        const edited = await verifier.check(claim(i, editedTokens(honest[i] as number[], words, random), declared))
        assertRefused(edited, declared === OWN_CLASS ? /not the model's own choice/ : /ranked ≥ \d+ by the model|mean ln p/)
        assert.ok((edited.meanLogProbability ?? 0) < -2.5, `edited mean ln p ${edited.meanLogProbability}`)
      }
    }
  })

  it('refuses another prompt\'s honest answer in its own class', async () => {
    for (const i of PROMPTS.keys()) {
      const replayed = honest[(i + 1) % PROMPTS.length] as number[]
      assertRefused(await verifier.check(claim(i, replayed, OWN_CLASS)), /not the model's own choice/)
    }
  })

  it('refuses an output cut short and claimed as finished, unless checked as partial', async () => {
    const cut = (honest[0] as number[]).slice(0, 10)
    // Fewer tokens than maxTokens claims the model stopped: its end token is scored and is not its choice.
    assertRefused(await verifier.check(claim(0, cut, OWN_CLASS)), /^claimed to stop, but the model ranks its end token \d+ there \(at most 1\)$/)
    // Claimed as cut at the length limit instead: that limit is maxTokens, not 10.
    assertRefused(await verifier.check({...claim(0, cut, OWN_CLASS), finishReason: 'length'}), new RegExp(`^10 tokens claimed as cut at the length limit, which is ${MAX_TOKENS}$`))
    const partial = await verifier.check(claim(0, cut, OWN_CLASS), {partial: true})
    assert.equal(partial.accepted, true, partial.reason)
  })

  it('refuses an output whose text is not what its token ids decode to', async () => {
    const verdict = await verifier.check({...claim(0, honest[0] as number[], OWN_CLASS), output: `${f32.detokenize(honest[0] as number[])} And they lived happily ever after.`})
    assertRefused(verdict, /not what its token ids decode to/)
    assert.equal(verdict.method, 'none')
  })

  it('refuses a class naming another model, and a malformed class, without running the model', async () => {
    const [, build, backend] = OWN_CLASS.split('/')
    const otherModel = await verifier.check(claim(0, honest[0] as number[], `${'ab'.repeat(32)}/${build}/${backend}`))
    assertRefused(otherModel, /declares model abababababab…, not the task's 270cba1bd510…/)
    assert.equal(otherModel.method, 'none')
    for (const malformed of ['', 'cuda', `${STORIES_260K.sha256}/${build}`, `${STORIES_260K.sha256.toUpperCase()}/${build}/${backend}`, `${OWN_CLASS}/extra`]) {
      const verdict = await verifier.check(claim(0, honest[0] as number[], malformed))
      assertRefused(verdict, /is malformed/)
      assert.equal(verdict.method, 'none')
    }
  })

  it('accepts honest sampled outputs and refuses sampled claims outside the task\'s top-k', async () => {
    const random = prng(5)
    for (const [i, prompt] of PROMPTS.entries()) {
      const own = await f32.complete({prompt, seed: i, params: SAMPLED})
      const verdict = await verifier.check(claim(i, own.tokens, OWN_CLASS, SAMPLED))
      assert.equal(verdict.accepted, true, `${prompt}: ${verdict.reason}`)
      const theirs = await q4.complete({prompt, seed: i, params: SAMPLED})
      const crossClass = await verifier.check(claim(i, theirs.tokens, GPU_CLASS, SAMPLED))
      assert.equal(crossClass.accepted, true, `${prompt} (Q4 as cuda): ${crossClass.reason}`)
      for (const declared of [OWN_CLASS, GPU_CLASS]) {
        assertRefused(await verifier.check(claim(i, inventedTokens(words, MAX_TOKENS, random), declared, SAMPLED)), /outside the task's top-k\/top-p/)
      }
    }
  })

  it('audits a sampled task by re-execution with its seed: the honest output passes, a swapped model\'s does not', async () => {
    for (const [i, prompt] of PROMPTS.slice(0, 3).entries()) {
      const own = await f32.complete({prompt, seed: i, params: SAMPLED})
      const audited = await verifier.check(claim(i, own.tokens, OWN_CLASS, SAMPLED), {reexecute: true})
      assert.deepEqual({accepted: audited.accepted, method: audited.method, reason: audited.reason}, {accepted: true, method: 're-execution', reason: ''}, prompt)
      const swapped = await q4.complete({prompt, seed: i, params: SAMPLED})
      assertRefused(await verifier.check(claim(i, swapped.tokens, OWN_CLASS, SAMPLED), {reexecute: true}), /^re-execution differs from token \d+$/)
      // The same seed with another seed's output: an honest model, the wrong draw.
      const otherSeed = await f32.complete({prompt, seed: i + 1000, params: SAMPLED})
      assertRefused(await verifier.check(claim(i, otherSeed.tokens, OWN_CLASS, SAMPLED), {reexecute: true}), /^re-execution differs/)
    }
  })

  it('refuses more tokens than the task\'s maxTokens', async () => {
    const tokens = honest[0] as number[]
    const verdict = await verifier.check(claim(0, tokens, OWN_CLASS, greedy(tokens.length - 1)))
    assertRefused(verdict, new RegExp(`^${tokens.length} tokens claimed; the task allows ${tokens.length - 1}$`))
    assert.equal(verdict.method, 'none')
  })

  it('refuses token ids outside the vocabulary (llama.cpp would abort the process on them)', async () => {
    for (const bad of [f32.info.vocabularySize, -1, 1.5]) {
      const verdict = await verifier.check({prompt: 'Once upon a time', params: greedy(4), seed: 0, tokenIds: [bad], output: '', determinismClass: OWN_CLASS, finishReason: 'stop'})
      assertRefused(verdict, new RegExp(`^token id ${bad} is not in the model's vocabulary of ${f32.info.vocabularySize}$`))
    }
  })
})
