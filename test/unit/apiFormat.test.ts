/** The gateway's wire formats on their own: SSE events, OpenAI chunks and errors, request parsing. */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import type {TaskRecord} from '../../src/actors/oracle/messages.js'
import {ApiError, errorBody} from '../../src/api/httpApi.js'
import {chatMessages, completionPrompt, fullResponse, finishReason, responseId, streamChunk, usage, usageChunk, type ResponseHead} from '../../src/api/openaiFormat.js'
import {asObject, networkParams} from '../../src/api/oracleRoutes.js'
import {sseEvent} from '../../src/api/sse.js'
import {toModelId} from '../../src/protocols/modelId.js'
import {fakeAddress as addr} from '../support/fakeAddress.js'

const record: TaskRecord = {
  taskId: '77', phase: 'running', mode: 'parallel', k: 3, modelId: toModelId(1), prompt: 'Once', seed: 1,
  params: {maxTokens: 4, temperature: 0, topK: 0, topP: 1},
  assignees: [addr(0xa), addr(0xb), addr(0xc)], reassignments: [], precommits: [], results: [], reveals: [],
  answer: ' upon a time', agreement: {status: 'agreed', agreeing: [addr(0xa), addr(0xb), addr(0xc)], dissenting: [], verified: true, rejected: []},
  timings: {requestedAt: 0}, txs: [{label: 'createTask', hash: '0x01', blockNumber: 5}], trail: []
}

/** What an OpenAI client's SSE reader sees: `data:` payloads, one per event. */
function dataLines (wire: string): string[] {
  return wire.split('\n\n').filter(block => block !== '').map(block => block.split('\n').filter(l => l.startsWith('data: ')).map(l => l.slice(6)).join('\n'))
}

describe('server-sent events', () => {
  it('frames JSON as one data line ending with a blank line, with an optional event name', () => {
    assert.equal(sseEvent({text: 'a'}), 'data: {"text":"a"}\n\n')
    assert.equal(sseEvent({text: 'a'}, 'token'), 'event: token\ndata: {"text":"a"}\n\n')
    assert.equal(sseEvent('[DONE]'), 'data: [DONE]\n\n')
  })

  it('keeps newlines inside text and big integers intact', () => {
    assert.deepEqual(dataLines(sseEvent({text: 'one\ntwo', wei: 10n ** 20n})).map(d => JSON.parse(d) as unknown), [{text: 'one\ntwo', wei: '100000000000000000000'}])
    assert.deepEqual(dataLines(sseEvent('line 1\nline 2')), ['line 1\nline 2'])
  })
})

describe('OpenAI formats', () => {
  const chat: ResponseHead = {kind: 'chat', id: 'chatcmpl-77', created: 1700000000, model: 'stories260K'}
  const completion: ResponseHead = {...chat, kind: 'completion', id: 'cmpl-77'}

  it('streams chat deltas: the role first, then content, then finish_reason with the network fields', () => {
    assert.deepEqual(streamChunk(chat, {role: true, text: ''}), {id: 'chatcmpl-77', object: 'chat.completion.chunk', created: 1700000000, model: 'stories260K', choices: [{index: 0, delta: {role: 'assistant', content: ''}, logprobs: null, finish_reason: null}]})
    assert.deepEqual((streamChunk(chat, {text: ' upon'}) as {choices: unknown[]}).choices, [{index: 0, delta: {content: ' upon'}, logprobs: null, finish_reason: null}])
    const last = streamChunk(chat, {finish: 'stop'}, {cortensor: {task_id: '77'}}) as {choices: unknown[], cortensor: unknown}
    assert.deepEqual(last.choices, [{index: 0, delta: {}, logprobs: null, finish_reason: 'stop'}])
    assert.deepEqual(last.cortensor, {task_id: '77'})
  })

  it('streams completions as text_completion chunks, and usage as a chunk without choices', () => {
    assert.deepEqual(streamChunk(completion, {text: ' a'}), {id: 'cmpl-77', object: 'text_completion', created: 1700000000, model: 'stories260K', choices: [{index: 0, text: ' a', logprobs: null, finish_reason: null}]})
    assert.deepEqual(usageChunk(chat, usage(5, 4)), {id: 'chatcmpl-77', object: 'chat.completion.chunk', created: 1700000000, model: 'stories260K', choices: [], usage: {prompt_tokens: 5, completion_tokens: 4, total_tokens: 9}})
  })

  it('answers in full with the message, usage, finish reason and the cortensor field', () => {
    const body = fullResponse(chat, record, usage(5, 4)) as Record<string, any>
    assert.equal(body.object, 'chat.completion')
    assert.deepEqual(body.choices, [{index: 0, message: {role: 'assistant', content: ' upon a time', refusal: null}, logprobs: null, finish_reason: 'length'}])
    assert.deepEqual(body.usage, {prompt_tokens: 5, completion_tokens: 4, total_tokens: 9})
    assert.deepEqual(body.cortensor, {task_id: '77', mode: 'parallel', redundancy: 3, miners: [addr(0xa), addr(0xb), addr(0xc)], agreement: record.agreement, reassignments: [], txs: record.txs})
    assert.equal((fullResponse(completion, record, usage(null, 2)) as Record<string, any>).choices[0].text, ' upon a time')
    assert.equal(responseId('chat', '77'), 'chatcmpl-77')
    assert.equal(finishReason(3, 4), 'stop')
    assert.deepEqual(usage(null, 2), {prompt_tokens: 0, completion_tokens: 2, total_tokens: 2})
  })

  it('errors as {error: {message, type, param, code}} with the type of the status', () => {
    const types: Array<[number, string]> = [[400, 'invalid_request_error'], [413, 'invalid_request_error'], [401, 'authentication_error'], [404, 'not_found_error'], [503, 'unavailable_error'], [500, 'server_error']]
    for (const [status, type] of types) assert.deepEqual(errorBody('CODE', 'what went wrong', status, 'prompt'), {error: {message: 'what went wrong', type, param: 'prompt', code: 'CODE'}})
    assert.equal(errorBody('X', 'm').error.param, null)
  })
})

