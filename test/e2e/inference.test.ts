import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'
import {InferenceError} from '../../src/inference/inferenceError.js'
import {LlamaEngine, type CompletionRequest} from '../../src/inference/llamaEngine.js'
import {greedy, type SamplingParams} from '../../src/protocols/messages.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {SHARED_MODEL_PATH, sharedModelAvailable} from '../../src/util/paths.js'

// Real model, real llama.cpp. One thread per slot: the library default oversubscribes a 2-core box ~100×.
const THREADS = 1
const CONTEXT_SIZE = 256
const logger = createSilentLogger()
const PROMPTS = ['Once upon a time', 'The cat sat on the', 'Tom had a big red', 'One day, a little bird']

/** Greedy unless `extra` overrides a sampling setting; seed 42 unless it names one. */
function request (prompt: string, maxTokens = 24, {seed = 42, ...params}: Partial<SamplingParams> & {seed?: number} = {}): CompletionRequest {
  return {prompt, seed, params: {...greedy(maxTokens), ...params}}
}

async function load (sequences: number): Promise<LlamaEngine> {
  return await LlamaEngine.load({modelPath: SHARED_MODEL_PATH, threads: THREADS, sequences, contextSize: CONTEXT_SIZE, logger})
}

async function rejectsWithCode (promise: Promise<unknown>, code: string): Promise<InferenceError> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof InferenceError, `expected InferenceError, got ${String(err)}`)
    assert.equal(err.code, code)
    return err
  }
  assert.fail(`expected ${code}, but it resolved`)
}

