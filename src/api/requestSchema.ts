import {Type, type TNull, type TOptional, type TSchema, type TUnion} from 'typebox'
import {Compile} from 'typebox/compile'
import type {TLocalizedValidationError} from 'typebox/error'

/**
 * Request validation from the routes' TypeBox schemas, answering as the hand-written checks did:
 * one line naming the field, what it must be and what came (`"max_tokens" must be an integer in
 * [1, 4096], got "ten"`), with the field as OpenAI's `param`.
 */
export class RequestFieldError extends Error {
  /** Fastify answers with this status; the API's error handler turns the error into OpenAI's shape. */
  readonly statusCode = 400

  constructor (
    readonly code: 'INVALID_FIELD' | 'INVALID_REQUEST',
    message: string,
    readonly param: string | null
  ) {
    super(message)
    this.name = 'RequestFieldError'
  }
}

/** A field clients may leave out or send as `null` (OpenAI's SDKs send `null` for unset options). */
export function optionalField<T extends TSchema> (schema: T): TOptional<TUnion<[T, TNull]>> {
  return Type.Optional(nullable(schema))
}

export function nullable<T extends TSchema> (schema: T): TUnion<[T, TNull]> {
  return Type.Union([schema, Type.Null()])
}

export type RequestPart = 'body' | 'querystring' | 'params' | 'headers'

/** Fastify's validator compiler: a compiled TypeBox check per route part, errors as `RequestFieldError`. */
export function requestValidator ({schema, httpPart}: {schema: unknown, httpPart?: string}): (data: unknown) => {value: unknown} | {error: Error} {
  const root = schema as TSchema
  const check = Compile(root)
  return (data) => {
    if (check.Check(data)) return {value: data}
    if (httpPart === 'body' && (data === undefined || data === null)) return {error: new RequestFieldError('INVALID_REQUEST', 'request body is missing: send a JSON object', null)}
    if (httpPart === 'body' && (typeof data !== 'object' || Array.isArray(data))) return {error: new RequestFieldError('INVALID_REQUEST', 'request body must be a JSON object', null)}
    return {error: fieldError(root, data, check.Errors(data))}
  }
}

/** The first failure, reported at the outermost union that contains it (a union's branches each fail their own way). */
export function fieldError (root: TSchema, data: unknown, errors: readonly TLocalizedValidationError[]): RequestFieldError {
  const first = errors[0]
  if (first == null) return new RequestFieldError('INVALID_REQUEST', 'the request does not match its schema', null)
  let path = pointerSegments(first.instancePath)
  if (first.keyword === 'required') {
    const missing = (first.params as {requiredProperties?: string[]}).requiredProperties?.[0]
    if (missing != null) path = [...path, missing]
  }
  const union = errors
    .filter(e => e.keyword === 'anyOf')
    .map(e => pointerSegments(e.instancePath))
    .filter(p => p.length <= path.length && p.every((segment, i) => segment === path[i]))
    .sort((a, b) => a.length - b.length)[0]
  if (union != null) path = union
  const param = paramName(path)
  const fieldSchema = schemaAt(root, path)
  const value = valueAt(data, path)
  const what = fieldSchema == null ? first.message : describeSchema(fieldSchema)
  return new RequestFieldError('INVALID_FIELD', `"${param}" must be ${what}, got ${echo(value)}`, param)
}

/** What a value of `schema` is, in words: `an integer in [1, 4096]`, `one of parallel, verified`. */
export function describeSchema (schema: TSchema): string {
  const s = schema as Record<string, unknown>
  if (Array.isArray(s.anyOf)) {
    const branches = (s.anyOf as TSchema[]).filter(b => (b as {type?: unknown}).type !== 'null')
    if (branches.length > 0 && branches.every(b => 'const' in b)) return `one of ${branches.map(b => String((b as {const: unknown}).const)).join(', ')}`
    return branches.map(describeSchema).join(' or ')
  }
  if ('const' in s) return JSON.stringify(s.const)
  switch (s.type) {
    case 'integer':
    case 'number': {
      const kind = s.type === 'integer' ? 'an integer' : 'a number'
      if (typeof s.minimum === 'number' && typeof s.maximum === 'number') return `${kind} in [${s.minimum}, ${s.maximum}]`
      if (typeof s.minimum === 'number') return `${kind} >= ${s.minimum}`
      return kind
    }
    case 'string':
      return s.minLength === 1 ? 'a non-empty string' : 'a string'
    case 'boolean':
      return 'true or false'
    case 'array': {
      const items = s.items == null ? 'values' : describeSchema(s.items as TSchema)
      if (s.minItems === 1 && s.maxItems === 1) return `a one-element array of ${items}`
      return `${s.minItems === 1 ? 'a non-empty array' : 'an array'} of ${items}`
    }
    case 'object':
      return s.properties == null ? 'an object' : `{${Object.keys(s.properties).join(', ')}}`
    default:
      return 'valid'
  }
}

/** `/messages/0/role` → `['messages', '0', 'role']` (RFC 6901 escapes undone). */
function pointerSegments (pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

/** `['messages', '0', 'role']` → `messages[0].role`, as OpenAI names a nested `param`. */
function paramName (path: readonly string[]): string {
  return path.map((segment, i) => /^\d+$/.test(segment) ? `[${segment}]` : i === 0 ? segment : `.${segment}`).join('')
}

/** The schema a path leads to, stepping into the branch of a union that has the next segment. */
function schemaAt (root: TSchema, path: readonly string[]): TSchema | undefined {
  let at: Record<string, unknown> | undefined = root as Record<string, unknown>
  for (const segment of path) {
    if (at == null) return undefined
    const candidates: Array<Record<string, unknown>> = Array.isArray(at.anyOf) ? at.anyOf as Array<Record<string, unknown>> : [at]
    let next: Record<string, unknown> | undefined
    for (const c of candidates) {
      const properties = c.properties as Record<string, Record<string, unknown>> | undefined
      next = /^\d+$/.test(segment) && c.type === 'array' ? c.items as Record<string, unknown> : properties?.[segment]
      if (next != null) break
    }
    at = next
  }
  return at as TSchema | undefined
}

/** Longest part of a wrong value an error quotes back: a 256 KiB body in the wrong field is not worth echoing. */
const ECHO_MAX_CHARS = 100

function echo (value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length <= ECHO_MAX_CHARS ? text : `${text.slice(0, ECHO_MAX_CHARS)}… (${text.length} chars)`
}

function valueAt (data: unknown, path: readonly string[]): unknown {
  let at = data
  for (const segment of path) at = typeof at === 'object' && at != null ? (at as Record<string, unknown>)[segment] : undefined
  return at
}
