import type {ControlledEvaluateInputItem, LlamaContextSequence, Token} from 'node-llama-cpp'

/** How likely the model finds a claimed output after a prompt (teacher forcing), token by token. */
export interface TokenScore {
  /** Mean natural-log probability per output token: near 0 for the model's own greedy text, far below for invented text. */
  meanLogProbability: number
  /** ln p(token | prompt, previous output tokens) for each output token. */
  tokenLogProbabilities: number[]
  /** Rank of each claimed token in the model's distribution at its position: 0 is the model's own greedy choice. */
  ranks: number[]
  /** ln p of the model's most likely token at each position: with `tokenLogProbabilities`, how far a miss was from a tie. */
  topLogProbabilities: number[]
  /**
   * At each position, the probability mass of the tokens the model finds more likely than the
   * claimed one: a top-p P sampler can pick the token only when this is below P (llama.cpp
   * applies top-p before temperature, so the mass is taken at temperature 1).
   */
  massAbove: number[]
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
 * the last prompt token on, the model's distribution over the next token. Uses the full
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
  const score: TokenScore = {meanLogProbability: 0, tokenLogProbabilities: [], ranks: [], topLogProbabilities: [], massAbove: [], promptTokens: promptTokens.length, scoredTokens: outputTokens.length}
  outputTokens.forEach((token, offset) => {
    const probabilities = outputs[firstScored + offset]?.next.probabilities ?? new Map<Token, number>()
    const claimed = probabilities.get(token) ?? 0
    let rank = 0
    let top = 0
    let above = 0
    let total = 0
    for (const p of probabilities.values()) {
      total += p
      if (p > top) top = p
      if (p > claimed) {
        rank++
        above += p
      }
    }
    score.tokenLogProbabilities.push(Math.log(Math.max(claimed, MIN_PROBABILITY)))
    score.ranks.push(rank)
    score.topLogProbabilities.push(Math.log(Math.max(top, MIN_PROBABILITY)))
    score.massAbove.push(total > 0 ? above / total : 1)
  })
  score.meanLogProbability = score.tokenLogProbabilities.reduce((sum, value) => sum + value, 0) / outputTokens.length
  return score
}
