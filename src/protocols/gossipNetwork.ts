import type {GossipSub, Message} from '@libp2p/gossipsub'
import type {Libp2p, PeerId} from '@libp2p/interface'
import {multiaddr, type Multiaddr} from '@multiformats/multiaddr'
import type {Logger} from '../util/logger.js'
import type {NodeMetrics} from '../util/metrics.js'
import type {AccessView} from './accessView.js'
import {encodeGossip} from './codec.js'
import {type GossipSigner, sealGossip} from './gossipEnvelope.js'
import {type GossipValidationCounter, GossipValidator, toTopicValidator, type ValidatedGossip} from './gossipValidation.js'
import type {GossipPayload} from './messages.js'
import {GOSSIP_TOPICS, GossipTopic, parseTopicName, topicName} from './topic.js'

/** The parts of a libp2p node the gossip network uses. */
export type GossipLibp2p = Pick<Libp2p<{pubsub: GossipSub}>, 'services' | 'dial' | 'getConnections'>

/** gossipsub's router exposes these, though its public interface does not declare them. */
interface GossipRouterIntrospection {
  getScore: (peerId: string) => number
  getMeshPeers: (topic: string) => string[]
}

export type GossipHandler<T extends GossipTopic> = (message: ValidatedGossip<T>) => void

export interface GossipNetworkInit {
  libp2p: GossipLibp2p
  networkId: string
  /** Signs every message published, with the node key (`gossipSigner(key.privateKey)`). */
  signer: GossipSigner
  access: AccessView
  logger: Logger
  metrics: NodeMetrics
  now?: () => number
  /**
   * Dial admitted nodes announced in heartbeats that we are not connected to, so nodes that only
   * know a bootstrap address still end up in a real mesh. On by default.
   */
  dialAnnouncedPeers?: boolean
}

/** A peer whose announced addresses failed is not redialled from heartbeats sooner than this. */
export const ANNOUNCED_PEER_REDIAL_MS = 30_000

/**
 * The network's gossip: registers a validator per topic, subscribes, publishes schema-checked
 * messages and hands subscribers only validated, decoded messages with their signer's address.
 */
export class GossipNetwork {
  readonly validationCounter: GossipValidationCounter
  private readonly publishedCounter: NodeMetrics['gossipPublished']
  private readonly libp2p: GossipLibp2p
  private readonly pubsub: GossipSub
  private readonly networkId: string
  private readonly signer: GossipSigner
  private readonly log: Logger
  private readonly validator: GossipValidator
  private readonly dialAnnouncedPeers: boolean
  private readonly now: () => number
  /** Accepted by a validator, waiting for gossipsub's `message` event (same object). */
  private readonly accepted = new WeakMap<Message, ValidatedGossip>()
  private readonly handlers: {[K in GossipTopic]: Set<GossipHandler<K>>} = {
    [GossipTopic.heartbeat]: new Set(),
    [GossipTopic.oracleHeartbeat]: new Set(),
    [GossipTopic.task]: new Set(),
    [GossipTopic.precommit]: new Set(),
    [GossipTopic.commit]: new Set()
  }

  private readonly lastDialAttempt = new Map<string, number>()
  private started = false

  constructor (init: GossipNetworkInit) {
    this.libp2p = init.libp2p
    this.pubsub = init.libp2p.services.pubsub
    this.networkId = init.networkId
    this.signer = init.signer
    this.log = init.logger
    this.now = init.now ?? Date.now
    this.validator = new GossipValidator({access: init.access, now: this.now})
    this.validationCounter = init.metrics.gossipMessages
    this.publishedCounter = init.metrics.gossipPublished
    this.dialAnnouncedPeers = init.dialAnnouncedPeers ?? true
  }

  topicName (topic: GossipTopic): string {
    return topicName(this.networkId, topic)
  }

  start (): void {
    if (this.started) return
    this.started = true
    for (const topic of GOSSIP_TOPICS) {
      this.pubsub.topicValidators.set(this.topicName(topic), toTopicValidator({
        topic,
        validator: this.validator,
        counter: this.validationCounter,
        logger: this.log,
        onAccept: (message, validated) => this.accepted.set(message, validated)
      }))
      if (this.wants(topic)) this.pubsub.subscribe(this.topicName(topic))
    }
    this.pubsub.addEventListener('message', this.onMessage)
    this.log.info({networkId: this.networkId, topics: GOSSIP_TOPICS}, 'gossip started')
  }

  stop (): void {
    if (!this.started) return
    this.started = false
    this.pubsub.removeEventListener('message', this.onMessage)
    for (const topic of GOSSIP_TOPICS) {
      if (this.pubsub.getTopics().includes(this.topicName(topic))) this.pubsub.unsubscribe(this.topicName(topic))
      this.pubsub.topicValidators.delete(this.topicName(topic))
    }
  }

