/**
 * The oracle as a gateway, against a running devnet (1 oracle + 3 miner processes, real chain,
 * real model): the official `openai` client unchanged, the router API with its on-chain trail,
 * bad input, client disconnects, and the dashboard in headless Chromium.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import OpenAI from 'openai'
import {Validator} from '@seriousme/openapi-schema-validator'
import {Compile} from 'typebox/compile'
import type {TaskRecord} from '../../src/actors/oracle/messages.js'
import {startDevnet, type Devnet} from '../../src/devnet/devnet.js'
import {PROJECT_ROOT} from '../../src/util/paths.js'
import {minersFree} from '../support/minersFree.js'
import {until} from '../support/until.js'

const CONTEXT = 2048
/** A miner's heartbeat reports a busy slot for up to one interval after its last task. */
const FREE_WAIT_MS = 20_000
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync)
let devnet: Devnet
let dir: string
let client: OpenAI

async function api (path: string, init: RequestInit & {token?: string | null} = {}): Promise<{status: number, json: any}> {
  const token = init.token === undefined ? devnet.apiToken : init.token
  const res = await fetch(`${devnet.apiUrl}${path}`, {...init, headers: {'content-type': 'application/json', ...(token == null ? {} : {authorization: `Bearer ${token}`}), ...init.headers}})
  return {status: res.status, json: await res.json()}
}

async function settled (taskId: string): Promise<TaskRecord> {
  return await until(`task ${taskId} settled`, 60_000, async () => {
    const {json} = await api(`/api/v1/tasks/${taskId}`)
    return json.phase === 'ended' || json.phase === 'expired' ? json as TaskRecord : undefined
  })
}

async function minerStatus (index: number): Promise<{mining: {lost: number}, inference: {running: number}}> {
  const res = await fetch(`${devnet.miners[index]?.info.api}/api/v1/status`)
  return await res.json() as {mining: {lost: number}, inference: {running: number}}
}

