import {PROTOCOL_PREFIX, STREAM_PROTOCOL_VERSION, TOPIC_VERSION, type StreamProtocol} from './constants.js'
// Type-only: messages.ts imports this file.
import type {Role} from './messages.js'

/** The gossip topics of the network; the payload of each is in `messages.ts`. */
export enum GossipTopic {
  /** Miners' and validators' heartbeats: what oracles staff tasks from. */
  heartbeat = 'heartbeat',
  /**
   * Oracles' heartbeats, apart: every node takes these (they say whom to dial), while only
   * oracles take the many heartbeats of miners, so miners do not relay each other's.
   */
  oracleHeartbeat = 'oracle-heartbeat',
  task = 'task',
  precommit = 'precommit',
  commit = 'commit'
}

export const GOSSIP_TOPICS: readonly GossipTopic[] = Object.values(GossipTopic)

/** Where a node of `role` publishes its heartbeats. */
export function heartbeatTopicOf (role: Role): GossipTopic.heartbeat | GossipTopic.oracleHeartbeat {
  return role === 'oracle' ? GossipTopic.oracleHeartbeat : GossipTopic.heartbeat
}

/** A network id is a name in topic strings: keep it to characters that need no escaping. */
const NETWORK_ID = /^[a-zA-Z0-9._-]{1,64}$/

/** `/cortensor/<networkId>/<topic>/<version>`: the one place a topic string is built. */
export function topicName (networkId: string, topic: GossipTopic): string {
  return `${networkPrefix(networkId)}/${topic}/${TOPIC_VERSION[topic]}`
}

/** `/cortensor/<networkId>/<protocol>/<version>`: the one place a stream protocol id is built. */
export function streamProtocolId (networkId: string, protocol: StreamProtocol): string {
  return `${networkPrefix(networkId)}/${protocol}/${STREAM_PROTOCOL_VERSION[protocol]}`
}

function networkPrefix (networkId: string): string {
  if (!NETWORK_ID.test(networkId)) throw new Error(`invalid network id: ${JSON.stringify(networkId)}`)
  return `${PROTOCOL_PREFIX}/${networkId}`
}

export interface ParsedTopic {
  networkId: string
  topic: GossipTopic
  version: number
}

/** Inverse of `topicName`; null for a foreign topic or a version this build does not speak. */
export function parseTopicName (name: string): ParsedTopic | null {
  const parts = name.split('/')
  // '', 'cortensor', networkId, topic, version
  if (parts.length !== 5 || parts[0] !== '' || `/${parts[1]}` !== PROTOCOL_PREFIX) return null
  const [, , networkId, topic, version] = parts as [string, string, string, string, string]
  if (!NETWORK_ID.test(networkId) || !isGossipTopic(topic)) return null
  if (String(TOPIC_VERSION[topic]) !== version) return null
  return {networkId, topic, version: TOPIC_VERSION[topic]}
}

export function isGossipTopic (value: string): value is GossipTopic {
  return (GOSSIP_TOPICS as readonly string[]).includes(value)
}
