import type {TaskRecord} from '../actors/oracle/messages.js'
import type {ChatMessage} from '../inference/promptTools.js'
import {ApiError} from './httpApi.js'

/**
 * OpenAI's wire shapes, as pure functions of a task record, so the formats are tested on their
 * own and the routes only decide when to send what.
 */
export type OpenAiKind = 'completion' | 'chat'

export interface ResponseHead {
  kind: OpenAiKind
  id: string
  created: number
  model: string
}

export interface Usage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
}

const CHAT_ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant'])

export function responseId (kind: OpenAiKind, taskId: string): string {
  return `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${taskId}`
}

/** `length` when the miner stopped at `max_tokens`, else `stop` (end of text). */
export function finishReason (completionTokens: number, maxTokens: number): 'length' | 'stop' {
  return completionTokens >= maxTokens ? 'length' : 'stop'
}

export function usage (promptTokens: number | null, completionTokens: number): Usage {
  return {prompt_tokens: promptTokens ?? 0, completion_tokens: completionTokens, total_tokens: (promptTokens ?? 0) + completionTokens}
}

/** The network's own facts, in the extra field OpenAI clients ignore. */
export function networkFields (record: TaskRecord): unknown {
  return {task_id: record.taskId, mode: record.mode, redundancy: record.k, miners: record.assignees, agreement: record.agreement ?? null, reassignments: record.reassignments, txs: record.txs}
}

/**
 * One streamed chunk: `chat.completion.chunk` with a `delta`, or `text_completion` with `text`.
 * The first chat chunk carries the role; the last carries `finish_reason` (and `cortensor`).
 */
export function streamChunk (head: ResponseHead, piece: {text?: string, finish?: string, role?: true}, extra: Record<string, unknown> = {}): unknown {
  const finish_reason = piece.finish ?? null
  if (head.kind === 'chat') {
    const delta = {...(piece.role === true ? {role: 'assistant'} : {}), ...(piece.text == null ? {} : {content: piece.text})}
    return {id: head.id, object: 'chat.completion.chunk', created: head.created, model: head.model, choices: [{index: 0, delta, logprobs: null, finish_reason}], ...extra}
  }
  return {id: head.id, object: 'text_completion', created: head.created, model: head.model, choices: [{index: 0, text: piece.text ?? '', logprobs: null, finish_reason}], ...extra}
}

/** The chunk `stream_options.include_usage` asks for: no choices, only the counts. */
export function usageChunk (head: ResponseHead, counts: Usage): unknown {
  return {id: head.id, object: head.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created: head.created, model: head.model, choices: [], usage: counts}
}

export function fullResponse (head: ResponseHead, record: TaskRecord, counts: Usage): unknown {
  const finish = finishReason(counts.completion_tokens, record.params.maxTokens)
  const choice = head.kind === 'chat'
    ? {index: 0, message: {role: 'assistant', content: record.answer ?? '', refusal: null}, logprobs: null, finish_reason: finish}
    : {index: 0, text: record.answer ?? '', logprobs: null, finish_reason: finish}
  return {
    id: head.id,
    object: head.kind === 'chat' ? 'chat.completion' : 'text_completion',
    created: head.created,
    model: head.model,
    choices: [choice],
    usage: counts,
    cortensor: networkFields(record)
  }
}

/** A completion's `prompt`: a string, or OpenAI's one-element array (more would be several tasks). */
export function completionPrompt (prompt: unknown): string {
  const text = Array.isArray(prompt) && prompt.length === 1 ? prompt[0] : prompt
  if (typeof text !== 'string' || text.length === 0) throw new ApiError(400, 'INVALID_FIELD', `"prompt" must be a non-empty string, got ${JSON.stringify(prompt)}`, 'prompt')
  return text
}

/** A chat's `messages`: roles checked, content as a string or OpenAI's text parts. */
export function chatMessages (messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new ApiError(400, 'INVALID_FIELD', `"messages" must be a non-empty array of {role, content}, got ${JSON.stringify(messages)}`, 'messages')
  return messages.map((m: unknown, i) => {
    const {role, content} = (typeof m === 'object' && m != null ? m : {}) as {role?: unknown, content?: unknown}
    if (typeof role !== 'string' || !CHAT_ROLES.has(role)) throw new ApiError(400, 'INVALID_FIELD', `"messages[${i}].role" must be system, user or assistant, got ${JSON.stringify(role)}`, `messages[${i}].role`)
    const text = typeof content === 'string' ? content : Array.isArray(content) ? content.map(part => (part as {text?: unknown}).text).filter(t => typeof t === 'string').join('') : null
    if (text == null) throw new ApiError(400, 'INVALID_FIELD', `"messages[${i}].content" must be a string or text parts, got ${JSON.stringify(content)}`, `messages[${i}].content`)
    return {role: role as ChatMessage['role'], content: text}
  })
}
