import {CID} from 'multiformats/cid'
import {array, boolean, convert, object, oneOf, string} from '../protocols/schema.js'

/**
 * Model blocks between peers, next to bitswap: a fetcher opens one stream per peer for the
 * length of a fetch and pipelines requests on it; the peer answers them in order.
 *  - `has`: which of these CIDs do you hold? → `{have: boolean[]}`, one per CID.
 *  - `get`: send me these blocks → per CID a `{found}` frame, then (if found) the block bytes
 *    as their own frame, so a 1 MiB block is never copied into a msgpack buffer.
 * Not under the network id: blocks are content-addressed, and who may use the protocol is
 * decided per peer by the store's `isAllowedPeer`.
 */
export const BLOCK_PROTOCOL = '/cortensor/blocks/1.0.0'

export const BLOCK_PROTOCOL_LIMITS = {
  /** CIDs per `has` request: 1024 × ~60 chars of base32 stays far under `maxRequestBytes`. */
  maxHasCids: 1024,
  /** Blocks per `get` request. */
  maxGetCids: 16,
  maxRequestBytes: 128 * 1024,
  /** Largest block sent or accepted: bitswap's own message cap, so no model block a peer could exchange over bitswap is refused here. */
  maxBlockBytes: 2 * 1024 * 1024,
  /** Block streams one peer may have open to this node at once, per connection (one per concurrent fetch). */
  maxInboundStreams: 8
} as const

/** A CID as its canonical string; parsed on arrival, so a malformed one is a schema error. */
const cidString = convert(string({minLength: 8, maxLength: 128}), (value) => CID.parse(value), 'a CID')

export const hasRequestSchema = object({kind: oneOf(['has'] as const), cids: array(cidString, {minLength: 1, maxLength: BLOCK_PROTOCOL_LIMITS.maxHasCids})})
export const getRequestSchema = object({kind: oneOf(['get'] as const), cids: array(cidString, {minLength: 1, maxLength: BLOCK_PROTOCOL_LIMITS.maxGetCids})})
export const hasReplySchema = object({have: array(boolean(), {maxLength: BLOCK_PROTOCOL_LIMITS.maxHasCids})})
export const blockHeaderSchema = object({found: boolean()})