  /**
   * Schema-checks, encodes, signs and publishes; resolves to the number of peers it was sent to
   * (0 for bytes published before). Throws CodecError for a payload every peer would reject.
   */
  async publish<T extends GossipTopic> (topic: T, payload: GossipPayload[T]): Promise<number> {
    const name = this.topicName(topic)
    const result = await this.pubsub.publish(name, sealGossip(name, encodeGossip(topic, payload), this.signer))
    this.publishedCounter.inc({topic})
    return result.recipients.length
  }

  /**
   * Calls `handler` with each validated message on `topic`; returns the unsubscribe function.
   * A node subscribes to a topic only once something handles it (oracles' heartbeats always, see
   * `wants`): the rest it publishes on without receiving, since gossipsub sends a node's own
   * messages straight to every peer subscribed. So a miner neither receives nor checks the
   * precommits and commits of every task, which only oracles act on.
   */
  on<T extends GossipTopic> (topic: T, handler: GossipHandler<T>): () => void {
    const handlers = this.handlers[topic] as Set<GossipHandler<T>>
    handlers.add(handler)
    if (this.started && !this.pubsub.getTopics().includes(this.topicName(topic))) this.pubsub.subscribe(this.topicName(topic))
    return () => { handlers.delete(handler) }
  }

  /** Oracles' heartbeats also tell this node whom to dial (see `dialAnnouncedPeers`): a NATed miner finds every oracle through them. */
  private wants (topic: GossipTopic): boolean {
    return this.handlers[topic].size > 0 || (topic === GossipTopic.oracleHeartbeat && this.dialAnnouncedPeers)
  }

  /** Peers known to subscribe to `topic`. */
  subscribers (topic: GossipTopic): PeerId[] {
    return this.pubsub.getSubscribers(this.topicName(topic))
  }

  /** Peers in our mesh for `topic` (peer id strings). */
  meshPeers (topic: GossipTopic): string[] {
    return this.router().getMeshPeers(this.topicName(topic))
  }

  /** gossipsub's score of a peer, as this node sees it: negative after rejected messages. */
  peerScore (peerId: PeerId): number {
    return this.router().getScore(peerId.toString())
  }

  private router (): GossipRouterIntrospection {
    return this.pubsub as unknown as GossipRouterIntrospection
  }

  private readonly onMessage = (event: CustomEvent<Message>): void => {
    const validated = this.accepted.get(event.detail)
    if (validated == null) return
    this.accepted.delete(event.detail)
    const parsed = parseTopicName(event.detail.topic)
    if (parsed == null || parsed.networkId !== this.networkId) return
    for (const handler of this.handlers[parsed.topic] as Set<GossipHandler<GossipTopic>>) {
      try {
        handler(validated)
      } catch (err) {
        this.log.error({err, topic: parsed.topic}, 'gossip handler failed')
      }
    }
    if ((parsed.topic === GossipTopic.heartbeat || parsed.topic === GossipTopic.oracleHeartbeat) && this.dialAnnouncedPeers) {
      this.dialAnnounced(validated as ValidatedGossip<GossipTopic.heartbeat>)
    }
  }

  private dialAnnounced ({payload}: ValidatedGossip<GossipTopic.heartbeat>): void {
    // The validator checked that the announced peer id is the signer's key. Compared as a string:
    // parsing it into a PeerId decompresses a curve point in pure JS (~0.2 ms), per heartbeat.
    const key = payload.peerId
    if (this.libp2p.getConnections().some(c => c.remotePeer.toString() === key)) return
    const now = this.now()
    if (now - (this.lastDialAttempt.get(key) ?? -Infinity) < ANNOUNCED_PEER_REDIAL_MS) return
    this.lastDialAttempt.set(key, now)
    const addrs = announcedAddrs(payload.addrs, key)
    if (addrs.length === 0) return
    this.libp2p.dial(addrs).then(
      () => { this.log.debug({peer: key}, 'dialled peer announced in heartbeat') },
      (err: unknown) => { this.log.debug({err, peer: key}, 'announced peer unreachable') }
    )
  }
}

/**
 * The heartbeat's addresses that are valid multiaddrs for its signer: one with another node's
 * `/p2p/` id is dropped, so a heartbeat cannot make us dial someone else.
 */
function announcedAddrs (addrs: string[], id: string): Multiaddr[] {
  const out: Multiaddr[] = []
  for (const addr of addrs) {
    try {
      const ma = multiaddr(addr)
      const p2p = ma.getComponents().find(c => c.name === 'p2p')
      if (p2p == null) out.push(ma.encapsulate(`/p2p/${id}`))
      else if (p2p.value === id) out.push(ma)
    } catch {
      // Not a multiaddr: the other addresses may still do.
    }
  }
  return out
}
