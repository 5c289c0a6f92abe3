/** The HTTP core every route stands on: auth, routing, body and concurrency limits, SSE, disconnects. */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'
import {ApiError, startHttpApi, type HttpApi} from '../../src/api/httpApi.js'
import {lazySse} from '../../src/api/sse.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {metricValue, nodeMetrics} from '../../src/util/metrics.js'

const TOKEN = 'sesame'
const MAX_CONCURRENT = 2
let api: HttpApi
/** Released by the test: keeps `/slow` requests in flight. */
let release: () => void = () => {}
let held = Promise.resolve()
const aborted: string[] = []

async function call (path: string, init: RequestInit & {token?: string | null} = {}): Promise<{status: number, type: string | null, json: any}> {
  const token = init.token === undefined ? TOKEN : init.token
  const res = await fetch(`${api.url}${path}`, {...init, headers: {...(token == null ? {} : {authorization: `Bearer ${token}`}), ...init.headers}})
  const type = res.headers.get('content-type')
  return {status: res.status, type, json: type?.startsWith('application/json') === true ? await res.json() : await res.text()}
}

describe('httpApi', () => {
  before(async () => {
    api = await startHttpApi({
      host: '127.0.0.1', port: 0, tokens: [TOKEN], maxBodyBytes: 1024, limits: {maxConcurrentRequests: MAX_CONCURRENT}, logger: createSilentLogger(),
      routes: [
        {method: 'GET', path: '/health', open: true, handler: () => ({json: {ok: true}})},
        {method: 'POST', path: '/echo/:name', handler: (req) => ({json: {name: req.params.name, body: req.body}})},
        {method: 'GET', path: '/slow', handler: async () => { await held; return {json: {slow: true}} }},
        {
          method: 'GET',
          path: '/hang',
          handler: async (req) => await new Promise(resolve => {
            req.signal.addEventListener('abort', () => { aborted.push(String((req.signal.reason as Error).message)); resolve({json: {}}) })
          })
        },
        {
          method: 'GET',
          path: '/events',
          handler: (req) => ({
            stream: async (res) => {
              const sse = lazySse(res, send => { send({hello: true}) })
              try {
                if (req.query.get('refuse') != null) throw new ApiError(503, 'NO_MINER_READY', 'no miner is ready')
                sse.send({n: 1}, 'token')
              } finally {
                sse.end()
              }
            }
          })
        }
      ]
    })
  })

  after(async () => { release(); await api.close() })

  it('asks for the bearer token on every route but the open ones', async () => {
    assert.deepEqual((await call('/health', {token: null})).json, {ok: true})
    const missing = await call('/slow', {token: null})
    assert.equal(missing.status, 401)
    assert.deepEqual(missing.json, {error: {message: 'missing bearer token (Authorization: Bearer <token>)', type: 'authentication_error', param: null, code: 'UNAUTHORIZED'}})
    const wrong = await call('/slow', {token: 'guess'})
    assert.equal(wrong.status, 401)
    assert.equal(wrong.json.error.message, 'invalid bearer token')
  })

  it('names unknown routes and wrong methods', async () => {
    const unknown = await call('/nowhere')
    assert.equal(unknown.status, 404)
    assert.equal(unknown.json.error.message, 'no route GET /nowhere')
    const method = await call('/health', {method: 'POST'})
    assert.equal(method.status, 405)
    assert.equal(method.json.error.message, 'POST is not allowed on /health')
    // A wrong method on a route behind the token asks for the token first: nobody learns the routes without one.
    const hidden = await call('/echo/x', {method: 'GET', token: null})
    assert.equal(hidden.status, 401)
    assert.equal((await call('/echo/x', {method: 'GET'})).status, 405)
  })

  it('parses JSON bodies and path parameters; refuses invalid JSON and oversized bodies', async () => {
    assert.deepEqual((await call('/echo/a%20b', {method: 'POST', body: '{"x":1}'})).json, {name: 'a b', body: {x: 1}})
    const invalid = await call('/echo/x', {method: 'POST', body: '{"x":'})
    assert.equal(invalid.status, 400)
    assert.equal(invalid.json.error.code, 'INVALID_JSON')
    assert.match(invalid.json.error.message, /^request body is not valid JSON: /)
    const refusedBefore = await metricValue(nodeMetrics.apiRefused, {reason: 'body'})
    const big = await call('/echo/x', {method: 'POST', body: JSON.stringify({x: 'y'.repeat(2048)})})
    assert.equal(big.status, 413)
    assert.match(big.json.error.message, /exceeds the limit of 1024 bytes/)
    // Without a declared length (chunked), the limit is counted as the body arrives.
    const chunked = await call('/echo/x', {method: 'POST', body: new Blob(['y'.repeat(4096)]).stream(), duplex: 'half'} as RequestInit)
    assert.equal(chunked.status, 413)
    assert.equal(chunked.json.error.code, 'BODY_TOO_LARGE')
    assert.equal(await metricValue(nodeMetrics.apiRefused, {reason: 'body'}) - refusedBefore, 2)
  })

  it('refuses requests over the node\'s concurrency ceiling with 503 and serves again once they finish', async () => {
    held = new Promise(resolve => { release = resolve })
    const slow = Array.from({length: MAX_CONCURRENT}, async () => await call('/slow'))
    await new Promise(resolve => setTimeout(resolve, 100))
    const over = await call('/slow')
    assert.equal(over.status, 503)
    assert.equal(over.json.error.message, 'more than 2 concurrent requests on this node')
    assert.equal(over.json.error.code, 'TOO_MANY_REQUESTS')
    release()
    for (const r of await Promise.all(slow)) assert.deepEqual(r.json, {slow: true})
    assert.deepEqual((await call('/slow')).json, {slow: true})
  })

  it('aborts the handler\'s signal when the client goes away', async () => {
    const controller = new AbortController()
    const pending = fetch(`${api.url}/hang`, {headers: {authorization: `Bearer ${TOKEN}`}, signal: controller.signal}).catch(() => undefined)
    await new Promise(resolve => setTimeout(resolve, 100))
    controller.abort()
    await pending
    for (let i = 0; i < 50 && aborted.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 20))
    assert.deepEqual(aborted, ['client disconnected'])
  })

  it('streams server-sent events, or answers with the error\'s status when refused before the first event', async () => {
    const ok = await call('/events')
    assert.equal(ok.status, 200)
    assert.equal(ok.type, 'text/event-stream; charset=utf-8')
    assert.equal(ok.json, 'data: {"hello":true}\n\nevent: token\ndata: {"n":1}\n\n')
    const refused = await call('/events?refuse=1')
    assert.equal(refused.status, 503)
    assert.deepEqual(refused.json.error, {message: 'no miner is ready', type: 'unavailable_error', param: null, code: 'NO_MINER_READY'})
  })
})
