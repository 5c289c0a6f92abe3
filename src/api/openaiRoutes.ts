import type {CompletionRequest, TaskRecord} from '../actors/oracle/messages.js'
import type {ChatMessage} from '../inference/promptTools.js'
import type {Gateway} from './gateway.js'
import {ApiError, type Route} from './httpApi.js'
import {asObject, fieldReaders, networkParams} from './oracleRoutes.js'
import {openSse} from './sse.js'

/** OpenAI's default when a completion request names no `max_tokens`. */
const OPENAI_DEFAULT_MAX_TOKENS = 16
const CHAT_ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant'])

type Kind = 'completion' | 'chat'

/**
 * OpenAI-compatible endpoints, so existing clients work with `baseURL` at the oracle. The
 * network's own facts (task id, miners, agreement, transactions) ride in a `cortensor` field
 * that OpenAI clients ignore; `mode`/`redundancy` may be sent as extra body fields.
 */
export function openaiRoutes (gateway: Gateway): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/models',
      handler: async () => {
        const model = await gateway.init.model
        return {json: {object: 'list', data: [{id: model?.name ?? gateway.init.modelId, object: 'model', created: 0, owned_by: `cortensor:${gateway.init.network.networkId}`}]}}
      }
    },
    {method: 'POST', path: '/v1/completions', handler: async (req) => await serve('completion', asObject(req.body), req.signal)},
    {method: 'POST', path: '/v1/chat/completions', handler: async (req) => await serve('chat', asObject(req.body), req.signal)}
  ]

  async function serve (kind: Kind, body: Record<string, unknown>, signal: AbortSignal): Promise<Awaited<ReturnType<Route['handler']>>> {
    const prompt = kind === 'chat' ? await chatPrompt(body.messages) : completionPrompt(body.prompt)
    const promptTokens = await gateway.checkPrompt(prompt, kind === 'chat' ? 'messages' : 'prompt')
    if (body.n != null && body.n !== 1) throw new ApiError(400, 'UNSUPPORTED', '"n" must be 1: each choice is a task of its own on this network', 'n')
    if (body.stream != null && typeof body.stream !== 'boolean') throw new ApiError(400, 'INVALID_FIELD', `"stream" must be true or false, got ${JSON.stringify(body.stream)}`, 'stream')
    const maxTokensField = kind === 'chat' && body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens'
    const request: CompletionRequest = {
      prompt,
      maxTokens: fieldReaders(body).int(maxTokensField, kind === 'chat' ? gateway.init.defaults.defaultMaxTokens : OPENAI_DEFAULT_MAX_TOKENS, 1, 4096),
      ...networkParams(body, gateway),
      modelId: await gateway.resolveModel(body.model, 'model')
    }
    const model = (await gateway.init.model)?.name ?? gateway.init.modelId
    const created = Math.floor(Date.now() / 1000)

    if (body.stream !== true) {
      const record = await gateway.complete(request, {signal})
      return {json: fullResponse(kind, record, model, created, promptTokens, gateway.completionTokens(record))}
    }
    const includeUsage = (body.stream_options as {include_usage?: unknown} | undefined)?.include_usage === true
    return {
      stream: async (res) => {
        const sse = openSse(res)
        let id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-pending`
        let streamed = ''
        const chunk = (piece: {text?: string, finish?: string | null, role?: boolean}, extra: Record<string, unknown> = {}): unknown => kind === 'chat'
          ? {id, object: 'chat.completion.chunk', created, model, choices: [{index: 0, delta: {...(piece.role === true ? {role: 'assistant'} : {}), ...(piece.text == null ? {} : {content: piece.text})}, logprobs: null, finish_reason: piece.finish ?? null}], ...extra}
          : {id, object: 'text_completion', created, model, choices: [{index: 0, text: piece.text ?? '', logprobs: null, finish_reason: piece.finish ?? null}], ...extra}
        if (kind === 'chat') sse.send(chunk({role: true, text: ''}))
        try {
          const record = await gateway.complete(request, {
            signal,
            onToken: text => {
              streamed += text
              sse.send(chunk({text}))
            }
          })
          id = responseId(kind, record)
          // Nothing streamed (the lead miner's stream failed): the answer goes out in one piece.
          if (streamed === '' && record.answer != null) sse.send(chunk({text: record.answer}))
          const completionTokens = gateway.completionTokens(record)
          sse.send(chunk({finish: finishReason(record, completionTokens)}, {cortensor: networkFields(record)}))
          if (includeUsage) sse.send({id, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created, model, choices: [], usage: usage(promptTokens, completionTokens)})
          sse.send('[DONE]')
        } catch (err) {
          if (!(err instanceof ApiError)) throw err
          sse.send({error: {message: err.message, type: 'server_error', param: err.param, code: err.code}})
        } finally {
          sse.end()
        }
      }
    }
  }

  async function chatPrompt (messages: unknown): Promise<string> {
    if (!Array.isArray(messages) || messages.length === 0) throw new ApiError(400, 'INVALID_FIELD', `"messages" must be a non-empty array of {role, content}, got ${JSON.stringify(messages)}`, 'messages')
    const parsed: ChatMessage[] = messages.map((m: unknown, i) => {
      const {role, content} = (typeof m === 'object' && m != null ? m : {}) as {role?: unknown, content?: unknown}
      if (typeof role !== 'string' || !CHAT_ROLES.has(role)) throw new ApiError(400, 'INVALID_FIELD', `"messages[${i}].role" must be system, user or assistant, got ${JSON.stringify(role)}`, `messages[${i}].role`)
      const text = typeof content === 'string' ? content : Array.isArray(content) ? content.map(part => (part as {text?: unknown}).text).filter(t => typeof t === 'string').join('') : null
      if (text == null) throw new ApiError(400, 'INVALID_FIELD', `"messages[${i}].content" must be a string or text parts, got ${JSON.stringify(content)}`, `messages[${i}].content`)
      return {role: role as ChatMessage['role'], content: text}
    })
    const tools = await gateway.init.promptTools
    if (tools == null) throw new ApiError(503, 'MODEL_UNAVAILABLE', 'the oracle has no copy of the model yet to render the chat template')
    return tools.renderChat(parsed)
  }
}

function completionPrompt (prompt: unknown): string {
  // OpenAI allows a one-element array of strings; more would be several tasks.
  const text = Array.isArray(prompt) && prompt.length === 1 ? prompt[0] : prompt
  if (typeof text !== 'string' || text.length === 0) throw new ApiError(400, 'INVALID_FIELD', `"prompt" must be a non-empty string, got ${JSON.stringify(prompt)}`, 'prompt')
  return text
}

function responseId (kind: Kind, record: TaskRecord): string {
  return `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${record.taskId}`
}

function finishReason (record: TaskRecord, completionTokens: number): string {
  return completionTokens >= record.params.maxTokens ? 'length' : 'stop'
}

function usage (promptTokens: number | null, completionTokens: number): {prompt_tokens: number, completion_tokens: number, total_tokens: number} {
  return {prompt_tokens: promptTokens ?? 0, completion_tokens: completionTokens, total_tokens: (promptTokens ?? 0) + completionTokens}
}

function networkFields (record: TaskRecord): unknown {
  return {task_id: record.taskId, mode: record.mode, redundancy: record.k, miners: record.assignees, agreement: record.agreement ?? null, reassignments: record.reassignments, txs: record.txs}
}

function fullResponse (kind: Kind, record: TaskRecord, model: string, created: number, promptTokens: number | null, completionTokens: number): unknown {
  const finish = finishReason(record, completionTokens)
  const choice = kind === 'chat'
    ? {index: 0, message: {role: 'assistant', content: record.answer ?? '', refusal: null}, logprobs: null, finish_reason: finish}
    : {index: 0, text: record.answer ?? '', logprobs: null, finish_reason: finish}
  return {
    id: responseId(kind, record),
    object: kind === 'chat' ? 'chat.completion' : 'text_completion',
    created,
    model,
    choices: [choice],
    usage: usage(promptTokens, completionTokens),
    cortensor: networkFields(record)
  }
}
