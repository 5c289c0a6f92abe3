import type {Devnet} from '../../src/devnet/devnet.js'
import type {TaskMode} from '../../src/protocols/messages.js'

export interface LoadRequest {
  prompt: string
  maxTokens: number
  mode: TaskMode
  redundancy: number
}

/** One request's fate as a client saw it. */
export interface LoadResult {
  index: number
  /** HTTP status, or 0 when the connection failed (reset, refused). */
  status: number
  /** The API's error code, or the network error's message. */
  code?: string
  taskId?: string
  startedAt: number
  endedAt: number
}

/** `n` requests mixing parallel and competing, k = 1..3, short stories of different lengths. */
export function mixedRequests (n: number, prompts: readonly string[] = ['Once upon a time', 'The little dog', 'Lily wanted to', 'One day, a bird']): LoadRequest[] {
  return Array.from({length: n}, (_, i) => ({
    prompt: prompts[i % prompts.length] as string,
    maxTokens: 16 + (i % 3) * 8,
    mode: i % 4 === 3 ? 'competing' : 'parallel',
    redundancy: 1 + (i % 3)
  }))
}

/**
 * Sends `requests` to the devnet's oracle, `concurrency` at a time, each with a client-side
 * timeout (a hang shows as status 0, code `CLIENT_TIMEOUT`). `onSettled` sees each result as it
 * lands (fault injection hooks in there).
 */
export async function runLoad (devnet: Devnet, requests: readonly LoadRequest[], opts: {concurrency: number, timeoutMs: number, onSettled?: (result: LoadResult, settled: number) => void | Promise<void>}): Promise<LoadResult[]> {
  const results: LoadResult[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    for (let index = next++; index < requests.length; index = next++) {
      const request = requests[index] as LoadRequest
      const startedAt = Date.now()
      let result: LoadResult
      try {
        const res = await fetch(`${devnet.apiUrl}/api/v1/completions`, {
          method: 'POST',
          headers: {'content-type': 'application/json', authorization: `Bearer ${devnet.apiToken}`},
          body: JSON.stringify({prompt: request.prompt, max_tokens: request.maxTokens, mode: request.mode, redundancy: request.redundancy}),
          signal: AbortSignal.timeout(opts.timeoutMs)
        })
        const json = await res.json() as {task_id?: string, error?: {code: string}}
        result = {index, status: res.status, code: json.error?.code, taskId: json.task_id, startedAt, endedAt: Date.now()}
      } catch (err) {
        const code = (err as Error).name === 'TimeoutError' ? 'CLIENT_TIMEOUT' : (err as Error).message
        result = {index, status: 0, code, startedAt, endedAt: Date.now()}
      }
      results.push(result)
      await opts.onSettled?.(result, results.length)
    }
  }
  await Promise.all(Array.from({length: opts.concurrency}, worker))
  return results.sort((a, b) => a.index - b.index)
}

/** Answers per second over the run and latency percentiles of the answered requests. */
export function loadSummary (results: readonly LoadResult[]): {answered: number, failed: number, answersPerSecond: number, p50Ms: number, p99Ms: number} {
  const answered = results.filter(r => r.status === 200)
  const latencies = answered.map(r => r.endedAt - r.startedAt).sort((a, b) => a - b)
  const span = Math.max(1, Math.max(...results.map(r => r.endedAt)) - Math.min(...results.map(r => r.startedAt)))
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN
  return {answered: answered.length, failed: results.length - answered.length, answersPerSecond: answered.length / (span / 1000), p50Ms: at(0.5), p99Ms: at(0.99)}
}
