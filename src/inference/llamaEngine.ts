import {LlamaCompletion, type LlamaContext, type LlamaContextSequence, type LlamaGpuType, type LlamaModel, type Token} from 'node-llama-cpp'
import type {SamplingParams} from '../protocols/messages.js'
import {withCallerSignal} from '../util/abortable.js'
import type {Logger} from '../util/logger.js'
import {getSharedLlama} from './getSharedLlama.js'
import type {InferenceEngine} from './inferenceEngine.js'
import {InferenceError} from './inferenceError.js'
import {promptTokensOf} from './promptTokens.js'
import {scoreOnSequence, type TokenScore} from './scoreTokens.js'
import {SlotPool} from './slotPool.js'
import {createTokenStream, type OnToken, type TokenChunk, type TokenStream} from './tokenStream.js'

export interface LlamaEngineOptions {
  modelPath: string
  /** CPU threads per running request; peak use is threads × sequences. Always set it: the library default oversubscribes small machines badly. */
  threads: number
  /** Tokens per request (prompt + output); defaults to the model's training context, capped at DEFAULT_MAX_CONTEXT_SIZE. */
  contextSize?: number
  /** Requests that run at once; the rest wait in a FIFO queue. */
  sequences?: number
  /** Offload to a GPU through an already installed prebuilt binary; never downloads or builds. */
  gpu?: boolean
  logger: Logger
  signal?: AbortSignal
}

export const DEFAULT_MAX_CONTEXT_SIZE = 4096

export interface CompletionRequest {
  /** Raw text to continue: no chat template is applied. */
  prompt: string
  /** Sampling seed; only matters when temperature > 0. */
  seed: number
  /** Temperature 0 is greedy: always the most likely token, byte-identical across runs. */
  params: SamplingParams
}

export type FinishReason = 'stop' | 'length' | 'abort'

export interface CompletionResult {
  text: string
  /** The generated token ids, in order: what a verifier scores (re-tokenizing `text` need not give them back). */
  tokens: number[]
  /** Tokens the prompt occupies in the context, beginning-of-sequence token included. */
  promptTokens: number
  completionTokens: number
  /** 'stop': end-of-generation token; 'length': maxTokens or the context is full; 'abort': the signal fired while generating. */
  finishReason: FinishReason
  /** From getting a slot to the last token (queue wait excluded, see queuedMs). */
  durationMs: number
  /** From getting a slot to the first generated token: prompt evaluation plus one decode step. */
  timeToFirstTokenMs: number
  /** completionTokens over durationMs. */
  tokensPerSecond: number
  queuedMs: number
}

export interface CompleteOptions {
  /**
   * Aborting while queued rejects with InferenceError `ABORTED` (the request never ran);
   * aborting while generating stops after the current token and resolves with the text so
   * far and finishReason 'abort'.
   */
  signal?: AbortSignal
  onToken?: OnToken
}

export interface LlamaEngineInfo {
  modelPath: string
  trainContextSize: number
  contextSize: number
  vocabularySize: number
  hasChatTemplate: boolean
  /** The end-of-generation token: a verifier checks that an output claimed to have stopped early could stop there. */
  endOfGenerationToken: number | null
  threads: number
  sequences: number
  /** The compute backend llama.cpp actually got (false: CPU), which with `gpu: true` depends on the binaries installed. */
  gpu: LlamaGpuType
}

/**
 * One slot per concurrent request, each with its own context. Separate contexts (rather than
 * several sequences of one context) keep every request in its own llama_decode batches:
 * node-llama-cpp batches the tokens of all sequences of a context together, and a batch's
 * shape can change the float results on some backends, so greedy output could depend on
 * what else was running. Here it cannot.
 */
interface Slot {
  context: LlamaContext
  sequence: LlamaContextSequence
  completion: LlamaCompletion
}

const FINISH_REASONS: Record<string, FinishReason> = {
  eogToken: 'stop',
  stopGenerationTrigger: 'stop',
  customStopTrigger: 'stop',
  maxTokens: 'length',
  abort: 'abort'
}

