import type {ServerResponse} from 'node:http'

export interface SseWriter {
  /** One event; strings go as they are (`[DONE]`), anything else as JSON. */
  send: (data: unknown, event?: string) => void
  end: () => void
}

export interface LazySseWriter extends SseWriter {
  /** Whether headers went out: until then a failure can still answer with its own status. */
  readonly opened: boolean
}

/** One server-sent event as it goes on the wire; a multi-line string becomes several `data:` lines. */
export function sseEvent (data: unknown, event?: string): string {
  const text = typeof data === 'string' ? data : JSON.stringify(data, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v)
  return `${event == null ? '' : `event: ${event}\n`}${text.split('\n').map(line => `data: ${line}\n`).join('')}\n`
}

/** Opens a server-sent-events response (what OpenAI clients and EventSource read). */
export function openSse (res: ServerResponse): SseWriter {
  res.writeHead(200, {'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no'})
  res.flushHeaders()
  return {
    // A client gone mid-stream is not an error here: the request's signal already cancelled the work.
    send: (data, event) => { if (!res.writableEnded && !res.destroyed) res.write(sseEvent(data, event)) },
    end: () => { if (!res.writableEnded) res.end() }
  }
}

/**
 * An SSE response that sends its headers with the first event, so a request refused before it
 * produced anything answers with its real status and JSON error. `preamble` sends what must
 * precede the first event (OpenAI's role chunk).
 */
export function lazySse (res: ServerResponse, preamble: (send: (data: unknown) => void) => void = () => {}): LazySseWriter {
  let sse: SseWriter | undefined
  const writer = (): SseWriter => {
    if (sse == null) {
      sse = openSse(res)
      preamble(sse.send)
    }
    return sse
  }
  return {
    get opened () { return sse != null },
    send: (data, event) => { writer().send(data, event) },
    // Ending an unopened stream is the caller's error path: httpApi answers with the error.
    end: () => { sse?.end() }
  }
}
