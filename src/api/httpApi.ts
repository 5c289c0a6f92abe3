import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {isIPv6, type AddressInfo} from 'node:net'
import {networkInterfaces} from 'node:os'
import {multiaddr} from '@multiformats/multiaddr'
import {CortensorError} from '../util/cortensorError.js'
import type {Logger} from '../util/logger.js'

/** How long requests in flight may finish once the server closes, before their connections are cut. */
export const CLOSE_GRACE_MS = 500

/** An error a handler throws to answer with a status and a message naming the problem. */
export class ApiError extends CortensorError<{code: string, status: number}> {
  /** The request field at fault, when there is one (OpenAI's `param`). */
  readonly param: string | null

  constructor (status: number, code: string, message: string, param: string | null = null) {
    super({code, status}, message)
    this.param = param
  }
}

export interface ApiRequest {
  method: string
  path: string
  params: Record<string, string>
  query: URLSearchParams
  /** Parsed JSON body (POST only); `undefined` when there is none. */
  body: unknown
  /** Aborted when the client goes away, so handlers can cancel work on the miners. */
  signal: AbortSignal
  raw: IncomingMessage
}

export type ApiResult =
  | {status?: number, json: unknown}
  | {status?: number, text: string, contentType: string}
  /** The handler writes the response itself (server-sent events); resolves when it is done. */
  | {stream: (res: ServerResponse) => Promise<void>}

export interface Route {
  method: 'GET' | 'POST'
  /** Path pattern with `:name` segments. */
  path: string
  /** Open routes need no bearer token (health, metrics for the scraper on loopback). */
  open?: boolean
  handler: (req: ApiRequest) => Promise<ApiResult> | ApiResult
}

export interface HttpApiInit {
  host: string
  port: number
  /** The node's announce multiaddrs: the first one's host names the API URL when `host` is a wildcard. */
  announce?: string[]
  routes: Route[]
  /** Accepted bearer tokens; empty disables auth. */
  tokens: string[]
  maxBodyBytes: number
  maxConcurrentRequests: number
  logger: Logger
}

export interface HttpApi {
  server: Server
  url: string
  close(): Promise<void>
}

/** A small JSON HTTP server: routing, bearer auth, body and concurrency limits, coded errors. */
export async function startHttpApi (init: HttpApiInit): Promise<HttpApi> {
  const log = init.logger
  const compiled = init.routes.map(route => ({route, ...compile(route.path)}))
  let inFlight = 0

  const server = createServer((req, res) => {
    inFlight++
    res.on('close', () => { inFlight-- })
    handle(req, res).catch(err => {
      log.error({err}, 'unhandled API error')
      if (!res.headersSent) sendJson(res, 500, errorBody('INTERNAL', 'internal error', 500))
      else res.end()
    })
  })

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const method = req.method ?? 'GET'
    const match = findRoute(compiled, method, url.pathname)
    if (match === 'method') { sendJson(res, 405, errorBody('METHOD_NOT_ALLOWED', `${method} is not allowed on ${url.pathname}`, 405)); return }
    if (match == null) { sendJson(res, 404, errorBody('NOT_FOUND', `no route ${method} ${url.pathname}`, 404)); return }
    if (inFlight > init.maxConcurrentRequests) {
      sendJson(res, 503, errorBody('TOO_MANY_REQUESTS', `more than ${init.maxConcurrentRequests} concurrent requests`, 503))
      return
    }
    if (match.route.open !== true && init.tokens.length > 0) {
      const auth = req.headers.authorization ?? ''
      const token = auth.startsWith('Bearer ') ? auth.slice(7) : ''
      if (token === '') { sendJson(res, 401, errorBody('UNAUTHORIZED', 'missing bearer token (Authorization: Bearer <token>)', 401)); return }
      if (!init.tokens.includes(token)) { sendJson(res, 401, errorBody('UNAUTHORIZED', 'invalid bearer token', 401)); return }
    }
    const controller = new AbortController()
    res.on('close', () => { if (!res.writableFinished) controller.abort(new Error('client disconnected')) })
    try {
      const body = method === 'POST' ? await readJsonBody(req, init.maxBodyBytes) : undefined
      const result = await match.route.handler({method, path: url.pathname, params: match.params, query: url.searchParams, body, signal: controller.signal, raw: req})
      if ('stream' in result) await result.stream(res)
      else if ('json' in result) sendJson(res, result.status ?? 200, result.json)
      else {
        res.writeHead(result.status ?? 200, {'content-type': result.contentType})
        res.end(result.text)
      }
    } catch (err) {
      if (err instanceof ApiError) {
        if (res.headersSent) res.end()
        else sendJson(res, err.type.status, errorBody(err.code, err.message, err.type.status, err.param))
        return
      }
      throw err
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(init.port, init.host, () => resolve())
  })
  const addr = server.address() as AddressInfo
  const url = apiUrl(init.host, addr.port, init.announce ?? [])
  log.info({url}, 'API listening')
  return {
    server,
    url,
    close: async () => {
      // No new connections, idle keep-alive ones closed now; requests in flight (failing fast
      // once the node stops) get a short grace to send their answer, then every connection
      // is cut, so a streaming or stalled client cannot hold the stop.
      const closed = new Promise<void>(resolve => server.close(() => resolve()))
      server.closeIdleConnections()
      const cut = setTimeout(() => { server.closeAllConnections() }, CLOSE_GRACE_MS)
      await closed
      clearTimeout(cut)
    }
  }
}

