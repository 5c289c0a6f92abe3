import {CortensorError} from '../util/cortensorError.js'

/**
 * A tiny schema language: each wire type is written once as a schema, and its TypeScript type
 * is derived from it with `Infer` (as Lodestar derives `ValueOf<typeof ssz.X>`). `parse`
 * checks an untrusted value (fresh from msgpack) and returns a new plain object holding only
 * the schema's fields, in schema order, so re-encoding a parsed value is deterministic.
 */
export interface Schema<T> {
  parse: (value: unknown, path?: string) => T
}

export type Infer<S> = S extends Schema<infer T> ? T : never

export class SchemaError extends CortensorError<{code: 'SCHEMA_INVALID', path: string}> {}

function fail (path: string, expected: string, value: unknown): never {
  const got = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value
  throw new SchemaError({code: 'SCHEMA_INVALID', path}, `${path}: expected ${expected}, got ${got}`)
}

export interface StringOptions {
  maxLength: number
  minLength?: number
  pattern?: RegExp
}

export function string (opts: StringOptions): Schema<string> {
  const {maxLength, minLength = 0, pattern} = opts
  const expected = `string of ${minLength}..${maxLength} chars${pattern != null ? ` matching ${pattern}` : ''}`
  return {
    parse (value, path = '$') {
      if (typeof value !== 'string' || value.length < minLength || value.length > maxLength) fail(path, expected, value)
      if (pattern != null && !pattern.test(value)) fail(path, expected, value)
      return value
    }
  }
}

/** A non-negative safe integer (msgpack int), at most `max`. */
export function uint (opts: {min?: number, max?: number} = {}): Schema<number> {
  const {min = 0, max = Number.MAX_SAFE_INTEGER} = opts
  return {
    parse (value, path = '$') {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
        fail(path, `integer in ${min}..${max}`, value)
      }
      return value
    }
  }
}

/** A finite float in [min, max]. */
export function float (opts: {min: number, max: number}): Schema<number> {
  return {
    parse (value, path = '$') {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < opts.min || value > opts.max) {
        fail(path, `number in ${opts.min}..${opts.max}`, value)
      }
      return value
    }
  }
}

/** `true` or `false` (msgpack bool): no truthy numbers or strings. */
export function boolean (): Schema<boolean> {
  return {
    parse (value, path = '$') {
      if (typeof value !== 'boolean') fail(path, 'boolean', value)
      return value
    }
  }
}

/** `schema`'s value, or null (msgpack nil) where a value may be absent. */
export function nullable<T> (schema: Schema<T>): Schema<T | null> {
  return {
    parse (value, path = '$') {
      return value === null ? null : schema.parse(value, path)
    }
  }
}

/** One of a closed set of string literals. */
export function oneOf<const V extends readonly string[]> (values: V): Schema<V[number]> {
  return {
    parse (value, path = '$') {
      if (typeof value !== 'string' || !values.includes(value)) fail(path, `one of ${values.join('|')}`, value)
      return value as V[number]
    }
  }
}

export function array<T> (item: Schema<T>, opts: {maxLength: number, minLength?: number}): Schema<T[]> {
  const {maxLength, minLength = 0} = opts
  return {
    parse (value, path = '$') {
      if (!Array.isArray(value) || value.length < minLength || value.length > maxLength) {
        fail(path, `array of ${minLength}..${maxLength} items`, value)
      }
      return value.map((v, i) => item.parse(v, `${path}[${i}]`))
    }
  }
}

export type Shape = Record<string, Schema<unknown>>
export type ObjectOf<S extends Shape> = {[K in keyof S]: Infer<S[K]>}

/** A plain object with exactly these fields: a missing or unknown field is an error. */
export function object<const S extends Shape> (shape: S): Schema<ObjectOf<S>> {
  const keys = Object.keys(shape)
  return {
    parse (value, path = '$') {
      if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.getPrototypeOf(value) !== Object.prototype) {
        fail(path, 'object', value)
      }
      const record = value as Record<string, unknown>
      for (const key of Object.keys(record)) {
        if (!Object.hasOwn(shape, key)) throw new SchemaError({code: 'SCHEMA_INVALID', path: `${path}.${key}`}, `${path}.${key}: unknown field`)
      }
      const out: Record<string, unknown> = {}
      for (const key of keys) {
        if (!Object.hasOwn(record, key)) throw new SchemaError({code: 'SCHEMA_INVALID', path: `${path}.${key}`}, `${path}.${key}: missing field`)
        out[key] = (shape[key] as Schema<unknown>).parse(record[key], `${path}.${key}`)
      }
      return out as ObjectOf<S>
    }
  }
}

/**
 * `schema`, then `to` on what it parsed: the one place a wire value is normalised or branded
 * (an address lower-cased). A `to` that throws is reported as this field's schema error.
 */
export function convert<A, B> (schema: Schema<A>, to: (value: A) => B, expected: string): Schema<B> {
  return {
    parse (value, path = '$') {
      const parsed = schema.parse(value, path)
      try {
        return to(parsed)
      } catch {
        return fail(path, expected, value)
      }
    }
  }
}
