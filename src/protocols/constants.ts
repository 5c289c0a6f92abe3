// Type-only: topic.ts imports this file, and a type import keeps the module graph acyclic.
import type {GossipTopic} from './topic.js'

/** Prefix of every gossip topic and libp2p protocol id of the network. */
export const PROTOCOL_PREFIX = '/cortensor'

/**
 * Wire version per topic. Bump a topic's version when its schema changes incompatibly: nodes
 * on different versions then simply do not share the topic instead of rejecting each other.
 * "Signed envelope": the signature moved from gossipsub's framing into the data
 * (gossipEnvelope.ts, gossipsub's StrictNoSign).
 */
export const TOPIC_VERSION: {[K in GossipTopic]: number} = {
  /** 2: the determinism class names the model file (`<sha256>/<build>/<backend>`). 3: every served model with its class and whether it is loaded. 4: signed envelope. */
  heartbeat: 4,
  /** 1: oracles' heartbeats split from the rest; 2: the nodes each oracle hears and its negative verdicts. */
  'oracle-heartbeat': 2,
  /** 2: the task carries its precommit deadline (miners reveal late once it passed). 3: signed envelope. */
  task: 3,
  /** 2: signed envelope. */
  precommit: 2,
  /** 2: the reveal carries the whole miner result (with its commitment). 3: with its token ids and determinism class. 4: signed envelope. */
  commit: 4
}

/**
 * Largest encoded payload accepted per topic, checked before unpacking. Tasks carry a prompt
 * and commits the output text; larger payloads (token streams) use request/response, not gossip.
 */
export const MAX_MESSAGE_BYTES: {[K in GossipTopic]: number} = {
  /** Up to 32 served models, each with its class. */
  heartbeat: 12 * 1024,
  /** 1024 heard addresses (~44 B each) and 32 verdicts (~330 B each) besides the heartbeat itself. */
  'oracle-heartbeat': 64 * 1024,
  task: 128 * 1024,
  precommit: 1024,
  /** Output text plus its token ids (up to ~5 bytes each in msgpack). */
  commit: 512 * 1024
}

/**
 * Stream protocols between two nodes, for payloads too large or too private for gossip, by
 * name and version (`/cortensor/<networkId>/<name>/<version>`, built by `streamProtocolId`).
 * `result`: a miner's tokens and result for one task, straight to the task's oracle.
 */
export const STREAM_PROTOCOL_VERSION = {
  /** 1.1.0: the oracle cancels with a frame; a stream that only breaks no longer cancels. 1.2.0: token frames and the result carry token ids. */
  result: '1.2.0',
  /** An oracle asks a validator to check a miner's claimed output; the validator answers a signed verdict. */
  /** 1.1.0: the request names the task's model (a validator may hold several). */
  verify: '1.1.0'
} as const
export type StreamProtocol = keyof typeof STREAM_PROTOCOL_VERSION
