import type {Devnet} from '../../src/devnet/devnet.js'

export interface TimedStream {
  /** From the request to the first non-empty text chunk. */
  firstMs: number
  /** From the request to the end of the stream. */
  totalMs: number
  text: string
}

/**
 * Streams one completion through the devnet oracle's OpenAI route (`/v1/completions`, SSE) and
 * times the first non-empty text chunk and the end: what the benchmarks compare.
 */
export async function streamedCompletion (devnet: Pick<Devnet, 'apiUrl' | 'apiToken'>, body: {prompt: string, max_tokens: number, redundancy: number}): Promise<TimedStream> {
  const t0 = performance.now()
  const res = await fetch(`${devnet.apiUrl}/v1/completions`, {
    method: 'POST',
    headers: {'content-type': 'application/json', authorization: `Bearer ${devnet.apiToken}`},
    body: JSON.stringify({...body, stream: true})
  })
  if (!res.ok || res.body == null) throw new Error(`oracle answered ${res.status}: ${await res.text()}`)
  let firstMs = NaN
  let text = ''
  let buffer = ''
  const decoder = new TextDecoder()
  for await (const bytes of res.body) {
    buffer += decoder.decode(bytes as Uint8Array, {stream: true})
    for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
      const data = buffer.slice(6, end)
      buffer = buffer.slice(end + 2)
      if (data === '[DONE]') continue
      const piece = (JSON.parse(data) as {choices: Array<{text: string}>}).choices[0]?.text ?? ''
      if (piece !== '' && Number.isNaN(firstMs)) firstMs = performance.now() - t0
      text += piece
    }
  }
  return {firstMs, totalMs: performance.now() - t0, text}
}
