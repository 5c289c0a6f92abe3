/**
 * Per-token fairness and timeouts on real sockets: slow clients of one token hold only that
 * token's slots and are cut at the request timeout; a token over its rate is refused while the
 * others are served; usage is counted per token; clients that hang up are not errors in the log.
 */
import assert from 'node:assert/strict'
import {connect, type Socket} from 'node:net'
import {PassThrough} from 'node:stream'
import {after, before, describe, it} from 'node:test'
import {startHttpApi, type HttpApi, type Route} from '../../src/api/httpApi.js'
import {tokenId} from '../../src/api/tokenId.js'
import {createRootLogger} from '../../src/util/logger.js'
import {metricValue, nodeMetrics} from '../../src/util/metrics.js'
import {waitFor} from '../support/until.js'

const SLOW = 'slow-token'
const FAST = 'fast-token'
const PER_TOKEN = 8
const SLOW_CLIENTS = 40
const REQUEST_TIMEOUT_MS = 3_000

const routes: Route[] = [
  {method: 'POST', path: '/echo', handler: (req) => ({json: {body: req.body}})},
  {
    method: 'POST',
    path: '/complete',
    handler: (req) => {
      req.reportUsage({prompt: 3, completion: 5})
      return {json: {ok: true}}
    }
  }
]

/** Log lines as parsed JSON, from a logger writing into memory. */
function capturedLogger (): {lines: () => Array<{level: number, msg: string}>, logger: ReturnType<typeof createRootLogger>} {
  const sink = new PassThrough()
  const chunks: string[] = []
  sink.on('data', (chunk: Buffer) => chunks.push(chunk.toString()))
  return {
    logger: createRootLogger({level: 'debug', destination: sink}),
    lines: () => chunks.join('').split('\n').filter(l => l !== '').map(l => JSON.parse(l) as {level: number, msg: string})
  }
}

async function call (api: HttpApi, path: string, token: string | null, init: RequestInit = {}): Promise<{status: number, headers: Headers, json: any}> {
  const res = await fetch(`${api.url}${path}`, {...init, headers: {...(token == null ? {} : {authorization: `Bearer ${token}`}), ...init.headers}})
  return {status: res.status, headers: res.headers, json: await res.json()}
}

/** A client on a raw socket that sends its headers, then drips its body a byte at a time, never finishing. */
interface SlowClient {
  /** Everything the server sent, once it closed the connection. */
  closed: Promise<string>
  /** The first bytes the server sent (a status line), or undefined while it sent nothing. */
  readonly received: string
  socket: Socket
}

