import {Packr} from 'msgpackr'
import {CortensorError} from '../util/cortensorError.js'
import {MAX_MESSAGE_BYTES} from './constants.js'
import {GOSSIP_SCHEMAS, type GossipPayload} from './messages.js'
import {SchemaError} from './schema.js'
import type {GossipTopic} from './topic.js'

export type CodecErrorCode = 'MESSAGE_TOO_LARGE' | 'MESSAGE_UNDECODABLE' | 'MESSAGE_SCHEMA_INVALID'

export class CodecError extends CortensorError<{code: CodecErrorCode, topic: GossipTopic, path?: string}> {}

/**
 * Plain msgpack only: no records (their shared structures would make a message's bytes depend
 * on what the encoder sent before), no structured clone or extra types (no class instances,
 * Maps, Sets or cycles come off the wire), maps decode to plain objects, and 64-bit ints decode
 * to numbers so an out-of-range one fails the schema instead of sneaking in as a bigint.
 */
const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  int64AsType: 'number',
  useTimestamp32: false
})

/** Plain msgpack with the settings above, for the request/response protocols. */
export function packWire (value: unknown): Uint8Array {
  return packr.pack(value)
}

export function unpackWire (bytes: Uint8Array): unknown {
  return packr.unpack(bytes)
}

/** Checks `payload` against the topic's schema, then encodes it; throws CodecError. */
export function encodeGossip<T extends GossipTopic> (topic: T, payload: GossipPayload[T]): Uint8Array {
  const value = parseWithSchema(topic, payload)
  // A copy: msgpackr returns a view into its own scratch buffer, and gossipsub keeps our bytes.
  const bytes = new Uint8Array(packr.pack(value))
  // The sender checks the limit too: a message every peer would reject must not leave.
  if (bytes.byteLength > MAX_MESSAGE_BYTES[topic]) {
    throw new CodecError({code: 'MESSAGE_TOO_LARGE', topic}, `${topic} message of ${bytes.byteLength} bytes exceeds ${MAX_MESSAGE_BYTES[topic]}`)
  }
  return bytes
}

/** Size check, then unpack, then schema check; throws CodecError (all of them are REJECT on gossip). */
export function decodeGossip<T extends GossipTopic> (topic: T, bytes: Uint8Array): GossipPayload[T] {
  // Before unpacking: an oversized payload costs nothing to refuse.
  if (bytes.byteLength > MAX_MESSAGE_BYTES[topic]) {
    throw new CodecError({code: 'MESSAGE_TOO_LARGE', topic}, `${topic} message of ${bytes.byteLength} bytes exceeds ${MAX_MESSAGE_BYTES[topic]}`)
  }
  let value: unknown
  try {
    value = packr.unpack(bytes)
  } catch (err) {
    throw new CodecError({code: 'MESSAGE_UNDECODABLE', topic}, `${topic} message is not msgpack: ${(err as Error).message}`, {cause: err})
  }
  return parseWithSchema(topic, value)
}

function parseWithSchema<T extends GossipTopic> (topic: T, value: unknown): GossipPayload[T] {
  try {
    return GOSSIP_SCHEMAS[topic].parse(value, topic) as GossipPayload[T]
  } catch (err) {
    if (err instanceof SchemaError) {
      throw new CodecError({code: 'MESSAGE_SCHEMA_INVALID', topic, path: err.type.path}, err.message, {cause: err})
    }
    throw err
  }
}
