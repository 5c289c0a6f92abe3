import type {ControlledEvaluateInputItem, LlamaContextSequence, Token} from 'node-llama-cpp'

/** How likely the model finds a claimed output after a prompt (teacher forcing). */
export interface TokenScore {
  /** Mean natural-log probability per output token: near 0 for the model's own greedy text, far below for invented text. */
  meanLogProbability: number
  /** ln p(token | prompt, previous output tokens) for each output token. */
  tokenLogProbabilities: number[]
  promptTokens: number
  scoredTokens: number
}

/**
 * A token the model gives (float) probability 0 would turn the mean into -Infinity and hide
 * how the rest of the output scored; it counts as this floor instead (ln 1e-10 ≈ -23).
 */
const MIN_PROBABILITY = 1e-10

/**
 * Evaluates prompt + output in one pass on a clean sequence and reads, at each position from
 * the last prompt token on, the model's probability of the next claimed token. Uses the full
 * probability vector (`generateNext.probabilities`): the logits filter of node-llama-cpp 3.22
 * does not return the maximum logit it is asked for, so a normalised value cannot be
 * rebuilt from it.
 */
export async function scoreOnSequence (sequence: LlamaContextSequence, promptTokens: readonly Token[], outputTokens: readonly Token[]): Promise<TokenScore> {
  const input = [...promptTokens, ...outputTokens.slice(0, -1)]
  const firstScored = promptTokens.length - 1
  const items: ControlledEvaluateInputItem[] = input.map((token, index) =>
    index >= firstScored ? [token, {generateNext: {probabilities: true}}] : token)
  const outputs = await sequence.controlledEvaluate(items)
  const tokenLogProbabilities = outputTokens.map((token, offset) => {
    const probability = outputs[firstScored + offset]?.next.probabilities?.get(token) ?? 0
    return Math.log(Math.max(probability, MIN_PROBABILITY))
  })
  return {
    meanLogProbability: tokenLogProbabilities.reduce((sum, value) => sum + value, 0) / tokenLogProbabilities.length,
    tokenLogProbabilities,
    promptTokens: promptTokens.length,
    scoredTokens: outputTokens.length
  }
}
