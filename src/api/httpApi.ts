import type {IncomingMessage, Server, ServerResponse} from 'node:http'
import {isIPv6, type AddressInfo, type Socket} from 'node:net'
import {networkInterfaces} from 'node:os'
import {multiaddr} from '@multiformats/multiaddr'
import fastifyRateLimit from '@fastify/rate-limit'
import fastifySwagger from '@fastify/swagger'
import Fastify, {LogController, type FastifyError, type FastifyReply, type FastifyRequest} from 'fastify'
import type {TSchema} from 'typebox'
import {CortensorError} from '../util/cortensorError.js'
import type {Logger} from '../util/logger.js'
import {nodeMetrics} from '../util/metrics.js'
import {API_LIMIT_DEFAULTS, type ApiLimits} from './apiLimits.js'
import {ErrorBodySchema, UsageReportSchema} from './apiSchemas.js'
import {ConcurrencyLimiter} from './concurrencyLimiter.js'
import {RequestFieldError, requestValidator} from './requestSchema.js'
import {tokenId} from './tokenId.js'
import {UsageLedger} from './usageLedger.js'

export {API_LIMIT_DEFAULTS, type ApiLimits} from './apiLimits.js'

/** How long requests in flight may finish once the server closes, before their connections are cut. */
export const CLOSE_GRACE_MS = 500
/** The API's version in its OpenAPI document. */
const API_VERSION = '1.0.0'
/** Methods a path answers 405 to when no route takes them (HEAD included: no implicit HEAD routes). */
const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const
/** Error codes of a client that went away mid-request: its business, not the node's error. */
const CLIENT_GONE_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE'])

/** An error a handler throws to answer with a status and a message naming the problem. */
export class ApiError extends CortensorError<{code: string, status: number}> {
  /** The request field at fault, when there is one (OpenAI's `param`). */
  readonly param: string | null

  constructor (status: number, code: string, message: string, param: string | null = null, readonly headers: Record<string, string> = {}) {
    super({code, status}, message)
    this.param = param
  }
}

export interface ApiRequest {
  method: string
  path: string
  params: Record<string, string>
  query: URLSearchParams
  /** Parsed JSON body (POST only), valid against the route's body schema; `undefined` when there is none. */
  body: unknown
  /** Aborted when the client goes away, so handlers can cancel work on the miners. */
  signal: AbortSignal
  raw: IncomingMessage
  /** Who is asking: the bearer token's id (`tok_…`), else the client's IP. */
  client: string
  /** Counts the inference tokens this request used toward its client's usage. */
  reportUsage: (counts: {prompt: number, completion: number}) => void
}

export type ApiResult =
  | {status?: number, json: unknown}
  | {status?: number, text: string, contentType: string}
  /** The handler writes the response itself (server-sent events); resolves when it is done. */
  | {stream: (res: ServerResponse) => Promise<void>}

/** A route's TypeBox schemas: requests are validated against them; all of them make the OpenAPI document. */
export interface RouteSchema {
  summary?: string
  description?: string
  tags?: string[]
  body?: TSchema
  querystring?: TSchema
  params?: TSchema
  /** Response bodies by status (`200`, `4XX`…); errors get the OpenAI error shape without saying so. */
  response?: Record<string, TSchema>
}

export interface Route {
  method: 'GET' | 'POST'
  /** Path pattern with `:name` segments. */
  path: string
  /** Open routes need no bearer token (health, metrics for the scraper on loopback). */
  open?: boolean
  schema?: RouteSchema
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
  /** Any left out take `API_LIMIT_DEFAULTS`. */
  limits?: Partial<ApiLimits>
  logger: Logger
}

export interface HttpApi {
  server: Server
  url: string
  close(): Promise<void>
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the first hook: the token id or IP limits and usage are counted for. */
    client: string
  }
  interface FastifyContextConfig {
    open?: boolean
  }
}

/**
 * The node's JSON HTTP API on fastify: bearer auth, request schemas, per-client concurrency and
 * rate limits, request timeouts, usage per token, OpenAPI at `/openapi.json`, coded errors in
 * OpenAI's shape.
 */