/**
 * The URL the API is reached at, as node.json and the logs give it to operators and scripts:
 * a wildcard host (0.0.0.0, ::) is no address to connect to, so it stands for the host of the
 * first announce address, else the first non-internal IPv4 interface (loopback on a host with
 * no other).
 */
export function apiUrl (host: string, port: number, announce: readonly string[]): string {
  let reachable = host
  if (host === '0.0.0.0' || host === '::') {
    reachable = announcedHost(announce) ?? Object.values(networkInterfaces()).flat()
      .find(net => net != null && net.family === 'IPv4' && !net.internal)?.address ?? '127.0.0.1'
  }
  return `http://${isIPv6(reachable) ? `[${reachable}]` : reachable}:${port}`
}

/** The IP or DNS name of the first announce multiaddr that has one. */
function announcedHost (announce: readonly string[]): string | undefined {
  for (const addr of announce) {
    const host = multiaddr(addr).getComponents()[0]
    if (host?.value != null && ['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(host.name)) return host.value
  }
  return undefined
}

/**
 * The one error shape of every route, OpenAI's (`{error: {message, type, param, code}}`), so
 * OpenAI clients and the router API's users read failures the same way.
 */
export function errorBody (code: string, message: string, status = 400, param: string | null = null): {error: {message: string, type: string, param: string | null, code: string}} {
  return {error: {message, type: errorType(status), param, code}}
}

function errorType (status: number): string {
  if (status === 401) return 'authentication_error'
  if (status === 403) return 'permission_error'
  if (status === 404) return 'not_found_error'
  if (status === 429 || status === 503) return 'unavailable_error'
  return status >= 500 ? 'server_error' : 'invalid_request_error'
}

function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_key, value: unknown) => typeof value === 'bigint' ? value.toString() : value)
  res.writeHead(status, {'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text)})
  res.end(text)
}

async function readJsonBody (req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > maxBytes) throw new ApiError(413, 'BODY_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw new ApiError(413, 'BODY_TOO_LARGE', `request body exceeds the limit of ${maxBytes} bytes`)
    chunks.push(chunk as Buffer)
  }
  if (size === 0) return undefined
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (err) {
    throw new ApiError(400, 'INVALID_JSON', `request body is not valid JSON: ${(err as Error).message}`)
  }
}

function compile (pattern: string): {regex: RegExp, names: string[]} {
  const names: string[] = []
  const source = pattern.split('/').map(part => {
    if (part.startsWith(':')) { names.push(part.slice(1)); return '([^/]+)' }
    return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }).join('/')
  return {regex: new RegExp(`^${source}/?$`), names}
}

function findRoute (routes: Array<{route: Route, regex: RegExp, names: string[]}>, method: string, path: string): {route: Route, params: Record<string, string>} | 'method' | undefined {
  let pathMatched = false
  for (const {route, regex, names} of routes) {
    const m = regex.exec(path)
    if (m == null) continue
    pathMatched = true
    if (route.method !== method) continue
    const params: Record<string, string> = {}
    names.forEach((name, i) => { params[name] = decodeURIComponent(m[i + 1] ?? '') })
    return {route, params}
  }
  return pathMatched ? 'method' : undefined
}
