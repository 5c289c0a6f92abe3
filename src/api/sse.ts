import type {ServerResponse} from 'node:http'

export interface SseWriter {
  /** One event; objects are sent as JSON. */
  send: (data: unknown, event?: string) => void
  end: () => void
}

/** Opens a server-sent-events response (what OpenAI clients and EventSource read). */
export function openSse (res: ServerResponse): SseWriter {
  res.writeHead(200, {'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no'})
  res.flushHeaders()
  return {
    send: (data, event) => {
      if (res.writableEnded) return
      const text = typeof data === 'string' ? data : JSON.stringify(data, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v)
      res.write(`${event == null ? '' : `event: ${event}\n`}data: ${text}\n\n`)
    },
    end: () => { if (!res.writableEnded) res.end() }
  }
}
