import type {LlamaEngine} from '../../src/inference/llamaEngine.js'

/**
 * What lying miners hand in instead of honest work, built from real outputs of the project's
 * engine: the attacks of issue 11, shared by the rogue miner (test/support/rogueEngine.ts) and
 * the detection benchmark (`npm run bench -- verify`).
 */
export type Attack = 'invented' | 'edited' | 'replay'

/** A small deterministic PRNG (mulberry32): attacks are reproducible for a seed. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Token ids of whole words (SentencePiece `▁` starts): invented text made of them reads as words, not byte noise. */
export function wordTokens (engine: LlamaEngine): number[] {
  const words: number[] = []
  for (let id = 0; id < engine.info.vocabularySize; id++) {
    // A lone token loses its leading space when detokenized; a doubled word token keeps the second one.
    const text = engine.detokenize([id])
    if (/^[a-z]{2,}$/.test(text) && engine.detokenize([id, id]) === `${text} ${text}`) words.push(id)
  }
  return words
}

/** `length` random words: what a miner that skips inference returns. */
export function inventedTokens (words: readonly number[], length: number, random: () => number): number[] {
  return Array.from({length}, () => words[Math.floor(random() * words.length)] as number)
}

/** Honest output with every 5th token replaced by a random word (a lie hidden in real text). */
export function editedTokens (honest: readonly number[], words: readonly number[], random: () => number): number[] {
  return honest.map((token, i) => i % 5 === 4 ? words[Math.floor(random() * words.length)] as number : token)
}

/** Prompts for calibration and benchmarks: story openings the stories model continues fluently. */
export function storyPrompts (count: number): string[] {
  const openings = ['Once upon a time', 'One day', 'There was a', 'Lily and Tom', 'The little dog', 'In the park', 'Mom said', 'The big red ball', 'Ben had a', 'Sara wanted to']
  const middles = ['', ' a girl named Amy', ' a happy cat', ' the sun', ' a small boat', ' an old tree', ' a funny bird', ' the king', ' a blue car', ' two friends']
  const prompts: string[] = []
  for (let i = 0; prompts.length < count; i++) prompts.push(`${openings[i % openings.length]}${middles[Math.floor(i / openings.length) % middles.length]}`)
  return prompts
}
