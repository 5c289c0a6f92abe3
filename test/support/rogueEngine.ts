import {keccak256, toUtf8Bytes} from 'ethers'
import type {InferenceEngine} from '../../src/inference/inferenceEngine.js'
import type {CompleteOptions, CompletionRequest, CompletionResult, LlamaEngine} from '../../src/inference/llamaEngine.js'
import {editedTokens, inventedTokens, prng, wordTokens} from './attacks.js'

/**
 * How a rogue test miner lies (issue 11). Every rogue runs the project's own miner (protocol,
 * chain, streams); only its engine differs:
 * - `invented`: skips inference and returns random words (seeded by the prompt, so colluders
 *   running it agree on the same lie); also the lazy competitor (it answers first).
 * - `edited`: honest output with every 5th token replaced.
 * - `replay`: the honest answer to another prompt.
 * - `swapped`: runs the Q4 file but declares the F32 class (load it with the Q4 path).
 * - `streamDiffers`: streams honest tokens, then hands in invented ones as its result.
 * - `gpuHonest`: honest, on the Q4 file, declaring a GPU backend of the F32 model: the stand-in
 *   for an honest miner of another hardware class.
 */
export const ROGUE_BEHAVIOURS = ['invented', 'edited', 'replay', 'swapped', 'streamDiffers', 'gpuHonest'] as const
export type RogueBehaviour = typeof ROGUE_BEHAVIOURS[number]

const REPLAY_PROMPT = 'One day a little bird'

export function rogueEngine (behaviour: RogueBehaviour, real: LlamaEngine, declaredClass?: string): InferenceEngine {
  const words = wordTokens(real)
  const lie = (request: CompletionRequest): number[] => inventedTokens(words, request.params.maxTokens, prng(Number(BigInt(keccak256(toUtf8Bytes(request.prompt))) & 0xffffffffn)))
  const made = (tokens: number[], base: Pick<CompletionResult, 'promptTokens' | 'queuedMs'>): CompletionResult => ({
    text: real.detokenize(tokens), tokens, promptTokens: base.promptTokens, completionTokens: tokens.length, finishReason: 'length',
    durationMs: 1, timeToFirstTokenMs: 1, tokensPerSecond: tokens.length * 1000, queuedMs: base.queuedMs
  })
  // Each piece is what it adds to the text so far, as node-llama-cpp streams: the pieces join to the whole.
  const streamAll = (tokens: number[], options: CompleteOptions): void => {
    let before = ''
    tokens.forEach((token, i) => {
      const now = real.detokenize(tokens.slice(0, i + 1))
      const text = now.slice(before.length)
      before = now
      options.onToken?.(text, {text, tokens: [token]})
    })
  }
  const complete = async (request: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResult> => {
    switch (behaviour) {
      case 'invented': {
        const tokens = lie(request)
        // Streamed piece by piece like real output; detokenized whole, word pieces join the same way.
        streamAll(tokens, options)
        return made(tokens, {promptTokens: real.countTokens(request.prompt), queuedMs: 0})
      }
      case 'edited': {
        const honest = await real.complete(request, {signal: options.signal})
        const tokens = editedTokens(honest.tokens, words, prng(7))
        streamAll(tokens, options)
        return made(tokens, honest)
      }
      case 'replay': {
        const other = await real.complete({...request, prompt: request.prompt === REPLAY_PROMPT ? 'Once upon a time' : REPLAY_PROMPT}, {signal: options.signal})
        streamAll(other.tokens, options)
        return made(other.tokens, other)
      }
      case 'streamDiffers': {
        const honest = await real.complete(request, options)
        return made(lie(request), honest)
      }
      case 'swapped':
      case 'gpuHonest':
        return await real.complete(request, options)
    }
  }
  return {
    get info () { return real.info },
    get running () { return real.running },
    get queued () { return real.queued },
    determinismClass: declaredClass,
    complete,
    dispose: async () => { await real.dispose() }
  }
}