function slowClient (api: HttpApi, token: string | null, path = '/echo'): SlowClient {
  const {port} = new URL(api.url)
  const socket = connect(Number(port), '127.0.0.1')
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString() })
  socket.on('error', () => {})
  const closed = new Promise<string>(resolve => socket.on('close', () => { resolve(received) }))
  const auth = token == null ? '' : `authorization: Bearer ${token}\r\n`
  socket.write(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${auth}content-type: application/json\r\ncontent-length: 1000\r\n\r\n{"x": "`)
  const drip = setInterval(() => { if (socket.writable) socket.write('y') }, 100)
  socket.on('close', () => { clearInterval(drip) })
  return {closed, socket, get received () { return received }}
}

function statusOf (response: string): number | undefined {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(response)
  return m == null ? undefined : Number(m[1])
}

describe('API limits per token', () => {
  let api: HttpApi
  const log = capturedLogger()

  before(async () => {
    api = await startHttpApi({
      host: '127.0.0.1', port: 0, tokens: [SLOW, FAST], maxBodyBytes: 4096, routes, logger: log.logger,
      limits: {perTokenConcurrency: PER_TOKEN, maxConcurrentRequests: 4 * PER_TOKEN, requestTimeoutMs: REQUEST_TIMEOUT_MS, headersTimeoutMs: 2_000}
    })
  })

  after(async () => { await api.close() })

  it('slow clients of one token hold only its slots: another token is answered at once, the slow token gets 429, the slow clients get 408 at the timeout', async () => {
    const refusedBefore = await metricValue(nodeMetrics.apiRefused, {reason: 'concurrency'})
    const timeoutsBefore = await metricValue(nodeMetrics.apiRefused, {reason: 'timeout'})
    const started = Date.now()
    const slow = Array.from({length: SLOW_CLIENTS}, () => slowClient(api, SLOW))
    // Past the token's share, each is refused as soon as its headers arrive, body or not, and its connection closed.
    const refused = (): SlowClient[] => slow.filter(c => statusOf(c.received) === 429)
    await waitFor('the slow clients past the token\'s share refused', () => refused().length >= SLOW_CLIENTS - PER_TOKEN)
    const refusedAtOnce = refused()
    assert.equal(refusedAtOnce.length, SLOW_CLIENTS - PER_TOKEN, 'every slow client past the token\'s share is refused on arrival')
    assert.equal(slow.filter(c => c.received === '').length, PER_TOKEN, 'the token\'s share holds its slots, unanswered')
    assert.match(refusedAtOnce[0]?.received ?? '', /retry-after: 1/i)
    assert.match(refusedAtOnce[0]?.received ?? '', /"code":"TOO_MANY_REQUESTS"/)
    await Promise.all(refusedAtOnce.map(async c => await c.closed))

    const other = await call(api, '/echo', FAST, {method: 'POST', body: '{"hello":1}'})
    assert.equal(other.status, 200)
    assert.deepEqual(other.json, {body: {hello: 1}})
    // At once: not queued behind them, answered while the slow token's clients still hold every slot of its share.
    assert.equal(slow.filter(c => c.received === '').length, PER_TOKEN, 'another token is answered while the slow clients hold their slots')

    const again = await call(api, '/echo', SLOW, {method: 'POST', body: '{}'})
    assert.equal(again.status, 429)
    assert.equal(again.headers.get('retry-after'), '1')
    assert.deepEqual(again.json.error, {message: `more than ${PER_TOKEN} concurrent requests for this client`, type: 'unavailable_error', param: null, code: 'TOO_MANY_REQUESTS'})
    assert.equal(await metricValue(nodeMetrics.apiRefused, {reason: 'concurrency'}) - refusedBefore, SLOW_CLIENTS - PER_TOKEN + 1)

    // The slow clients still dripping are cut once the request timeout passes.
    const holding = slow.filter(c => statusOf(c.received) == null)
    assert.equal(holding.length, PER_TOKEN)
    const cut = await Promise.all(holding.map(async c => await c.closed))
    // Node checks the deadline every second at most here: cut within seconds of it, not at Node's default of 300 s.
    assert.ok(Date.now() - started < REQUEST_TIMEOUT_MS + 5_000, `cut at the request timeout, not at Node's 300 s (${Date.now() - started} ms)`)
    for (const response of cut) {
      assert.equal(statusOf(response), 408, response)
      assert.match(response, /"code":"REQUEST_TIMEOUT"/)
    }
    assert.equal(await metricValue(nodeMetrics.apiRefused, {reason: 'timeout'}) - timeoutsBefore, PER_TOKEN)
    for (const c of slow) c.socket.destroy()

    // Their slots are free again.
    assert.equal((await call(api, '/echo', SLOW, {method: 'POST', body: '{"back":true}'})).status, 200)
  })

  it('clients without a token hold no slot: dripped bodies to no route, a wrong method or a token\'s route are answered before the body, and cut', async () => {
    const cases = [
      {path: '/nope', status: 404, code: 'NOT_FOUND'},
      {path: '/openapi.json', status: 405, code: 'METHOD_NOT_ALLOWED'},
      {path: '/api/v1/usage', status: 401, code: 'UNAUTHORIZED'}
    ]
    for (const {path, status, code} of cases) {
      const slow = Array.from({length: 4 * PER_TOKEN + 1}, () => slowClient(api, null, path))
      // More of them than the node's whole ceiling: had any held a slot, the last would get 503.
      const answers = await Promise.all(slow.map(async c => await c.closed))
      for (const answer of answers) {
        assert.equal(statusOf(answer), status, `${path}: ${answer.slice(0, 200)}`)
        assert.match(answer, new RegExp(`"code":"${code}"`))
        assert.match(answer, /connection: close/i)
      }
    }
    const served = await call(api, '/echo', FAST, {method: 'POST', body: '{"after":1}'})
    assert.equal(served.status, 200)
  })

  it('a client that hangs up mid-body is no error in the log', async () => {
    const before = log.lines().length
    let arrived = 0
    const onRequest = (): void => { arrived++ }
    api.server.on('request', onRequest)
    const clients = Array.from({length: 5}, () => slowClient(api, FAST))
    // Mid-body: the server has each one's headers (its 'request' event) and is reading the body.
    await waitFor('the 5 requests\' headers at the server', () => arrived >= 5)
    api.server.off('request', onRequest)
    for (const c of clients) c.socket.destroy()
    await waitFor('the hang-ups noted', () => log.lines().slice(before).filter(l => l.msg === 'client went away mid-request').length >= 5)
    const lines = log.lines().slice(before)
    assert.deepEqual(lines.filter(l => l.level >= 40), [], 'no warning or error for a client gone mid-body')
    assert.ok(lines.some(l => l.msg === 'client went away mid-request'), 'noted at debug level')
    assert.equal((await call(api, '/echo', FAST, {method: 'POST', body: '{}'})).status, 200)
  })

  it('counts usage per token: requests and the inference tokens handlers report, readable by that token only', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await call(api, '/complete', FAST, {method: 'POST', body: '{}'})).status, 200)
    const slowBefore = (await call(api, '/api/v1/usage', SLOW)).json
    const before = await metricValue(nodeMetrics.apiTokenUsage, {token: tokenId(FAST), kind: 'completion_tokens'})
    await call(api, '/complete', FAST, {method: 'POST', body: '{}'})
    const fast = (await call(api, '/api/v1/usage', FAST)).json
    assert.equal(fast.token, tokenId(FAST))
    assert.match(fast.token, /^tok_[0-9a-f]{8}$/)
    assert.equal(fast.prompt_tokens, 9)
    assert.equal(fast.completion_tokens, 15)
    assert.ok(fast.requests >= 4, `the three completions and this read at least (${fast.requests})`)
    assert.equal(await metricValue(nodeMetrics.apiTokenUsage, {token: tokenId(FAST), kind: 'completion_tokens'}) - before, 5)
    const slow = (await call(api, '/api/v1/usage', SLOW)).json
    assert.equal(slow.token, tokenId(SLOW))
    assert.deepEqual([slow.prompt_tokens, slow.completion_tokens, slow.requests], [0, 0, slowBefore.requests + 1], 'another token\'s completions are not this one\'s')
    assert.ok(!log.lines().some(l => JSON.stringify(l).includes(FAST) || JSON.stringify(l).includes(SLOW)), 'no token in the log')
  })

  it('times every request by its route pattern and status', async () => {
    const {values} = await nodeMetrics.apiRequestSeconds.get()
    const count = values.find(v => v.metricName === 'cortensor_api_request_duration_seconds_count' && v.labels.route === '/complete' && v.labels.status === '200' && v.labels.method === 'POST')
    assert.ok(count != null && count.value >= 3, JSON.stringify(values.filter(v => v.metricName?.endsWith('_count') === true)))
  })
})

