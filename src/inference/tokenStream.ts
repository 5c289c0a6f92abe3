import {withCallerSignal} from '../util/abortable.js'

/** One piece of generated text and the tokens it decodes from (several when a character spans tokens). */
export interface TokenChunk {
  text: string
  tokens: readonly number[]
}

export type OnToken = (text: string, chunk: TokenChunk) => void

/**
 * Generated tokens as they come; `result` settles with the same value `complete` would give
 * (finishReason 'abort' when the caller's signal fired or the consumer stopped reading).
 */
export interface TokenStream extends AsyncIterable<TokenChunk> {
  readonly result: Promise<unknown>
}

/**
 * Turns a push-style run (`onToken` callbacks) into a pull-style stream. The run starts at
 * once and buffers what is not read yet (at most maxTokens chunks). Leaving the `for await`
 * early aborts the run, so a dropped consumer frees its slot. A refusal (an over-long prompt,
 * an abort while queued) is thrown from the iteration as well as from `result`.
 */
export function createTokenStream<R> (
  run: (options: {signal: AbortSignal, onToken: OnToken}) => Promise<R>,
  signal?: AbortSignal
): TokenStream & {readonly result: Promise<R>} {
  const stopReading = new AbortController()
  const runSignal = withCallerSignal(stopReading.signal, signal)
  const buffer: TokenChunk[] = []
  let settled = false
  let wake: (() => void) | undefined
  const notify = (): void => {
    const resume = wake
    wake = undefined
    resume?.()
  }

  const result = run({signal: runSignal, onToken: (_text, chunk) => { buffer.push(chunk); notify() }})
  // Marks the rejection handled for callers that only iterate; awaiting `result` still rejects.
  result.catch(() => {})
  result.finally(() => { settled = true; notify() }).catch(() => {})

  async function * chunks (): AsyncGenerator<TokenChunk, void, undefined> {
    try {
      while (true) {
        const chunk = buffer.shift()
        if (chunk !== undefined) {
          yield chunk
          continue
        }
        if (settled) break
        await new Promise<void>(resolve => { wake = resolve })
      }
      await result
    } finally {
      if (!settled) stopReading.abort(new Error('stream consumer stopped reading'))
    }
  }

  const iterator = chunks()
  return {result, [Symbol.asyncIterator]: () => iterator}
}