describe('LlamaEngine on stories260K', {skip: !sharedModelAvailable() && 'shared model missing'}, () => {
  let solo: LlamaEngine
  let pair: LlamaEngine
  const soloText = new Map<string, string>()

  before(async () => {
    solo = await load(1)
    pair = await load(2)
    for (const prompt of PROMPTS) soloText.set(prompt, (await solo.complete(request(prompt))).text)
  })

  after(async () => {
    await solo?.dispose()
    await pair?.dispose()
  })

  it('greedy continuation matches the model README, across calls and engine instances', async () => {
    const first = await solo.complete(request('Once upon a time', 40))
    assert.ok(first.text.startsWith(', there was a little girl named Lily.'), first.text)
    const again = await solo.complete(request('Once upon a time', 40))
    const otherEngine = await pair.complete(request('Once upon a time', 40))
    // A third instance with the model's default (larger) context: the KV cache size must not matter either.
    const defaultContext = await LlamaEngine.load({modelPath: SHARED_MODEL_PATH, threads: THREADS, logger})
    try {
      assert.ok(defaultContext.contextSize > CONTEXT_SIZE)
      assert.equal((await defaultContext.complete(request('Once upon a time', 40))).text, first.text)
    } finally {
      await defaultContext.dispose()
    }
    assert.equal(again.text, first.text)
    assert.equal(otherEngine.text, first.text)
    assert.equal(first.promptTokens, solo.countTokens('Once upon a time'))
    assert.ok(first.tokensPerSecond > 0 && first.timeToFirstTokenMs <= first.durationMs)
  })

  it('honours maxTokens with finishReason length', async () => {
    for (const maxTokens of [1, 5]) {
      const result = await solo.complete(request('Once upon a time', maxTokens))
      assert.equal(result.finishReason, 'length')
      assert.ok(result.completionTokens <= maxTokens && result.completionTokens > 0, `${result.completionTokens} tokens`)
    }
  })

  it('runs at most `sequences` requests at once, and concurrent outputs equal solo ones', async () => {
    let maxRunning = 0
    let sawQueue = false
    const results = PROMPTS.map(async prompt => await pair.complete(request(prompt), {
      onToken: () => {
        maxRunning = Math.max(maxRunning, pair.running)
        sawQueue ||= pair.queued > 0
      }
    }))
    assert.equal(pair.running, 2)
    assert.equal(pair.queued, 2)
    const texts = (await Promise.all(results)).map(r => r.text)
    assert.deepEqual(texts, PROMPTS.map(p => soloText.get(p)))
    assert.equal(maxRunning, 2)
    assert.ok(sawQueue)
    assert.equal(pair.running, 0)
  })

  it('streamed chunks concatenate to the non-streamed text', async () => {
    const stream = solo.stream(request('Once upon a time', 40))
    let text = ''
    let tokens = 0
    for await (const chunk of stream) {
      text += chunk.text
      tokens += chunk.tokens.length
    }
    const result = await stream.result
    const direct = await solo.complete(request('Once upon a time', 40))
    assert.equal(text, direct.text)
    assert.equal(result.text, direct.text)
    assert.equal(tokens, direct.completionTokens)
  })

  it('aborting mid-stream ends it with finishReason abort and frees the slot for the queued request', async () => {
    const controller = new AbortController()
    const stream = solo.stream(request('Once upon a time', 200), {signal: controller.signal})
    const queued = solo.complete(request('The cat sat on the'))
    assert.equal(solo.queued, 1)
    let chunks = 0
    for await (const _chunk of stream) {
      if (++chunks === 3) controller.abort(new Error('user went away'))
    }
    const aborted = await stream.result
    assert.equal(aborted.finishReason, 'abort')
    assert.ok(aborted.completionTokens < 200, `${aborted.completionTokens} tokens after abort`)
    const next = await queued
    assert.equal(next.text, soloText.get('The cat sat on the'))
  })

  it('breaking out of a stream stops generation', async () => {
    const stream = solo.stream(request('Once upon a time', 200))
    for await (const _chunk of stream) break
    const result = await stream.result
    assert.equal(result.finishReason, 'abort')
    assert.equal(solo.running, 0)
  })

  it('a request aborted while queued never runs', async () => {
    const running = solo.complete(request('Once upon a time', 100))
    const controller = new AbortController()
    let ranTokens = 0
    const waiting = solo.complete(request('The cat sat on the'), {signal: controller.signal, onToken: () => { ranTokens++ }})
    const afterIt = solo.complete(request('Tom had a big red'))
    assert.equal(solo.queued, 2)
    controller.abort(new Error('not needed any more'))
    const err = await rejectsWithCode(waiting, 'ABORTED')
    assert.match(err.message, /queued/)
    assert.equal(solo.queued, 1)
    assert.equal((await running).finishReason, 'length')
    assert.equal((await afterIt).text, soloText.get('Tom had a big red'))
    assert.equal(ranTokens, 0)
  })

  it('rejects an over-long prompt with PROMPT_TOO_LONG and keeps answering', async () => {
    const prompt = 'Once upon a time there was a cat. '.repeat(40)
    assert.ok(solo.countTokens(prompt) >= solo.contextSize)
    const err = await rejectsWithCode(solo.complete(request(prompt)), 'PROMPT_TOO_LONG')
    assert.deepEqual(err.type, {code: 'PROMPT_TOO_LONG', promptTokens: solo.countTokens(prompt), contextSize: CONTEXT_SIZE})
    await rejectsWithCode((async () => { for await (const _ of solo.stream(request(prompt))) ; })(), 'PROMPT_TOO_LONG')
    assert.equal((await solo.complete(request('The cat sat on the'))).text, soloText.get('The cat sat on the'))
  })

  it('stops at the end of the context with finishReason length', async () => {
    const prompt = 'Once upon a time there was a cat. '.repeat(20)
    const room = solo.contextSize - solo.countTokens(prompt)
    assert.ok(room > 0 && room < 100, `room ${room}`)
    const result = await solo.complete(request(prompt, 500))
    assert.ok(result.completionTokens <= room)
    assert.ok(result.finishReason === 'length' || result.finishReason === 'stop')
  })

  it('refuses invalid requests with INVALID_REQUEST', async () => {
    await rejectsWithCode(solo.complete(request('x', 0)), 'INVALID_REQUEST')
    await rejectsWithCode(solo.complete(request('x', 5, {temperature: -1})), 'INVALID_REQUEST')
    await rejectsWithCode(solo.complete(request('x', 5, {seed: 1.5})), 'INVALID_REQUEST')
  })

  it('sampling with temperature is reproducible for a seed', async () => {
    const sampled = async (seed: number): Promise<string> => (await solo.complete(request('Once upon a time', 30, {temperature: 1, topK: 40, topP: 0.95, seed}))).text
    const a = await sampled(7)
    assert.equal(await sampled(7), a)
    const others = [await sampled(8), await sampled(9), await sampled(10)]
    assert.ok(others.some(text => text !== a), 'different seeds gave identical samples')
  })

  it('scoreTokens separates the model\'s own output from shuffled and random text', async () => {
    const prompt = 'Once upon a time'
    const honest = soloText.get(prompt) ?? ''
    const words = honest.split(' ')
    const shuffled = words.map((_, i) => words[(i * 7 + 3) % words.length]).join(' ')
    const random = 'qz xv blorp kwyth zzub gnar fesh plon vrik tamble oog'
    const [h, s, r] = [await solo.scoreTokens(prompt, honest), await solo.scoreTokens(prompt, shuffled), await solo.scoreTokens(prompt, random)]
    assert.ok(h.meanLogProbability > -1, `honest ${h.meanLogProbability}`)
    assert.ok(h.meanLogProbability - s.meanLogProbability > 1, `honest ${h.meanLogProbability} vs shuffled ${s.meanLogProbability}`)
    assert.ok(h.meanLogProbability - r.meanLogProbability > 2, `honest ${h.meanLogProbability} vs random ${r.meanLogProbability}`)
    assert.equal(h.tokenLogProbabilities.length, h.scoredTokens)
    await rejectsWithCode(solo.scoreTokens(prompt, ''), 'INVALID_REQUEST')
    await rejectsWithCode(solo.scoreTokens(prompt, 'and then '.repeat(200)), 'PROMPT_TOO_LONG')
  })

  it('dispose fails queued requests, ends running ones with abort, and refuses new ones', async () => {
    const engine = await load(1)
    const running = engine.complete(request('Once upon a time', 200))
    const waiting = rejectsWithCode(engine.complete(request('The cat sat on the')), 'ENGINE_DISPOSED')
    await engine.dispose()
    assert.equal((await running).finishReason, 'abort')
    await waiting
    await rejectsWithCode(engine.complete(request('x')), 'ENGINE_DISPOSED')
  })
})