describe('gateway: router API, OpenAI compatibility, streaming, dashboard', {timeout: 300_000}, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cortensor-gateway-'))
    devnet = await startDevnet({miners: 3, dir, logLevel: 'warn', nodeConfig: {inference: {contextSize: CONTEXT, sequences: 1}, stats: {heartbeatIntervalMs: 1_000}}})
    client = new OpenAI({apiKey: devnet.apiToken, baseURL: `${devnet.apiUrl}/v1`, maxRetries: 0})
    await until('3 miners ready at the oracle', 120_000, async () => {
      const {json} = await api('/api/v1/miners')
      return json.miners?.filter((m: {models: unknown[]}) => m.models.length > 0).length === 3 ? true : undefined
    })
  })

  after(async () => {
    await devnet?.stop()
    if (dir != null) await rm(dir, {recursive: true, force: true})
  })

  it('the openai client lists the model and gets a chat completion and a completion, with usage and network fields', async () => {
    const models = await client.models.list()
    assert.deepEqual(models.data.map(m => m.id), ['stories260K', 'stories260K-Q4_0'], 'every registered model, by the name requests use')
    const chat = await client.chat.completions.create({model: 'stories260K', messages: [{role: 'user', content: 'Tell me about a cat.'}], max_tokens: 24, seed: 7})
    assert.equal(chat.object, 'chat.completion')
    assert.ok((chat.choices[0]?.message.content ?? '').length > 0)
    assert.ok(chat.usage != null && chat.usage.prompt_tokens > 5 && chat.usage.completion_tokens > 0 && chat.usage.completion_tokens <= 24)
    const extra = (chat as unknown as {cortensor: {task_id: string, agreement: {status: string}}}).cortensor
    assert.equal(extra.agreement.status, 'agreed')
    const completion = await client.completions.create({model: 'stories260K', prompt: 'Once upon a time', max_tokens: 16})
    assert.equal(completion.object, 'text_completion')
    assert.match(completion.choices[0]?.text ?? '', /^, there was a little girl named Lily/)
    assert.equal(completion.choices[0]?.finish_reason, 'length')
    assert.equal(completion.usage?.completion_tokens, 16)
  })

  it('streams a chat completion whose text equals the non-streamed one for the same seed, ending the verdict in the last chunk', async () => {
    const params = {model: 'stories260K', messages: [{role: 'user' as const, content: 'Where did the dog go?'}], max_tokens: 32, seed: 11}
    const whole = await client.chat.completions.create(params)
    const stream = await client.chat.completions.create({...params, stream: true, stream_options: {include_usage: true}})
    let text = ''
    let chunks = 0
    let verdict: {agreement: {status: string}} | undefined
    let usage: unknown
    for await (const chunk of stream) {
      chunks++
      text += chunk.choices[0]?.delta.content ?? ''
      verdict ??= (chunk as unknown as {cortensor?: {agreement: {status: string}}}).cortensor
      usage ??= chunk.usage ?? undefined
    }
    assert.ok(chunks > 3, `tokens arrive as they are generated (${chunks} chunks)`)
    assert.equal(text, whole.choices[0]?.message.content)
    assert.equal(verdict?.agreement.status, 'agreed')
    assert.ok(usage != null)
  })

  it('shows the task in the router API with its complete on-chain trail', async () => {
    await minersFree(devnet, 3, FREE_WAIT_MS)
    const {status, json} = await api('/api/v1/completions', {method: 'POST', body: JSON.stringify({prompt: 'The red ball', max_tokens: 16, mode: 'parallel', redundancy: 3})})
    assert.equal(status, 200)
    const record = await settled(json.task_id)
    assert.equal(record.answer, json.answer)
    assert.deepEqual(record.trail.map(e => e.name).filter(n => n !== 'TaskStateChanged' && n !== 'MinerAssigned'),
      ['TaskCreated', 'TaskPrecommitted', 'TaskPrecommitted', 'TaskPrecommitted', 'TaskCommitted', 'TaskCommitted', 'TaskCommitted', 'TaskEnded'])
    assert.ok(record.trail.every(e => /^0x[0-9a-f]{64}$/.test(e.txHash) && e.blockNumber > 0))
    assert.ok(record.txs.some(t => t.label === 'createTask') && record.txs.some(t => t.label === 'end'))
    const {json: miners} = await api('/api/v1/miners')
    const paid = miners.miners.filter((m: {earnedWei: string}) => BigInt(m.earnedWei) > 0n)
    assert.equal(paid.length, 3, 'each miner shows its earnings')
    assert.ok(miners.miners.every((m: {chain: {pingCount: string}}) => Number(m.chain.pingCount) >= 1))
  })

  it('answers every bad input with its status and a message naming the problem, without disturbing other requests', async () => {
    await minersFree(devnet, 1, FREE_WAIT_MS)
    const good = api('/api/v1/completions', {method: 'POST', body: JSON.stringify({prompt: 'A happy frog', max_tokens: 8})})
    const cases: Array<[string, Promise<{status: number, json: any}>, number, RegExp]> = [
      ['invalid JSON', api('/v1/completions', {method: 'POST', body: '{"prompt": '}), 400, /not valid JSON/],
      ['missing prompt', api('/v1/completions', {method: 'POST', body: JSON.stringify({model: 'stories260K'})}), 400, /"prompt" must be a non-empty string/],
      ['wrong type', api('/api/v1/completions', {method: 'POST', body: JSON.stringify({prompt: 'x', max_tokens: 'ten'})}), 400, /"max_tokens" must be an integer/],
      ['bad messages', api('/v1/chat/completions', {method: 'POST', body: JSON.stringify({messages: [{role: 'robot', content: 'hi'}]})}), 400, /messages\[0\]\.role/],
      ['prompt over the context', api('/v1/completions', {method: 'POST', body: JSON.stringify({prompt: 'dog '.repeat(CONTEXT + 100)})}), 413, /prompt is \d+ tokens; the miners' context holds 2048/],
      ['unknown model', api('/v1/completions', {method: 'POST', body: JSON.stringify({model: 'gpt-4', prompt: 'x'})}), 404, /model "gpt-4" is not registered on this network; registered: stories260K \(id 1\), stories260K-Q4_0 \(id 2\)/],
      ['unknown task id', api('/api/v1/tasks/12345'), 404, /no task 12345/],
      ['missing token', api('/api/v1/tasks', {token: null}), 401, /missing bearer token/],
      ['wrong token', api('/v1/models', {token: 'nope'}), 401, /invalid bearer token/],
      ['no miner ready', api('/api/v1/completions', {method: 'POST', body: JSON.stringify({prompt: 'x', mode: 'parallel', redundancy: 5})}), 503, /needs 5 ready miners/]
    ]
    for (const [name, call, status, message] of cases) {
      const {status: got, json} = await call
      assert.equal(got, status, `${name}: ${JSON.stringify(json)}`)
      assert.match(json.error.message, message, name)
      assert.equal(typeof json.error.type, 'string', `${name}: OpenAI error shape`)
    }
    const {status, json} = await good
    assert.equal(status, 200, JSON.stringify(json))
    assert.equal(json.agreement.status, 'agreed')
  })

  it('serves a valid OpenAPI document at /openapi.json, and every answer of the network matches its schema there', async () => {
    const res = await fetch(`${devnet.apiUrl}/openapi.json`)
    assert.equal(res.status, 200, 'served without a token')
    const doc = await res.json() as {paths: Record<string, Record<string, {responses: Record<string, {content?: Record<string, {schema: unknown}>}>}>>}
    const verdict = await new Validator().validate(doc)
    assert.equal(verdict.valid, true, JSON.stringify(verdict.errors))
    const matches = (method: string, path: string, status: string, body: unknown): void => {
      const schema = doc.paths[path]?.[method]?.responses[status]?.content?.['application/json']?.schema
      assert.ok(schema != null, `${method.toUpperCase()} ${path} documents a ${status} answer`)
      const check = Compile(schema as Parameters<typeof Compile>[0])
      assert.ok(check.Check(body), `${method.toUpperCase()} ${path} ${status}: ${JSON.stringify(check.Errors(body).slice(0, 3))} in ${JSON.stringify(body).slice(0, 400)}`)
    }
    const usageBefore = (await api('/api/v1/usage')).json
    matches('get', '/api/v1/usage', '200', usageBefore)
    await minersFree(devnet, 1, FREE_WAIT_MS)
    const routed = await api('/api/v1/completions', {method: 'POST', body: JSON.stringify({prompt: 'A big tree', max_tokens: 8})})
    assert.equal(routed.status, 200, JSON.stringify(routed.json))
    matches('post', '/api/v1/completions', '200', routed.json)
    await minersFree(devnet, 1, FREE_WAIT_MS)
    const completion = await api('/v1/completions', {method: 'POST', body: JSON.stringify({model: 'stories260K', prompt: 'Once upon a time', max_tokens: 8})})
    assert.equal(completion.status, 200, JSON.stringify(completion.json))
    matches('post', '/v1/completions', '200', completion.json)
    await minersFree(devnet, 1, FREE_WAIT_MS)
    const chat = await api('/v1/chat/completions', {method: 'POST', body: JSON.stringify({model: 'stories260K', messages: [{role: 'user', content: 'Hi'}], max_tokens: 8})})
    assert.equal(chat.status, 200, JSON.stringify(chat.json))
    matches('post', '/v1/chat/completions', '200', chat.json)
    for (const path of ['/v1/models', '/api/v1/info', '/api/v1/tasks', '/api/v1/miners']) {
      const {status, json} = await api(path)
      assert.equal(status, 200, path)
      matches('get', path, '200', json)
    }
    matches('get', '/api/v1/tasks/{id}', '200', (await api(`/api/v1/tasks/${routed.json.task_id as string}`)).json)
    const missing = await api('/api/v1/tasks/12345')
    assert.equal(missing.status, 404)
    matches('get', '/api/v1/tasks/{id}', '4XX', missing.json)
    const invalid = await api('/v1/chat/completions', {method: 'POST', body: JSON.stringify({messages: [{role: 'robot', content: 'hi'}]})})
    assert.equal(invalid.status, 400)
    matches('post', '/v1/chat/completions', '4XX', invalid.json)
    // The token's usage counts what these requests used, as their answers reported it.
    const usage = (await api('/api/v1/usage')).json
    assert.equal(usage.token, usageBefore.token)
    assert.ok(usage.requests >= usageBefore.requests + 11, `requests counted (${usageBefore.requests} → ${usage.requests})`)
    assert.equal(usage.completion_tokens - usageBefore.completion_tokens, routed.json.completion_tokens + completion.json.usage.completion_tokens + chat.json.usage.completion_tokens)
    // The router's answer does not carry its prompt's tokens; they are counted besides the OpenAI routes' own.
    assert.ok(usage.prompt_tokens - usageBefore.prompt_tokens > completion.json.usage.prompt_tokens + chat.json.usage.prompt_tokens, `prompt tokens counted (${usageBefore.prompt_tokens} → ${usage.prompt_tokens})`)
  })

  it('a client that disconnects mid-stream cancels the work on its miners', async () => {
    await minersFree(devnet, 3, FREE_WAIT_MS)
    const before = await Promise.all([0, 1, 2].map(minerStatus))
    const usageBefore = (await api('/api/v1/usage')).json as {prompt_tokens: number}
    const controller = new AbortController()
    const res = await fetch(`${devnet.apiUrl}/api/v1/completions`, {
      method: 'POST', signal: controller.signal,
      headers: {'content-type': 'application/json', authorization: `Bearer ${devnet.apiToken}`},
      // Long enough (seconds) that only a cancellation can end it early.
      body: JSON.stringify({prompt: 'Once upon a time', max_tokens: CONTEXT - 16, mode: 'parallel', redundancy: 3, stream: true})
    })
    assert.equal(res.status, 200, await (res.status === 200 ? Promise.resolve('') : res.text()))
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    let seen = ''
    while (!seen.includes('event: token')) {
      const {done, value} = await reader.read()
      assert.ok(!done, `the stream ended before its first token: ${seen}`)
      seen += new TextDecoder().decode(value)
    }
    controller.abort()
    const cancelled = await until('the task to be cancelled', 10_000, async () => {
      const {json} = await api('/api/v1/tasks')
      return (json.tasks as TaskRecord[]).find(t => t.params.maxTokens === CONTEXT - 16 && t.error != null)
    })
    assert.match(cancelled.error ?? '', /client disconnected/)
    // Hanging up does not make the request free: its prompt counts to the token's usage.
    await until('the left request\'s prompt tokens counted', 5_000, async () => {
      const usageAfter = (await api('/api/v1/usage')).json as {prompt_tokens: number}
      return usageAfter.prompt_tokens > usageBefore.prompt_tokens ? true : undefined
    })
    await until('every miner to drop the task', 10_000, async () => {
      const now = await Promise.all([0, 1, 2].map(minerStatus))
      return now.every((s, i) => s.mining.lost === (before[i]?.mining.lost ?? 0) + 1 && s.inference.running === 0) ? true : undefined
    })
    // Their next task starts at once (each miner has one slot here).
    await minersFree(devnet, 3, FREE_WAIT_MS)
    const {status, json} = await api('/api/v1/completions', {method: 'POST', body: JSON.stringify({prompt: 'A small bird', max_tokens: 8, mode: 'parallel', redundancy: 3})})
    assert.equal(status, 200)
    assert.equal(json.agreement.status, 'agreed')
    const next = await settled(json.task_id)
    assert.equal(next.trail.filter(e => e.name === 'TaskCommitted').length, 3, 'the next task was committed by all three')
    const {json: dropped} = await api(`/api/v1/tasks/${cancelled.taskId}`)
    assert.deepEqual([dropped.precommits.length, dropped.reveals.length], [0, 0], 'the cancelled task was never precommitted nor revealed')
    assert.ok(!(dropped.trail as TaskRecord['trail']).some(e => e.name === 'TaskCommitted'))
  })

  it('cortensord ask streams the answer to stdout and the verdict to stderr; --json prints the response; errors name the problem', async () => {
    await minersFree(devnet, 3, FREE_WAIT_MS)
    const ask = (...args: string[]): {status: number | null, stdout: string, stderr: string} =>
      spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src', 'runtime', 'cli.ts'), 'ask', '--api', devnet.apiUrl, ...args], {cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 60_000})
    const streamed = ask('--token', devnet.apiToken, '--max-tokens', '16', '--redundancy', '3', 'Once upon a time')
    assert.equal(streamed.status, 0, streamed.stderr)
    assert.match(streamed.stdout, /^, there was a little girl named Lily/)
    assert.match(streamed.stderr, /^task \d+ · parallel k=3 · agreed 3\/3 · \d+ ms · miners 0x/)
    await minersFree(devnet, 1, FREE_WAIT_MS)
    const json = ask('--token', devnet.apiToken, '--max-tokens', '8', '--json', 'A happy frog')
    assert.equal(json.status, 0, json.stderr)
    const body = JSON.parse(json.stdout) as {task_id: string, answer: string, agreement: {status: string}}
    assert.equal(body.agreement.status, 'agreed')
    const refused = ask('--token', 'wrong', 'A happy frog')
    assert.equal(refused.status, 2)
    assert.equal(refused.stderr, 'cortensord: oracle answered 401 UNAUTHORIZED: invalid bearer token\n')
  })

  it('renders the nodes and a finished task\'s trail on the dashboard (headless Chromium)', {skip: CHROMIUM == null ? 'chromium is not installed (.ci/run installs it)' : false}, async () => {
    await mkdir(join(PROJECT_ROOT, 'test-artifacts'), {recursive: true})
    const url = `${devnet.apiUrl}/dashboard#token=${devnet.apiToken}`
    const common = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--virtual-time-budget=10000', '--window-size=1280,1600']
    const dom = spawnSync(CHROMIUM as string, [...common, '--dump-dom', url], {encoding: 'utf8', timeout: 60_000})
    assert.equal(dom.status, 0, dom.stderr)
    const html = dom.stdout
    for (const miner of devnet.miners) assert.ok(html.includes(miner.info.address.slice(0, 8)), `miner ${miner.name} listed`)
    assert.match(html, /TaskEnded/)
    assert.match(html, /TaskCommitted/)
    assert.match(html, /state Ended/)
    assert.match(html, /<td class="ok">ended<\/td>/)
    const shot = spawnSync(CHROMIUM as string, [...common, `--screenshot=${join(PROJECT_ROOT, 'test-artifacts', 'dashboard.png')}`, url], {encoding: 'utf8', timeout: 60_000})
    assert.equal(shot.status, 0, shot.stderr)
  })
})
