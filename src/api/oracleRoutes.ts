import type {ActorRef, ActorSystem} from '../actors/actorSystem.js'
import type {ChainMessage} from '../actors/chain/messages.js'
import {ASK_TIMEOUT_MS} from '../actors/askTimeouts.js'
import type {CompleteReply, CompletionRequest, OracleMessage, TaskRecord} from '../actors/oracle/messages.js'
import type {MinerView} from '../actors/oracle/selectMiners.js'
import {MAX_TASK_REDUNDANCY, TASK_MODES} from '../protocols/messages.js'
import {ApiError, type Route} from './httpApi.js'

export interface OracleRoutesInit {
  system: ActorSystem
  oracle: ActorRef<OracleMessage>
  /** For reads the API needs (NodeStats counters: `Read nodeStats.statsOf(address)`). */
  chain: ActorRef<ChainMessage>
  network: {networkId: string, chainId: number, rpcUrl: string, contracts: Record<string, string>, deployBlock: number}
  modelId: string
  /** The registry's record of the served model and the oracle's verified copy of it (it seeds it); undefined when it has none. */
  model: Promise<{name: string, path: string, quantization: string, sizeBytes: number, cid: string} | undefined>
  defaults: {defaultRedundancy: number, defaultMaxTokens: number}
  /** Longest a request may wait for its miners (reassignments included). */
  resultTimeoutMs: number
}

/** The oracle's user-facing API: completions, and the tasks and miners behind them. */
export function oracleRoutes (init: OracleRoutesInit): Route[] {
  const {system, oracle} = init
  return [
    {
      method: 'POST',
      path: '/api/v1/completions',
      handler: async (req) => {
        const request = parseCompletionRequest(req.body, init)
        const reply = await system.ask<OracleMessage, CompleteReply>(oracle, replyTo => ({type: 'Complete', request, replyTo}), init.resultTimeoutMs + ASK_TIMEOUT_MS.chainSend)
        if (reply.type === 'Rejected') throw new ApiError(reply.status, reply.code, reply.error)
        return {json: completionResponse(reply.record)}
      }
    },
    {
      method: 'GET',
      path: '/api/v1/tasks',
      handler: async () => ({json: {tasks: await system.ask<OracleMessage, TaskRecord[]>(oracle, replyTo => ({type: 'ListTasks', replyTo}), ASK_TIMEOUT_MS.status)}})
    },
    {
      method: 'GET',
      path: '/api/v1/tasks/:id',
      handler: async (req) => {
        const id = req.params.id ?? ''
        if (!/^\d{1,78}$/.test(id)) throw new ApiError(400, 'INVALID_TASK_ID', `task id must be a decimal number, got "${id}"`)
        const record = await system.ask<OracleMessage, TaskRecord | null>(oracle, replyTo => ({type: 'GetTask', taskId: id, replyTo}), ASK_TIMEOUT_MS.status)
        if (record == null) throw new ApiError(404, 'TASK_NOT_FOUND', `no task ${id} on this oracle`)
        return {json: record}
      }
    },
    {
      method: 'GET',
      path: '/api/v1/miners',
      handler: async () => ({json: {miners: await system.ask<OracleMessage, MinerView[]>(oracle, replyTo => ({type: 'ListMiners', replyTo}), ASK_TIMEOUT_MS.status)}})
    }
  ]
}

function completionResponse (record: TaskRecord): unknown {
  return {
    task_id: record.taskId,
    answer: record.answer ?? null,
    mode: record.mode,
    redundancy: record.k,
    miners: record.assignees,
    agreement: record.agreement ?? null,
    reassignments: record.reassignments,
    timings: {
      total_ms: (record.timings.answeredAt ?? Date.now()) - record.timings.requestedAt,
      gossip_ms: record.timings.broadcastAt == null ? null : record.timings.broadcastAt - record.timings.requestedAt,
      first_result_ms: record.timings.firstResultAt == null ? null : record.timings.firstResultAt - record.timings.requestedAt
    },
    txs: record.txs
  }
}

/** Validates a completion request body; every problem names the field. */
export function parseCompletionRequest (body: unknown, init: Pick<OracleRoutesInit, 'modelId' | 'defaults'>): CompletionRequest {
  if (typeof body !== 'object' || body == null || Array.isArray(body)) throw new ApiError(400, 'INVALID_REQUEST', 'request body must be a JSON object')
  const b = body as Record<string, unknown>
  const int = (field: string, fallback: number, min: number, max: number): number => {
    const v = b[field] ?? fallback
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ApiError(400, 'INVALID_FIELD', `"${field}" must be an integer in [${min}, ${max}], got ${JSON.stringify(b[field])}`)
    return v
  }
  const num = (field: string, fallback: number, min: number, max: number): number => {
    const v = b[field] ?? fallback
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new ApiError(400, 'INVALID_FIELD', `"${field}" must be a number in [${min}, ${max}], got ${JSON.stringify(b[field])}`)
    return v
  }
  if (typeof b.prompt !== 'string' || b.prompt.length === 0) throw new ApiError(400, 'INVALID_FIELD', `"prompt" must be a non-empty string, got ${JSON.stringify(b.prompt)}`)
  const mode = b.mode ?? 'parallel'
  if (typeof mode !== 'string' || !(TASK_MODES as readonly string[]).includes(mode)) throw new ApiError(400, 'INVALID_FIELD', `"mode" must be one of ${TASK_MODES.join(', ')}, got ${JSON.stringify(b.mode)}`)
  if (b.model != null && String(b.model) !== init.modelId) throw new ApiError(404, 'UNKNOWN_MODEL', `model ${JSON.stringify(b.model)} is not served by this oracle (serves ${init.modelId})`)
  return {
    prompt: b.prompt,
    maxTokens: int('max_tokens', init.defaults.defaultMaxTokens, 1, 4096),
    mode: mode as CompletionRequest['mode'],
    redundancy: int('redundancy', init.defaults.defaultRedundancy, 1, MAX_TASK_REDUNDANCY),
    seed: int('seed', 42, 0, 0xffff_ffff),
    temperature: num('temperature', 0, 0, 10),
    topK: int('top_k', 0, 0, 1000),
    topP: num('top_p', 1, 0, 1),
    modelId: init.modelId
  }
}