function positiveInteger (name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new InferenceError({code: 'INVALID_REQUEST', reason: `${name} must be a positive integer, got ${value}`})
  return value
}

/**
 * The node-llama-cpp engine a miner's inference actor owns: raw-text completion with bounded
 * concurrency, deterministic greedy decoding, streaming, cancellation and teacher-forced
 * scoring. Every request starts on a cleared sequence, so no request sees another's tokens.
 */
export class LlamaEngine implements InferenceEngine {
  private readonly pool: SlotPool<Slot>
  private readonly shutdown = new AbortController()
  private readonly inFlight = new Set<Promise<unknown>>()
  private disposing: Promise<void> | undefined

  private constructor (
    private readonly model: LlamaModel,
    private readonly slots: readonly Slot[],
    readonly info: LlamaEngineInfo,
    private readonly log: Logger
  ) {
    this.pool = new SlotPool(slots)
  }

  static async load (options: LlamaEngineOptions): Promise<LlamaEngine> {
    const {modelPath, gpu = false, logger, signal} = options
    const threads = positiveInteger('threads', options.threads)
    const sequences = positiveInteger('sequences', options.sequences ?? 1)
    const log = logger.child({component: 'inference'})
    signal?.throwIfAborted()
    const llama = await getSharedLlama({gpu, logger})
    signal?.throwIfAborted()
    let model: LlamaModel
    try {
      model = await llama.loadModel({modelPath, gpuLayers: gpu ? 'auto' : 0, loadSignal: signal})
    } catch (err) {
      if (signal?.aborted === true) throw err
      throw new InferenceError({code: 'MODEL_LOAD_FAILED', modelPath}, `cannot load model ${modelPath}: ${(err as Error).message}`, {cause: err})
    }
    const slots: Slot[] = []
    try {
      const contextSize = options.contextSize === undefined
        ? Math.min(model.trainContextSize, DEFAULT_MAX_CONTEXT_SIZE)
        : positiveInteger('contextSize', options.contextSize)
      for (let i = 0; i < sequences; i++) {
        const context = await model.createContext({contextSize, sequences: 1, threads, createSignal: signal})
        const sequence = context.getSequence()
        slots.push({context, sequence, completion: new LlamaCompletion({contextSequence: sequence})})
      }
    } catch (err) {
      for (const slot of slots) await slot.context.dispose()
      await model.dispose()
      throw err
    }
    const metadata = model.fileInfo.metadata
    const info: LlamaEngineInfo = {
      modelPath,
      trainContextSize: model.trainContextSize,
      contextSize: slots[0]?.context.contextSize ?? 0,
      vocabularySize: metadata.tokenizer.ggml.tokens.length,
      hasChatTemplate: metadata.tokenizer.chat_template !== undefined,
      endOfGenerationToken: model.tokens.eos,
      threads,
      sequences,
      gpu: llama.gpu
    }
    log.info({info}, 'inference engine ready')
    return new LlamaEngine(model, slots, info, log)
  }

  /** Largest prompt + output of one request, in tokens. */
  get contextSize (): number {
    return this.info.contextSize
  }

  /** Requests holding a slot (at most `sequences`). */
  get running (): number {
    return this.pool.inUse
  }

  /** Requests waiting for a slot. */
  get queued (): number {
    return this.pool.queued
  }

  /**
   * Tokens `text` occupies as a prompt (beginning-of-sequence token included). A prompt fits
   * when this is below contextSize: at least one token of room must be left to generate.
   */
  countTokens (text: string): number {
    return this.promptTokens(text).length
  }

