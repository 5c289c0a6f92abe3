/**
 * The real routes' schemas: the OpenAPI document they make is valid OpenAPI 3.1 and served
 * without a token, and malformed requests are refused by them before any handler runs, each
 * with a 400 naming the field (OpenAI's `param`).
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'
import {Validator} from '@seriousme/openapi-schema-validator'
import {startHttpApi, type HttpApi} from '../../src/api/httpApi.js'
import type {OracleClient} from '../../src/api/oracleClient.js'
import {openaiRoutes} from '../../src/api/openaiRoutes.js'
import {oracleRoutes} from '../../src/api/oracleRoutes.js'
import {createSilentLogger} from '../../src/util/logger.js'

const TOKEN = 'sesame'
let api: HttpApi
/** Every handler that reaches the oracle fails the test: validation must refuse first. */
const untouchable = new Proxy({}, {get: (_target, key) => { throw new Error(`the handler ran (client.${String(key)})`) }}) as OracleClient

async function post (path: string, body: unknown): Promise<{status: number, json: any}> {
  const res = await fetch(`${api.url}${path}`, {method: 'POST', headers: {authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json'}, body: typeof body === 'string' ? body : JSON.stringify(body)})
  return {status: res.status, json: await res.json()}
}

describe('API schemas', () => {
  before(async () => {
    api = await startHttpApi({host: '127.0.0.1', port: 0, tokens: [TOKEN], maxBodyBytes: 64 * 1024, logger: createSilentLogger(), routes: [...oracleRoutes(untouchable), ...openaiRoutes(untouchable)]})
  })

  after(async () => { await api.close() })

  it('serves a valid OpenAPI 3.1 document at /openapi.json without a token: every route, bearer auth, request and response schemas', async () => {
    const res = await fetch(`${api.url}/openapi.json`)
    assert.equal(res.status, 200)
    const doc = await res.json() as {openapi: string, paths: Record<string, Record<string, {security?: unknown[], requestBody?: unknown, responses: Record<string, unknown>}>>, components: {securitySchemes: unknown}}
    const verdict = await new Validator().validate(doc)
    assert.deepEqual(verdict.errors, undefined)
    assert.equal(verdict.valid, true)
    assert.match(doc.openapi, /^3\.1\./)
    assert.deepEqual(doc.components.securitySchemes, {bearer: {type: 'http', scheme: 'bearer', description: 'One of the node\'s API tokens (api.tokens)'}})
    assert.deepEqual(Object.keys(doc.paths).sort(), ['/api/v1/completions', '/api/v1/info', '/api/v1/miners', '/api/v1/tasks', '/api/v1/tasks/{id}', '/api/v1/usage', '/openapi.json', '/v1/chat/completions', '/v1/completions', '/v1/models'])
    assert.deepEqual(doc.paths['/openapi.json']?.get?.security, [], 'the document itself is open')
    for (const path of ['/api/v1/completions', '/v1/completions', '/v1/chat/completions']) {
      const op = doc.paths[path]?.post
      assert.ok(op?.requestBody != null, `${path} documents its body`)
      assert.ok(op.responses['200'] != null && op.responses['4XX'] != null, `${path} documents its answer and its errors`)
    }
  })

  it('refuses malformed requests by schema, naming the field, before the handler runs', async () => {
    const cases: Array<[string, string, unknown, string | null, string]> = [
      ['/api/v1/completions', 'INVALID_FIELD', {max_tokens: 8}, 'prompt', '"prompt" must be a non-empty string, got undefined'],
      ['/api/v1/completions', 'INVALID_FIELD', {prompt: 'x', max_tokens: 'ten'}, 'max_tokens', '"max_tokens" must be an integer in [1, 4096], got "ten"'],
      ['/api/v1/completions', 'INVALID_FIELD', {prompt: 'x', mode: 'fastest'}, 'mode', '"mode" must be one of parallel, competing, got "fastest"'],
      ['/api/v1/completions', 'INVALID_FIELD', {prompt: 'x', top_p: 2}, 'top_p', '"top_p" must be a number in [0, 1], got 2'],
      ['/api/v1/completions', 'INVALID_FIELD', {prompt: 'x', stream: 'yes'}, 'stream', '"stream" must be true or false, got "yes"'],
      ['/api/v1/completions', 'INVALID_REQUEST', [1, 2], null, 'request body must be a JSON object'],
      ['/api/v1/completions', 'INVALID_REQUEST', '', null, 'request body is missing: send a JSON object'],
      ['/v1/completions', 'INVALID_FIELD', {model: 'stories260K'}, 'prompt', '"prompt" must be a non-empty string or a one-element array of a non-empty string, got undefined'],
      ['/v1/completions', 'INVALID_FIELD', {prompt: 'x', redundancy: 0}, 'redundancy', '"redundancy" must be an integer in [1, 32], got 0'],
      ['/v1/completions', 'INVALID_FIELD', {prompt: 'x', model: {id: 1}}, 'model', '"model" must be a non-empty string or an integer >= 0, got {"id":1}'],
      ['/v1/chat/completions', 'INVALID_FIELD', {messages: []}, 'messages', '"messages" must be a non-empty array of {role, content}, got []'],
      ['/v1/chat/completions', 'INVALID_FIELD', {messages: [{role: 'robot', content: 'hi'}]}, 'messages[0].role', '"messages[0].role" must be one of system, user, assistant, got "robot"'],
      ['/v1/chat/completions', 'INVALID_FIELD', {messages: [{role: 'user', content: 'a'}, {role: 'user', content: 3}]}, 'messages[1].content', '"messages[1].content" must be a string or an array of {type, text}, got 3'],
      ['/v1/chat/completions', 'INVALID_FIELD', {messages: [{role: 'user', content: 'a'}], max_completion_tokens: 5000}, 'max_completion_tokens', '"max_completion_tokens" must be an integer in [1, 4096], got 5000']
    ]
    for (const [path, code, body, param, message] of cases) {
      const {status, json} = await post(path, body)
      assert.equal(status, 400, `${path} ${JSON.stringify(body)}: ${JSON.stringify(json)}`)
      assert.deepEqual(json, {error: {message, type: 'invalid_request_error', param, code}})
    }
  })

  it('accepts fields it does not know and nulls for options, as OpenAI clients send them (the handler is reached)', async () => {
    const {status, json} = await post('/v1/chat/completions', {messages: [{role: 'user', content: 'hi', name: 'me'}], max_tokens: null, user: 'u1', logit_bias: {}, presence_penalty: 0})
    // The untouchable client's throw: past validation, into the handler.
    assert.equal(status, 500, JSON.stringify(json))
    assert.equal(json.error.code, 'INTERNAL')
  })
})