export async function startHttpApi (init: HttpApiInit): Promise<HttpApi> {
  const log = init.logger
  const limits: ApiLimits = {...API_LIMIT_DEFAULTS, ...init.limits}
  const tokenIds = new Map(init.tokens.map(token => [token, tokenId(token)]))
  const concurrency = new ConcurrencyLimiter(limits.perTokenConcurrency, limits.maxConcurrentRequests)
  // Without tokens clients are IPs: kept in the ledger (bounded), never as metric labels.
  const usage = new UsageLedger({metricLabel: init.tokens.length === 0 ? () => 'anonymous' : client => client})
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs)

  // Fastify's own info lines (each listening address) say less than 'API listening' below; its warnings stay.
  const fastifyLog = log.child({})
  if (log.isLevelEnabled('info')) fastifyLog.level = 'warn'
  const app = Fastify({
    loggerInstance: fastifyLog,
    // One line per request would drown the node's own; failures are logged where they are handled.
    logController: new LogController({disableRequestLogging: true}),
    bodyLimit: init.maxBodyBytes,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node checks the request and header deadlines on this interval (30 s by default, as long as the deadline itself).
    http: {headersTimeout, connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 2)))},
    exposeHeadRoutes: false,
    routerOptions: {ignoreTrailingSlash: true},
    clientErrorHandler: onClientError
  })
  app.decorateRequest('client', '')
  app.setValidatorCompiler(requestValidator)
  // Handlers' JSON goes out as they built it: response schemas document, they do not filter.
  app.setSerializerCompiler(() => data => toJson(data))
  // Every body is read as JSON whatever its content type: clients (curl, scripts) often send none.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', {parseAs: 'string'}, (_req, text, done) => {
    if (text === '') { done(null, undefined); return }
    try {
      done(null, JSON.parse(text as string))
    } catch (err) {
      done(new ApiError(400, 'INVALID_JSON', `request body is not valid JSON: ${(err as Error).message}`), undefined)
    }
  })

  app.addHook('onRequest', async (request, reply) => {
    const started = process.hrtime.bigint()
    reply.raw.once('close', () => {
      // A response that never sent its headers was cut (client gone, timeout): no status of ours.
      const status = reply.raw.headersSent ? String(reply.raw.statusCode) : 'closed'
      nodeMetrics.apiRequestSeconds.observe({method: request.method, route: request.routeOptions.url ?? 'unmatched', status}, Number(process.hrtime.bigint() - started) / 1e9)
    })
    request.client = clientOf(request)
    // Answered before the body is read (and the connection closed with it): a client that no
    // route takes cannot hold a slot by dripping a body.
    if (request.is404) throw notFound(request)
    if (request.routeOptions.config.open === true || init.tokens.length === 0) return
    const auth = request.headers.authorization ?? ''
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : ''
    if (token === '') throw new ApiError(401, 'UNAUTHORIZED', 'missing bearer token (Authorization: Bearer <token>)')
    if (!tokenIds.has(token)) throw new ApiError(401, 'UNAUTHORIZED', 'invalid bearer token')
  })
  // Slots are taken as the request arrives, before its body is read: slow bodies hold their own client's slots only.
  app.addHook('onRequest', async (request, reply) => {
    const refused = concurrency.acquire(request.client)
    if (refused === 'client') {
      nodeMetrics.apiRefused.inc({reason: 'concurrency'})
      throw new ApiError(429, 'TOO_MANY_REQUESTS', `more than ${limits.perTokenConcurrency} concurrent requests for this client`, null, {'retry-after': '1'})
    }
    if (refused === 'total') {
      nodeMetrics.apiRefused.inc({reason: 'concurrency'})
      throw new ApiError(503, 'TOO_MANY_REQUESTS', `more than ${limits.maxConcurrentRequests} concurrent requests on this node`, null, {'retry-after': '1'})
    }
    reply.raw.once('close', () => { concurrency.release(request.client) })
  })

  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    if (clientGone(err, request)) {
      log.debug({err, client: request.client}, 'client went away mid-request')
      return
    }
    // Refused before its body was read (auth, limits): the connection closes with the answer, so a
    // client still sending holds nothing, and the rest of its body is not read for nothing.
    if (!request.raw.complete) reply.header('connection', 'close')
    const answer = apiErrorOf(err, init.maxBodyBytes)
    if (answer == null) {
      log.error({err, method: request.method, route: request.routeOptions.url}, 'unhandled API error')
      return replyJson(reply, 500, errorBody('INTERNAL', 'internal error', 500))
    }
    if (answer.code === 'BODY_TOO_LARGE') nodeMetrics.apiRefused.inc({reason: 'body'})
    return replyJson(reply.headers(answer.headers), answer.type.status, errorBody(answer.code, answer.message, answer.type.status, answer.param))
  })
  app.setNotFoundHandler(async (request) => { throw notFound(request) })

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {title: 'cortensord API', version: API_VERSION, description: 'A Cortensor node: the router API, OpenAI-compatible routes, the node\'s status and metrics.'},
      components: {securitySchemes: {bearer: {type: 'http', scheme: 'bearer', description: 'One of the node\'s API tokens (api.tokens)'}}},
      security: [{bearer: []}]
    }
  })
  await app.register(fastifyRateLimit, {
    max: limits.perTokenRequestsPerMinute,
    timeWindow: 60_000,
    keyGenerator: request => request.client,
    onExceeded: () => { nodeMetrics.apiRefused.inc({reason: 'rate'}) },
    errorResponseBuilder: (_request, context) => new ApiError(429, 'RATE_LIMITED', `more than ${context.max} requests a minute for this client; retry in ${context.after}`)
  })

  const builtIn: Route[] = [
    {
      method: 'GET',
      path: '/openapi.json',
      open: true,
      schema: {summary: 'This document: every route with its request and response schemas', tags: ['node']},
      handler: () => ({json: app.swagger()})
    },
    {
      method: 'GET',
      path: '/api/v1/usage',
      schema: {
        summary: 'Requests and inference tokens of the calling token since the node started (every client\'s when the node takes no tokens)',
        tags: ['node'],
        response: {200: UsageReportSchema}
      },
      handler: (req) => ({json: init.tokens.length === 0 ? {clients: usage.all()} : usage.of(req.client)})
    }
  ]
  const routes = [...builtIn, ...init.routes]
  for (const route of routes) addRoute(route)
  for (const [path, {methods, open}] of groupMethods(routes)) {
    const others = HTTP_METHODS.filter(m => !methods.has(m))
    app.route({
      method: others,
      url: path,
      schema: {hide: true},
      // As open as the path's routes: a wrong method on a token's route asks for the token first.
      config: {open},
      // Answered in onRequest, before any body is read: no slot is held by a body nobody wants.
      onRequest: async (request) => { throw notAllowed(request) },
      handler: async (request) => { throw notAllowed(request) }
    })
  }

  function addRoute (route: Route): void {
    const {response, ...parts} = route.schema ?? {}
    app.route({
      method: route.method,
      url: route.path,
      config: {open: route.open === true},
      schema: {
        // Fastify warns about a part given as undefined: only those the route has.
        ...Object.fromEntries(Object.entries(parts).filter(([, value]) => value !== undefined)),
        ...(route.open === true ? {security: []} : {}),
        response: {...response, '4XX': ErrorBodySchema, '5XX': ErrorBodySchema}
      },
      handler: async (request, reply) => {
        // Usage is what clients ask of the node: open routes (scrapers, browsers, the document) are nobody's.
        if (route.open !== true) usage.request(request.client)
        const res = reply.raw
        const controller = new AbortController()
        res.on('close', () => { if (!res.writableFinished) controller.abort(new Error('client disconnected')) })
        const url = new URL(request.url, 'http://localhost')
        const result = await route.handler({
          method: request.method,
          path: url.pathname,
          params: (request.params ?? {}) as Record<string, string>,
          query: url.searchParams,
          body: request.body,
          signal: controller.signal,
          raw: request.raw,
          client: request.client,
          reportUsage: counts => { usage.tokens(request.client, counts) }
        })
        if ('json' in result) return replyJson(reply, result.status ?? 200, result.json)
        if ('text' in result) return await reply.code(result.status ?? 200).type(result.contentType).send(result.text)
        // The handler writes the stream itself; failures before its first byte still answer with their status.
        reply.hijack()
        try {
          await result.stream(res)
        } catch (err) {
          // A bug is logged even mid-stream (the client sees the stream end without its last event); a client gone is not.
          if (!(err instanceof ApiError) && !res.destroyed) log.error({err, method: request.method, route: route.path}, 'unhandled API error')
          if (res.headersSent || res.destroyed) { res.end(); return }
          const answer = err instanceof ApiError ? err : new ApiError(500, 'INTERNAL', 'internal error')
          const text = toJson(errorBody(answer.code, answer.message, answer.type.status, answer.param))
          res.writeHead(answer.type.status, {'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text), ...answer.headers})
          res.end(text)
        }
      }
    })
  }

  function clientOf (request: FastifyRequest): string {
    const auth = request.headers.authorization ?? ''
    const id = auth.startsWith('Bearer ') ? tokenIds.get(auth.slice(7)) : undefined
    return id ?? request.ip
  }

  /**
   * A request that did not arrive in time (Node's request or header deadline) gets 408 and its
   * connection closed; other malformed requests 400. Resets are the client's own doing: not logged.
   */
  function onClientError (err: Error & {code?: string}, socket: Socket): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) { socket.destroy(); return }
    log.debug({code: err.code}, 'client error')
    if (socket.writable) {
      const [status, code, message] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'REQUEST_TIMEOUT', `the request did not arrive within ${limits.requestTimeoutMs} ms`] as const
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'HEADERS_TOO_LARGE', 'the request headers are too large'] as const
          : [400, 'BAD_REQUEST', `malformed HTTP request (${err.code ?? err.message})`] as const
      if (status === 408) nodeMetrics.apiRefused.inc({reason: 'timeout'})
      const text = toJson(errorBody(code, message, status))
      socket.write(`HTTP/1.1 ${status} ${code}\r\ncontent-type: ${JSON_TYPE}\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`)
    }
    socket.destroy()
  }

  await app.listen({port: init.port, host: init.host})
  const addr = app.server.address() as AddressInfo
  const url = apiUrl(init.host, addr.port, init.announce ?? [])
  log.info({url}, 'API listening')
  return {
    server: app.server,
    url,
    close: async () => {
      // No new connections, idle keep-alive ones closed now; requests in flight (failing fast
      // once the node stops) get a short grace to send their answer, then every connection
      // is cut, so a streaming or stalled client cannot hold the stop.
      const server = app.server
      const closed = app.close()
      server.closeIdleConnections()
      const cut = setTimeout(() => { server.closeAllConnections() }, CLOSE_GRACE_MS)
      await closed
      clearTimeout(cut)
    }
  }
}