describe('request parsing', () => {
  const defaults = {defaultRedundancy: 1}
  const refused = (fn: () => unknown, status: number, param: string | null, message: RegExp): void => {
    assert.throws(fn, (err: unknown) => err instanceof ApiError && err.type.status === status && err.param === param && message.test(err.message))
  }

  it('needs a JSON object', () => {
    refused(() => asObject(undefined), 400, null, /body is missing/)
    refused(() => asObject([1]), 400, null, /must be a JSON object/)
    assert.deepEqual(asObject({a: 1}), {a: 1})
  })

  it('reads the network knobs with defaults, naming the field at fault', () => {
    assert.deepEqual(networkParams({}, defaults, 64), {mode: 'parallel', redundancy: 1, seed: 42, params: {maxTokens: 64, temperature: 0, topK: 0, topP: 1}})
    assert.deepEqual(networkParams({mode: 'competing', redundancy: 3, seed: 7, temperature: 0.8, top_k: 40, top_p: 0.9}, defaults, 16), {mode: 'competing', redundancy: 3, seed: 7, params: {maxTokens: 16, temperature: 0.8, topK: 40, topP: 0.9}})
    refused(() => networkParams({mode: 'fastest'}, defaults, 64), 400, 'mode', /"mode" must be one of parallel, competing, got "fastest"/)
    refused(() => networkParams({redundancy: '3'}, defaults, 64), 400, 'redundancy', /"redundancy" must be an integer/)
    refused(() => networkParams({top_p: 2}, defaults, 64), 400, 'top_p', /"top_p" must be a number in \[0, 1\], got 2/)
    refused(() => networkParams({seed: 1.5}, defaults, 64), 400, 'seed', /"seed" must be an integer/)
  })

  it('takes a completion prompt as a string or a one-element array', () => {
    assert.equal(completionPrompt('Once'), 'Once')
    assert.equal(completionPrompt(['Once']), 'Once')
    refused(() => completionPrompt(['a', 'b']), 400, 'prompt', /"prompt" must be a non-empty string/)
    refused(() => completionPrompt(''), 400, 'prompt', /"prompt" must be a non-empty string/)
  })

  it('takes chat messages with known roles and string or text-part content', () => {
    assert.deepEqual(chatMessages([{role: 'system', content: 'Be brief.'}, {role: 'user', content: [{type: 'text', text: 'Hi'}, {type: 'text', text: '!'}]}]),
      [{role: 'system', content: 'Be brief.'}, {role: 'user', content: 'Hi!'}])
    refused(() => chatMessages([]), 400, 'messages', /"messages" must be a non-empty array/)
    refused(() => chatMessages([{role: 'robot', content: 'x'}]), 400, 'messages[0].role', /must be system, user or assistant, got "robot"/)
    refused(() => chatMessages([{role: 'user', content: 'a'}, {role: 'user', content: 3}]), 400, 'messages[1].content', /must be a string or text parts/)
  })
})