  async complete (request: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResult> {
    const promptTokens = this.validate(request)
    return await this.track(this.withSlot(options.signal, async (slot, signal, queuedMs) =>
      await this.generate(slot, request, promptTokens, signal, queuedMs, options.onToken)))
  }

  /** `complete` as an AsyncIterable; see TokenStream for how it ends. */
  stream (request: CompletionRequest, options: {signal?: AbortSignal} = {}): TokenStream & {readonly result: Promise<CompletionResult>} {
    return createTokenStream(async ({signal, onToken}) => await this.complete(request, {signal, onToken}), options.signal)
  }

  /**
   * Teacher-forced scoring (DESIGN.md, consensus and verification): how likely the model finds
   * each claimed token after the prompt and the tokens before it, in one evaluation. A verifier
   * compares a miner's claimed output with what the model itself would produce.
   */
  async scoreTokens (prompt: string, claimedOutput: string | readonly number[], options: {signal?: AbortSignal} = {}): Promise<TokenScore> {
    this.assertOpen()
    const promptTokens = this.promptTokens(prompt)
    const outputTokens = typeof claimedOutput === 'string' ? this.model.tokenize(claimedOutput, false, 'trimLeadingSpace') : claimedOutput as Token[]
    if (promptTokens.length === 0) throw new InferenceError({code: 'INVALID_REQUEST', reason: 'this model has no beginning-of-sequence token, so the prompt must not be empty'})
    if (outputTokens.length === 0) throw new InferenceError({code: 'INVALID_REQUEST', reason: 'the claimed output is empty: nothing to score'})
    const vocabulary = this.info.vocabularySize
    const outside = outputTokens.find(t => !Number.isInteger(t) || t < 0 || t >= vocabulary)
    if (outside !== undefined) throw new InferenceError({code: 'INVALID_REQUEST', reason: `token ${outside} is not in this model's vocabulary of ${vocabulary}`})
    const total = promptTokens.length + outputTokens.length
    if (total > this.contextSize) throw this.tooLong(total)
    return await this.track(this.withSlot(options.signal, async (slot) => await scoreOnSequence(slot.sequence, promptTokens, outputTokens)))
  }

  /** The text of generated token ids, exactly as `complete` returns it for them. */
  detokenize (tokens: readonly number[]): string {
    return this.model.detokenize(tokens as Token[])
  }

  /** Fails queued requests, stops running ones (they end with 'abort'), then frees the native memory. */
  async dispose (): Promise<void> {
    this.disposing ??= (async () => {
      this.pool.close()
      this.shutdown.abort(new InferenceError({code: 'ENGINE_DISPOSED'}))
      await Promise.allSettled(this.inFlight)
      for (const slot of this.slots) {
        slot.completion.dispose()
        await slot.context.dispose()
      }
      await this.model.dispose()
      this.log.info('inference engine disposed')
    })()
    await this.disposing
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.dispose()
  }

  private promptTokens (text: string): Token[] {
    return promptTokensOf(this.model, text)
  }

  private validate (request: CompletionRequest): Token[] {
    this.assertOpen()
    const {maxTokens, temperature, topK, topP} = request.params
    positiveInteger('maxTokens', maxTokens)
    if (!Number.isInteger(request.seed) || request.seed < 0 || request.seed > 0xffffffff) throw new InferenceError({code: 'INVALID_REQUEST', reason: `seed must be an integer in [0, 2^32), got ${request.seed}`})
    if (!Number.isFinite(temperature) || temperature < 0) throw new InferenceError({code: 'INVALID_REQUEST', reason: `temperature must be ≥ 0, got ${temperature}`})
    if (!Number.isInteger(topK) || topK < 0) throw new InferenceError({code: 'INVALID_REQUEST', reason: `topK must be an integer ≥ 0, got ${topK}`})
    if (!(topP > 0 && topP <= 1)) throw new InferenceError({code: 'INVALID_REQUEST', reason: `topP must be in (0, 1], got ${topP}`})
    const promptTokens = this.promptTokens(request.prompt)
    if (promptTokens.length >= this.contextSize) throw this.tooLong(promptTokens.length)
    return promptTokens
  }

  private tooLong (promptTokens: number): InferenceError {
    return new InferenceError({code: 'PROMPT_TOO_LONG', promptTokens, contextSize: this.contextSize},
      `prompt is ${promptTokens} tokens; the context holds ${this.contextSize} (prompt + output)`)
  }

  private assertOpen (): void {
    if (this.disposing !== undefined) throw new InferenceError({code: 'ENGINE_DISPOSED'})
  }

  /** Waits for a slot (FIFO, abortable), runs `work` on a cleared sequence, and frees the slot however `work` ends. */
  private async withSlot<R> (callerSignal: AbortSignal | undefined, work: (slot: Slot, signal: AbortSignal, queuedMs: number) => Promise<R>): Promise<R> {
    const queuedAt = performance.now()
    const slot = await this.pool.acquire(callerSignal)
    try {
      const signal = withCallerSignal(this.shutdown.signal, callerSignal)
      // Cleared before use rather than after: whatever the previous holder left (an abort, a native error), this request starts from nothing.
      await slot.sequence.clearHistory()
      return await work(slot, signal, performance.now() - queuedAt)
    } finally {
      this.pool.release(slot)
    }
  }

  private async track<R> (promise: Promise<R>): Promise<R> {
    this.inFlight.add(promise)
    try {
      return await promise
    } finally {
      this.inFlight.delete(promise)
    }
  }

  private async generate (slot: Slot, request: CompletionRequest, promptTokens: Token[], signal: AbortSignal, queuedMs: number, onToken: OnToken | undefined): Promise<CompletionResult> {
    const startedAt = performance.now()
    let firstTokenAt: number | undefined
    let text = ''
    const tokens: number[] = []
    let chunkTokens: readonly Token[] = []
    const finish = (finishReason: FinishReason, finalText: string): CompletionResult => {
      const durationMs = performance.now() - startedAt
      const result = {
        text: finalText,
        tokens,
        promptTokens: promptTokens.length,
        completionTokens: tokens.length,
        finishReason,
        durationMs,
        timeToFirstTokenMs: (firstTokenAt ?? performance.now()) - startedAt,
        tokensPerSecond: durationMs > 0 ? tokens.length / (durationMs / 1000) : 0,
        queuedMs
      }
      this.log.debug({promptTokens: result.promptTokens, completionTokens: tokens.length, finishReason, durationMs, queuedMs}, 'completion finished')
      return result
    }
    const hasBos = this.model.tokens.shouldPrependBosToken
    try {
      const {response, metadata} = await slot.completion.generateCompletionWithMeta(hasBos ? promptTokens.slice(1) : promptTokens, {
        // Room left in the context; with context shift disabled generation stops there ('length')
        // instead of silently dropping the start of the prompt.
        maxTokens: Math.min(request.params.maxTokens, this.contextSize - promptTokens.length),
        disableContextShift: true,
        contextShiftSize: 0,
        temperature: request.params.temperature,
        topK: request.params.topK,
        topP: request.params.topP,
        seed: request.seed,
        // LlamaCompletion applies a repeat penalty by default; greedy here means the plain argmax.
        repeatPenalty: false,
        signal,
        stopOnAbortSignal: true,
        // The library reports a chunk's tokens just before its text, for the same tokens.
        onToken: tokens => { chunkTokens = tokens },
        onTextChunk: chunkText => {
          firstTokenAt ??= performance.now()
          tokens.push(...chunkTokens)
          text += chunkText
          if (onToken === undefined) return
          try {
            onToken(chunkText, {text: chunkText, tokens: chunkTokens} satisfies TokenChunk)
          } catch (err) {
            this.log.warn({err}, 'onToken callback threw; generation goes on')
          }
        }
      })
      return finish(FINISH_REASONS[metadata.stopReason] ?? 'stop', response)
    } catch (err) {
      // Aborted between getting the slot and the first token: the library throws instead of returning.
      if (signal.aborted) return finish('abort', text)
      throw new InferenceError({code: 'GENERATION_FAILED'}, `generation failed: ${(err as Error).message}`, {cause: err})
    }
  }
}
