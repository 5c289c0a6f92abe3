import type {TaskRecord, TaskRequest, TxRef} from '../actors/oracle/messages.js'
import {MAX_TASK_REDUNDANCY, TASK_MODES, type TaskMode} from '../protocols/messages.js'
import type {OracleClient, OracleClientInit} from './oracleClient.js'
import {Type} from 'typebox'
import {ApiError, type ApiRequest, type Route} from './httpApi.js'
import {InfoSchema, MinerSummarySchema, RouterCompletionRequestSchema, RouterCompletionSchema, TaskParamsSchema, TaskRecordSchema} from './oracleSchemas.js'
import {lazySse} from './sse.js'

/**
 * The router API: completions in the network's own terms (mode, redundancy), and the tasks and
 * miners behind them. `stream: true` answers with server-sent events: `token` events as verified
 * text comes (see VerifiedStream), then one `done` event carrying the verdict on every miner.
 */
export function oracleRoutes (client: OracleClient): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/v1/info',
      schema: {summary: 'The network this oracle serves: chain, contracts, models', tags: ['router'], response: {200: InfoSchema}},
      handler: async () => ({json: await client.info()})
    },
    {
      method: 'POST',
      path: '/api/v1/completions',
      schema: {
        summary: 'Runs a prompt on the network in its own terms (mode, redundancy); `stream: true` answers with `token` events and a last `done` event',
        tags: ['router'],
        body: RouterCompletionRequestSchema,
        response: {200: RouterCompletionSchema}
      },
      handler: async (req) => {
        const body = asObject(req.body)
        const request = await parseCompletionRequest(body, client)
        const promptTokens = await client.checkPrompt(request.modelId, request.prompt, 'prompt')
        if (body.stream !== true) {
          const record = await completeCounted(client, req, request, promptTokens, {signal: req.signal})
          return {json: completionResponse(record, client)}
        }
        return {
          stream: async (res) => {
            // Opened on the first token: a request refused before any (no miner ready) still gets its status.
            const sse = lazySse(res)
            try {
              const record = await completeCounted(client, req, request, promptTokens, {signal: req.signal, onToken: text => { sse.send({text}, 'token') }})
              sse.send(completionResponse(record, client), 'done')
            } catch (err) {
              if (!(err instanceof ApiError) || !sse.opened) throw err
              sse.send({error: {message: err.message, code: err.code, status: err.type.status}}, 'error')
            } finally {
              sse.end()
            }
          }
        }
      }
    },
    {
      method: 'GET',
      path: '/api/v1/tasks',
      schema: {summary: 'The tasks this oracle ran, with their on-chain trail', tags: ['router'], response: {200: Type.Object({tasks: Type.Array(TaskRecordSchema)})}},
      handler: async () => ({json: {tasks: await client.tasks()}})
    },
    {
      method: 'GET',
      path: '/api/v1/tasks/:id',
      schema: {summary: 'One task: its miners, results, agreement, transactions and contract events', tags: ['router'], params: TaskParamsSchema, response: {200: TaskRecordSchema}},
      handler: async (req) => ({json: await client.task(req.params.id ?? '')})
    },
    {
      method: 'GET',
      path: '/api/v1/miners',
      schema: {summary: 'Live miners as their heartbeats say, with their on-chain counters and earnings', tags: ['router'], response: {200: Type.Object({miners: Type.Array(MinerSummarySchema)})}},
      handler: async () => ({json: {miners: await client.miners()}})
    }
  ]
}

/** The body of `POST /api/v1/completions` (and the last SSE event of a streamed one): what its clients read. */
export interface RouterCompletion {
  task_id: string
  answer: string | null
  mode: TaskRecord['mode']
  redundancy: number
  miners: string[]
  agreement: NonNullable<TaskRecord['agreement']> | null
  reassignments: TaskRecord['reassignments']
  completion_tokens: number
  timings: {total_ms: number, gossip_ms: number | null, first_token_ms: number | null, first_result_ms: number | null}
  txs: TxRef[]
}