describe('API rate limit per token', () => {
  let api: HttpApi

  before(async () => {
    api = await startHttpApi({
      host: '127.0.0.1', port: 0, tokens: [SLOW, FAST], maxBodyBytes: 4096, routes, logger: createRootLogger({level: 'silent'}),
      limits: {perTokenRequestsPerMinute: 5}
    })
  })

  after(async () => { await api.close() })

  it('refuses a token over its rate with 429 RATE_LIMITED and retry-after, while another token is served', async () => {
    const before = await metricValue(nodeMetrics.apiRefused, {reason: 'rate'})
    for (let i = 0; i < 5; i++) assert.equal((await call(api, '/echo', SLOW, {method: 'POST', body: '{}'})).status, 200)
    const over = await call(api, '/echo', SLOW, {method: 'POST', body: '{}'})
    assert.equal(over.status, 429)
    assert.equal(over.json.error.code, 'RATE_LIMITED')
    assert.match(over.json.error.message, /^more than 5 requests a minute for this client; retry in /)
    assert.ok(Number(over.headers.get('retry-after')) > 0 && Number(over.headers.get('retry-after')) <= 60, `retry-after ${over.headers.get('retry-after')}`)
    assert.equal(await metricValue(nodeMetrics.apiRefused, {reason: 'rate'}) - before, 1)
    assert.equal((await call(api, '/echo', FAST, {method: 'POST', body: '{}'})).status, 200, 'another token is served')
  })
})

describe('API usage without tokens', () => {
  let api: HttpApi

  before(async () => {
    api = await startHttpApi({host: '127.0.0.1', port: 0, tokens: [], maxBodyBytes: 4096, routes, logger: createRootLogger({level: 'silent'})})
  })

  after(async () => { await api.close() })

  it('keys usage by client IP and lists every client', async () => {
    await call(api, '/complete', null, {method: 'POST', body: '{}'})
    const {status, json} = await call(api, '/api/v1/usage', null)
    assert.equal(status, 200)
    assert.deepEqual(json, {clients: [{token: '127.0.0.1', requests: 2, prompt_tokens: 3, completion_tokens: 5}]})
  })
})