const JSON_TYPE = 'application/json; charset=utf-8'

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

/** A failure the API answers with its own status and code; undefined for one it did not expect (a bug: 500). */
function apiErrorOf (err: FastifyError | Error, maxBodyBytes: number): ApiError | undefined {
  if (err instanceof ApiError) return err
  if (err instanceof RequestFieldError) return new ApiError(400, err.code, err.message, err.param)
  const {code, statusCode} = err as FastifyError
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError(413, 'BODY_TOO_LARGE', `request body exceeds the limit of ${maxBodyBytes} bytes`)
  if (statusCode != null && statusCode >= 400 && statusCode < 500) return new ApiError(statusCode, 'INVALID_REQUEST', err.message)
  return undefined
}

/** The client hung up (reset, aborted body): nothing to answer and nothing wrong with the node. */
function clientGone (err: Error, request: FastifyRequest): boolean {
  const code = (err as {code?: string}).code
  return (code != null && CLIENT_GONE_CODES.has(code)) || request.raw.socket?.destroyed === true
}

function replyJson (reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).type(JSON_TYPE).serializer(toJson).send(body)
}

function toJson (value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => typeof v === 'bigint' ? v.toString() : v)
}

function notFound (request: FastifyRequest): ApiError {
  return new ApiError(404, 'NOT_FOUND', `no route ${request.method} ${pathOf(request.url)}`)
}

function notAllowed (request: FastifyRequest): ApiError {
  return new ApiError(405, 'METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${pathOf(request.url)}`)
}

function pathOf (url: string): string {
  return new URL(url, 'http://localhost').pathname
}

/** Each path's methods, and whether every route on it is open. */
function groupMethods (routes: readonly Route[]): Map<string, {methods: Set<string>, open: boolean}> {
  const byPath = new Map<string, {methods: Set<string>, open: boolean}>()
  for (const route of routes) {
    const entry = byPath.get(route.path) ?? {methods: new Set<string>(), open: true}
    entry.methods.add(route.method)
    entry.open &&= route.open === true
    byPath.set(route.path, entry)
  }
  return byPath
}
