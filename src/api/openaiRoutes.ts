import type {TaskRequest} from '../actors/oracle/messages.js'
import type {ModelId} from '../protocols/modelId.js'
import type {OracleClient} from './oracleClient.js'
import {ApiError, type ApiRequest, type ApiResult, type Route} from './httpApi.js'
import {chatMessages, completionPrompt, fullResponse, networkFields, finishReason, responseId, streamChunk, usage, usageChunk, type OpenAiKind, type ResponseHead} from './openaiFormat.js'
import {ChatCompletionRequestSchema, ChatCompletionSchema, CompletionRequestSchema, CompletionSchema, ModelListSchema} from './openaiSchemas.js'
import {asObject, completeCounted, fieldReaders, networkParams} from './oracleRoutes.js'
import {lazySse} from './sse.js'

/** OpenAI's default when a completion request names no `max_tokens`. */
const OPENAI_DEFAULT_MAX_TOKENS = 16

/**
 * OpenAI-compatible endpoints, so existing clients work with `baseURL` at the oracle. The
 * network's own facts (task id, miners, agreement, transactions) ride in a `cortensor` field
 * that OpenAI clients ignore; `mode`/`redundancy` may be sent as extra body fields.
 */
export function openaiRoutes (client: OracleClient): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/models',
      schema: {summary: 'Every active registered model, by the name requests use (OpenAI)', tags: ['openai'], response: {200: ModelListSchema}},
      handler: async () => {
        // Every active registered model, named as requests name it; how many miners serve it rides along.
        const models = (await client.models()).filter(m => m.active)
        return {
          json: {
            object: 'list',
            data: models.map(m => ({
              id: m.name, object: 'model', created: 0, owned_by: `cortensor:${client.init.network.networkId}`,
              cortensor: {model_id: m.id, quantization: m.quantization, size_bytes: m.sizeBytes, cid: m.cid, miners: m.miners, miners_loaded: m.loaded, verifiable: m.verifiable}
            }))
          }
        }
      }
    },
    {
      method: 'POST',
      path: '/v1/completions',
      schema: {summary: 'A text completion (OpenAI); `stream: true` answers with server-sent chunks', tags: ['openai'], body: CompletionRequestSchema, response: {200: CompletionSchema}},
      handler: async (req) => await serve('completion', req)
    },
    {
      method: 'POST',
      path: '/v1/chat/completions',
      schema: {summary: 'A chat completion (OpenAI), rendered with the model\'s chat template; `stream: true` answers with server-sent chunks', tags: ['openai'], body: ChatCompletionRequestSchema, response: {200: ChatCompletionSchema}},
      handler: async (req) => await serve('chat', req)
    }
  ]

  async function serve (kind: OpenAiKind, req: ApiRequest): Promise<ApiResult> {
    const body = asObject(req.body)
    const signal = req.signal
    const model = await client.resolveModel(body.model, 'model')
    const prompt = kind === 'chat' ? await renderChat(model.id, body.messages) : completionPrompt(body.prompt)
    const promptTokens = await client.checkPrompt(model.id, prompt, kind === 'chat' ? 'messages' : 'prompt')
    if (body.n != null && body.n !== 1) throw new ApiError(400, 'UNSUPPORTED', '"n" must be 1: each choice is a task of its own on this network', 'n')
    const maxTokensField = kind === 'chat' && body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens'
    const request: TaskRequest = {
      prompt,
      ...networkParams(body, client.init.defaults, fieldReaders(body).int(maxTokensField, kind === 'chat' ? client.init.defaults.defaultMaxTokens : OPENAI_DEFAULT_MAX_TOKENS, 1, 4096)),
      modelId: model.id
    }
    const created = Math.floor(Date.now() / 1000)

    if (body.stream !== true) {
      const record = await completeCounted(client, req, request, promptTokens, {signal})
      return {json: fullResponse({kind, id: responseId(kind, record.taskId), created, model: model.name}, record, usage(promptTokens, client.completionTokens(record)))}
    }
    const includeUsage = (body.stream_options as {include_usage?: unknown} | undefined)?.include_usage === true
    return {
      stream: async (res) => {
        // The task id is known only with the answer; chunks before it share a provisional id.
        const head: ResponseHead = {kind, id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-pending`, created, model: model.name}
        // Opened on the first token: a request refused before any (no miner ready) still gets its status.
        const sse = lazySse(res, send => { if (kind === 'chat') send(streamChunk(head, {role: true, text: ''})) })
        let streamed = ''
        try {
          const record = await completeCounted(client, req, request, promptTokens, {
            signal,
            onToken: text => {
              streamed += text
              sse.send(streamChunk(head, {text}))
            }
          })
          head.id = responseId(kind, record.taskId)
          if (record.answer != null && !record.answer.startsWith(streamed)) {
            // What streamed (a majority's verified prefix) is not how the verified answer begins: say so rather than end as if complete.
            throw new ApiError(502, 'STREAM_SUPERSEDED', `the streamed text is not the verified answer of task ${record.taskId}; read it at /api/v1/tasks/${record.taskId}`)
          }
          // Nothing streamed (the oracle releases only verified text, and the rest of the answer with it): the answer goes out in one piece.
          if (streamed === '' && record.answer != null) sse.send(streamChunk(head, {text: record.answer}))
          const completionTokens = client.completionTokens(record)
          sse.send(streamChunk(head, {finish: finishReason(completionTokens, record.params.maxTokens)}, {cortensor: networkFields(record)}))
          if (includeUsage) sse.send(usageChunk(head, usage(promptTokens, completionTokens)))
          sse.send('[DONE]')
        } catch (err) {
          if (!(err instanceof ApiError) || !sse.opened) throw err
          // Headers are gone: OpenAI clients raise an `error` object met in the stream.
          sse.send({error: {message: err.message, type: 'server_error', param: err.param, code: err.code}})
        } finally {
          sse.end()
        }
      }
    }
  }

  async function renderChat (modelId: ModelId, messages: unknown): Promise<string> {
    const parsed = chatMessages(messages)
    const tools = await client.init.promptToolsOf(modelId)
    if (tools == null) throw new ApiError(503, 'MODEL_UNAVAILABLE', `the oracle has no copy of model ${modelId} (yet) to render its chat template`)
    return tools.renderChat(parsed)
  }
}
