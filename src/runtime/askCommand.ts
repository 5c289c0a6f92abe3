import type {RouterCompletion} from '../api/oracleRoutes.js'
import {CortensorError} from '../util/cortensorError.js'

export interface AskOptions {
  api: string
  token?: string
  prompt: string
  /** A registered model's name or id; the oracle's default when absent. */
  model?: string
  mode: string
  redundancy: number
  maxTokens: number
  json: boolean
  out: NodeJS.WritableStream
  err: NodeJS.WritableStream
}

export class AskError extends CortensorError<{code: 'API_ERROR' | 'API_UNREACHABLE', status?: number}> {}

/**
 * `cortensord ask`: one prompt to an oracle's router API. Streams the answer to stdout as
 * the lead miner generates it, then the verdict of the other miners on stderr; `--json`
 * prints the whole response instead.
 */
export async function ask (opts: AskOptions): Promise<number> {
  const body = {prompt: opts.prompt, model: opts.model, mode: opts.mode, redundancy: opts.redundancy, max_tokens: opts.maxTokens, stream: !opts.json}
  let res: Response
  try {
    res = await fetch(new URL('/api/v1/completions', opts.api), {
      method: 'POST',
      headers: {'content-type': 'application/json', ...(opts.token == null ? {} : {authorization: `Bearer ${opts.token}`})},
      body: JSON.stringify(body)
    })
  } catch (err) {
    throw new AskError({code: 'API_UNREACHABLE'}, `cannot reach the oracle at ${opts.api}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`)
  }
  if (!res.ok) {
    const payload = await res.json().catch(() => undefined) as {error?: {code?: string, message?: string}} | undefined
    throw new AskError({code: 'API_ERROR', status: res.status}, `oracle answered ${res.status} ${payload?.error?.code ?? ''}: ${payload?.error?.message ?? res.statusText}`)
  }
  if (opts.json) {
    opts.out.write(`${JSON.stringify(await res.json(), null, 2)}\n`)
    return 0
  }
  let streamed = ''
  for await (const {event, data} of serverSentEvents(res)) {
    if (event === 'token') {
      const {text} = JSON.parse(data) as {text: string}
      streamed += text
      opts.out.write(text)
    } else if (event === 'done') {
      const done = JSON.parse(data) as RouterCompletion
      if (streamed === '' && done.answer != null) opts.out.write(done.answer)
      opts.out.write('\n')
      const agreement = done.agreement == null ? 'no verdict' : `${done.agreement.status} ${done.agreement.agreeing.length}/${done.redundancy}`
      opts.err.write(`task ${done.task_id} · ${done.mode} k=${done.redundancy} · ${agreement} · ${done.timings.total_ms} ms · miners ${done.miners.join(', ')}\n`)
      if (done.agreement != null && done.answer != null && streamed !== '' && streamed !== done.answer) {
        opts.err.write(`note: the streamed text came from a miner the majority disagreed with; the agreed answer is:\n${done.answer}\n`)
      }
      return done.agreement?.status === 'agreed' ? 0 : 1
    } else if (event === 'error') {
      const {error} = JSON.parse(data) as {error: {message: string, code: string, status: number}}
      throw new AskError({code: 'API_ERROR', status: error.status}, `oracle failed the request: ${error.code}: ${error.message}`)
    }
  }
  throw new AskError({code: 'API_ERROR'}, 'the oracle closed the stream without an answer')
}

/** Parses a server-sent-events body into `{event, data}` records. */
async function * serverSentEvents (res: Response): AsyncGenerator<{event: string, data: string}> {
  if (res.body == null) return
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk as Uint8Array, {stream: true})
    for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      let event = 'message'
      const data: string[] = []
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7)
        else if (line.startsWith('data: ')) data.push(line.slice(6))
      }
      yield {event, data: data.join('\n')}
    }
  }
}