export function completionResponse (record: TaskRecord, client: OracleClient): RouterCompletion {
  return {
    task_id: record.taskId,
    answer: record.answer ?? null,
    mode: record.mode,
    redundancy: record.k,
    miners: record.assignees,
    agreement: record.agreement ?? null,
    reassignments: record.reassignments,
    completion_tokens: client.completionTokens(record),
    timings: {
      total_ms: (record.timings.answeredAt ?? Date.now()) - record.timings.requestedAt,
      gossip_ms: record.timings.broadcastAt == null ? null : record.timings.broadcastAt - record.timings.requestedAt,
      first_token_ms: record.timings.firstTokenAt == null ? null : record.timings.firstTokenAt - record.timings.requestedAt,
      first_result_ms: record.timings.firstResultAt == null ? null : record.timings.firstResultAt - record.timings.requestedAt
    },
    txs: record.txs
  }
}

/**
 * `client.complete`, with the usage it costs counted to the request's client: the prompt and the
 * completion of a task answered, the prompt of one the client walked away from (the miners
 * worked on it; hanging up mid-stream does not make a request free).
 */
export async function completeCounted (client: OracleClient, req: ApiRequest, request: TaskRequest, promptTokens: number | null, options: Parameters<OracleClient['complete']>[1]): Promise<TaskRecord> {
  try {
    const record = await client.complete(request, options)
    req.reportUsage({prompt: promptTokens ?? 0, completion: client.completionTokens(record)})
    return record
  } catch (err) {
    if (req.signal.aborted) req.reportUsage({prompt: promptTokens ?? 0, completion: 0})
    throw err
  }
}

export function asObject (body: unknown): Record<string, unknown> {
  if (body === undefined) throw new ApiError(400, 'INVALID_REQUEST', 'request body is missing: send a JSON object')
  if (typeof body !== 'object' || body == null || Array.isArray(body)) throw new ApiError(400, 'INVALID_REQUEST', 'request body must be a JSON object')
  return body as Record<string, unknown>
}

/** Field readers that name the field and what was wrong with it. */
export function fieldReaders (b: Record<string, unknown>): {
  int: (field: string, fallback: number, min: number, max: number) => number
  num: (field: string, fallback: number, min: number, max: number) => number
} {
  return {
    int: (field, fallback, min, max) => {
      const v = b[field] ?? fallback
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ApiError(400, 'INVALID_FIELD', `"${field}" must be an integer in [${min}, ${max}], got ${JSON.stringify(b[field])}`, field)
      return v
    },
    num: (field, fallback, min, max) => {
      const v = b[field] ?? fallback
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new ApiError(400, 'INVALID_FIELD', `"${field}" must be a number in [${min}, ${max}], got ${JSON.stringify(b[field])}`, field)
      return v
    }
  }
}

/**
 * The network's own knobs and the sampling settings, shared by every front door; `maxTokens`
 * comes parsed, because each front door names and bounds it its own way. Takes only the
 * defaults it falls back on, so it parses without a client.
 */
export function networkParams (b: Record<string, unknown>, defaults: Pick<OracleClientInit['defaults'], 'defaultRedundancy'>, maxTokens: number): Omit<TaskRequest, 'prompt' | 'modelId'> {
  const {int, num} = fieldReaders(b)
  const mode = b.mode ?? 'parallel'
  if (typeof mode !== 'string' || !(TASK_MODES as readonly string[]).includes(mode)) throw new ApiError(400, 'INVALID_FIELD', `"mode" must be one of ${TASK_MODES.join(', ')}, got ${JSON.stringify(b.mode)}`, 'mode')
  return {
    mode: mode as TaskMode,
    redundancy: int('redundancy', defaults.defaultRedundancy, 1, MAX_TASK_REDUNDANCY),
    seed: int('seed', 42, 0, 0xffff_ffff),
    params: {maxTokens, temperature: num('temperature', 0, 0, 10), topK: int('top_k', 0, 0, 1000), topP: num('top_p', 1, 0, 1)}
  }
}

async function parseCompletionRequest (b: Record<string, unknown>, client: OracleClient): Promise<TaskRequest> {
  if (typeof b.prompt !== 'string' || b.prompt.length === 0) throw new ApiError(400, 'INVALID_FIELD', `"prompt" must be a non-empty string, got ${JSON.stringify(b.prompt)}`, 'prompt')
  return {
    prompt: b.prompt,
    ...networkParams(b, client.init.defaults, fieldReaders(b).int('max_tokens', client.init.defaults.defaultMaxTokens, 1, 4096)),
    modelId: (await client.resolveModel(b.model, 'model')).id
  }
}
