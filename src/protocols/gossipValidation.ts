import {publicKeyFromRaw} from '@libp2p/crypto/keys'
import {type Message, type TopicValidatorFn, TopicValidatorResult} from '@libp2p/gossipsub'
import {peerIdFromPublicKey} from '@libp2p/peer-id'
import {CortensorError} from '../util/cortensorError.js'
import type {Logger} from '../util/logger.js'
import type {NodeMetrics} from '../util/metrics.js'
import type {AccessView} from './accessView.js'
import {type CodecErrorCode, CodecError, decodeGossip} from './codec.js'
import type {Address} from './address.js'
import {type GossipEnvelopeErrorCode, GossipEnvelopeError, type OpenedGossip, openGossip} from './gossipEnvelope.js'
import {type Commit, type GossipPayload, type Heartbeat, outputHashOf, type Precommit, type Role, type Task} from './messages.js'
import {SeenCache} from './seenCache.js'
import {GossipTopic} from './topic.js'

/** A validator's verdict (Lodestar's GossipAction); ACCEPT is returning normally. */
export enum GossipAction {
  ACCEPT = 'ACCEPT',
  IGNORE = 'IGNORE',
  REJECT = 'REJECT'
}

export type GossipErrorCode =
  | CodecErrorCode
  | GossipEnvelopeErrorCode
  | 'SIGNER_NOT_ALLOWED'
  | 'SIGNER_MISMATCH'
  | 'PEER_ID_MISMATCH'
  | 'TASK_ASSIGNEES_INVALID'
  | 'TASK_DEADLINE_INVALID'
  | 'OUTPUT_HASH_MISMATCH'
  | 'STALE'
  | 'FUTURE'
  | 'DUPLICATE'

/** Thrown by a validator: the verdict travels on the error, with a code for the metric. */
export class GossipValidationError extends CortensorError<{code: GossipErrorCode, action: GossipAction.IGNORE | GossipAction.REJECT}> {
  get action (): GossipAction.IGNORE | GossipAction.REJECT {
    return this.type.action
  }
}

function reject (code: GossipErrorCode, message?: string): never {
  throw new GossipValidationError({code, action: GossipAction.REJECT}, message)
}

function ignore (code: GossipErrorCode, message?: string): never {
  throw new GossipValidationError({code, action: GossipAction.IGNORE}, message)
}

/** The roles whose nodes may publish on each topic. */
export const TOPIC_PUBLISHERS: {[K in GossipTopic]: readonly Role[]} = {
  [GossipTopic.heartbeat]: ['miner', 'validator'],
  [GossipTopic.oracleHeartbeat]: ['oracle'],
  [GossipTopic.task]: ['oracle'],
  [GossipTopic.precommit]: ['miner'],
  [GossipTopic.commit]: ['miner']
}

/** Clock skew tolerated between nodes before a timestamp counts as "in the future". */
export const MAX_CLOCK_SKEW_MS = 5_000
/** A heartbeat older than this says nothing about the node now. */
export const HEARTBEAT_MAX_AGE_MS = 30_000
/** Precommits and commits older than this belong to tasks long settled or expired. */
export const RESULT_MAX_AGE_MS = 10 * 60_000
/** Task, precommit and commit ids are remembered this long for duplicate detection. */
export const SEEN_TTL_MS = 15 * 60_000
export const SEEN_MAX_ENTRIES = 100_000
const PEER_ID_CACHE_MAX = 10_000

/** A message that passed validation, with its authenticated sender. */
export interface ValidatedGossip<T extends GossipTopic = GossipTopic> {
  topic: T
  payload: GossipPayload[T]
  /** The Ethereum address that signed the message (not the peer that forwarded it). */
  address: Address
}

export interface GossipValidatorInit {
  access: AccessView
  now?: () => number
}

/**
 * Per-node validation state and the per-topic validators. Each validator throws its verdict;
 * the order of checks is cheapest first, and duplicates are recorded only once everything
 * else passed, so an invalid copy cannot shadow a valid message.
 */
export class GossipValidator {
  private readonly access: AccessView
  private readonly now: () => number
  private readonly seen = new SeenCache(SEEN_TTL_MS, SEEN_MAX_ENTRIES)
  /** Address → its peer id: building one decompresses a curve point in pure JS (~0.1 ms). */
  private readonly peerIds = new Map<Address, string>()
  /** Last heartbeat seq per sender: bounded by the number of admitted nodes. */
  private readonly heartbeatSeq = new Map<Address, number>()

  constructor (init: GossipValidatorInit) {
    this.access = init.access
    this.now = init.now ?? Date.now
  }

  /**
   * Validates a gossipsub message on `topic` (`message.topic` is its full name); returns it
   * decoded or throws GossipValidationError. The signature is inside the data (gossipEnvelope.ts).
   */
  validate<T extends GossipTopic> (topic: T, message: Pick<Message, 'topic' | 'data'>): ValidatedGossip<T> {
    let opened: OpenedGossip
    try {
      opened = openGossip(message.topic, message.data)
    } catch (err) {
      // REJECT: no signer recovers from the envelope, so nobody answers for the message.
      if (err instanceof GossipEnvelopeError) reject(err.code, err.message)
      throw err
    }
    const {address, publicKey, body} = opened
    // REJECT: the signer is not registered and active in IAM with an ACL role that may publish here
    // (also what a tampered body or a message signed for another topic or network comes to: the
    // key that recovers from it is nobody's).
    if (!TOPIC_PUBLISHERS[topic].some(role => this.access.roleAllowed(address, role))) {
      reject('SIGNER_NOT_ALLOWED', `${address} may not publish ${topic}`)
    }
    let payload: GossipPayload[T]
    try {
      payload = decodeGossip(topic, body)
    } catch (err) {
      // REJECT: oversized, undecodable or schema-invalid bytes are never a valid message.
      if (err instanceof CodecError) reject(err.code, err.message)
      throw err
    }
    const validated = {topic, payload, address}
    this.validators[topic](validated as never, publicKey)
    return validated
  }

  /** The peer id of the signer's key (its compressed `publicKey`), as a string. */
  private peerIdOf (address: Address, publicKey: Uint8Array): string {
    let peerId = this.peerIds.get(address)
    if (peerId === undefined) {
      // Bounded, though only admitted signers get here: the ACL may admit many over time.
      if (this.peerIds.size >= PEER_ID_CACHE_MAX) this.peerIds.clear()
      peerId = peerIdFromPublicKey(publicKeyFromRaw(publicKey)).toString()
      this.peerIds.set(address, peerId)
    }
    return peerId
  }

  private readonly validators: {[K in GossipTopic]: (message: ValidatedGossip<K>, publicKey: Uint8Array) => void} = {
    [GossipTopic.heartbeat]: (message, publicKey) => this.validateHeartbeat(message.payload, message, publicKey),
    [GossipTopic.oracleHeartbeat]: (message, publicKey) => this.validateHeartbeat(message.payload, message, publicKey),
    [GossipTopic.task]: message => this.validateTask(message.payload, message),
    [GossipTopic.precommit]: message => this.validatePrecommit(message.payload, message),
    [GossipTopic.commit]: message => this.validateCommit(message.payload, message)
  }

  private validateHeartbeat (hb: Heartbeat, {address}: ValidatedGossip, publicKey: Uint8Array): void {
    // REJECT: a node announces only itself.
    if (hb.address !== address) reject('SIGNER_MISMATCH')
    // REJECT: the announced peer id must be the signer's key, or peers would dial someone else.
    if (hb.peerId !== this.peerIdOf(address, publicKey)) reject('PEER_ID_MISMATCH')
    // REJECT: the claimed role must be one the chain grants this node.
    if (!this.access.roleAllowed(address, hb.role)) reject('SIGNER_NOT_ALLOWED', `${address} is not an admitted ${hb.role}`)
    this.checkTimestamp(hb.timestamp, HEARTBEAT_MAX_AGE_MS)
    // IGNORE: a replayed or reordered heartbeat is older news than one already accepted.
    if (hb.seq <= (this.heartbeatSeq.get(address) ?? -1)) ignore('DUPLICATE')
    this.heartbeatSeq.set(address, hb.seq)
  }

  private validateTask (task: Task, {address}: ValidatedGossip): void {
    // REJECT: an oracle publishes only its own tasks.
    if (task.oracle !== address) reject('SIGNER_MISMATCH')
    // REJECT: deadlines before creation, or a reveal deadline before the precommit one, are self-contradictory.
    if (task.precommitDeadline <= task.createdAt || task.deadline <= task.precommitDeadline) reject('TASK_DEADLINE_INVALID')
    // REJECT: parallel mode names exactly k distinct miners; competing mode leaves the slots open.
    const distinct = new Set(task.assignees).size
    if (task.mode === 'parallel' ? (task.assignees.length !== task.k || distinct !== task.k) : task.assignees.length !== 0) {
      reject('TASK_ASSIGNEES_INVALID')
    }
    const now = this.now()
    // IGNORE: nobody can still work on a task past its deadline (our clock may be the odd one).
    if (task.deadline < now) ignore('STALE')
    // IGNORE: created in the future beyond clock skew: the oracle's clock is off, not provably malicious.
    if (task.createdAt > now + MAX_CLOCK_SKEW_MS) ignore('FUTURE')
    // The assignment is part of the task's identity: a reassignment re-gossips the same task id
    // with a new miner, and that copy must reach it, not be dropped as a duplicate.
    this.checkDuplicate(`task:${task.taskId}:${task.assignees.join(',')}`, now)
  }

  private validatePrecommit (precommit: Precommit, {address}: ValidatedGossip): void {
    // REJECT: a miner precommits only for itself.
    if (precommit.miner !== address) reject('SIGNER_MISMATCH')
    this.checkTimestamp(precommit.timestamp, RESULT_MAX_AGE_MS)
    this.checkDuplicate(`precommit:${precommit.taskId}:${address}`, this.now())
  }

  private validateCommit ({result, timestamp}: Commit, {address}: ValidatedGossip): void {
    // REJECT: a miner reveals only its own result.
    if (result.miner !== address) reject('SIGNER_MISMATCH')
    // REJECT: the revealed hash must be the output's, or the reveal proves nothing.
    if (result.outputHash.toLowerCase() !== outputHashOf(result.output)) reject('OUTPUT_HASH_MISMATCH')
    this.checkTimestamp(timestamp, RESULT_MAX_AGE_MS)
    this.checkDuplicate(`commit:${result.taskId}:${address}`, this.now())
  }

  private checkTimestamp (timestamp: number, maxAgeMs: number): void {
    const now = this.now()
    // IGNORE: too old to act on; honest peers may still relay late copies, so no penalty.
    if (timestamp < now - maxAgeMs) ignore('STALE')
    // IGNORE: ahead of our clock beyond skew; a clock problem, not provably malicious.
    if (timestamp > now + MAX_CLOCK_SKEW_MS) ignore('FUTURE')
  }

  private checkDuplicate (key: string, now: number): void {
    // IGNORE: the same task / result already went through (republished as other bytes, e.g. with a new
    // timestamp; byte-identical copies never get here, gossipsub drops them by message id).
    if (this.seen.has(key, now)) ignore('DUPLICATE')
    this.seen.add(key, now)
  }
}

export type GossipValidationResult = 'accept' | 'ignore' | 'reject'

/** Counter `cortensor_gossip_validation_total{topic,result,code}` (code `OK` on accept). */
export type GossipValidationCounter = NodeMetrics['gossipMessages']

const RESULT_OF_ACTION: {[K in GossipAction]: TopicValidatorResult} = {
  [GossipAction.ACCEPT]: TopicValidatorResult.Accept,
  [GossipAction.IGNORE]: TopicValidatorResult.Ignore,
  [GossipAction.REJECT]: TopicValidatorResult.Reject
}

export interface TopicValidatorInit<T extends GossipTopic> {
  topic: T
  validator: GossipValidator
  counter: GossipValidationCounter
  logger: Logger
  /** Receives each accepted message, before gossipsub delivers and forwards it. */
  onAccept: (message: Message, validated: ValidatedGossip<T>) => void
}

/**
 * The one adapter from thrown verdicts to gossipsub: REJECT lowers the propagating peer's
 * score (P4, see gossipScoring.ts), IGNORE drops silently. An unexpected error is our bug,
 * not the peer's fault: it is logged and IGNOREd.
 */
export function toTopicValidator<T extends GossipTopic> (init: TopicValidatorInit<T>): TopicValidatorFn {
  const {topic, validator, counter, logger, onAccept} = init
  return (propagationSource, message) => {
    let action: GossipAction
    let code: string
    try {
      onAccept(message, validator.validate(topic, message))
      action = GossipAction.ACCEPT
      code = 'OK'
    } catch (err) {
      if (err instanceof GossipValidationError) {
        action = err.action
        code = err.code
        logger.debug({topic, code, action, propagationSource: propagationSource.toString()}, 'gossip message not accepted')
      } else {
        action = GossipAction.IGNORE
        code = 'INTERNAL'
        logger.error({err, topic}, 'gossip validator failed')
      }
    }
    const result = RESULT_OF_ACTION[action]
    counter.inc({topic, result, code})
    return result
  }
}
