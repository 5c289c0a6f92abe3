import {type GossipsubOpts, StrictNoSign} from '@libp2p/gossipsub'
import type {PeerScoreParams, PeerScoreThresholds, TopicScoreParams} from '@libp2p/gossipsub/score'
import type {MsgIdFn} from '@libp2p/gossipsub/types'
import {createHash} from 'node:crypto'
import {GOSSIP_TOPICS, topicName} from './topic.js'

/**
 * Per-topic peer scoring. gossipsub scores only topics listed in `scoreParams.topics`: without
 * this, a validator's REJECT changes nothing. What counts:
 *
 * - P4 invalid deliveries (the point): weight -10, so a peer's topic score falls by 10·n² after
 *   n rejected messages. One reject costs -10 (= gossipThreshold: we stop gossiping IHAVE/IWANT
 *   with it once its small positive score is used up); three cost -90 (< graylistThreshold -80:
 *   everything it sends is dropped unread). The counter decays ×0.99 per second (half-life ~70 s),
 *   so a node caught by a lagging access view (registration or revocation seen seconds apart by
 *   two nodes, where the honest forwarder is blamed) recovers in minutes, while a spammer stays
 *   graylisted as long as it keeps sending.
 * - P1 time in mesh and P2 first deliveries: small positive rewards for honest peers, capped.
 * - P3 mesh delivery deficit: off. Tasks and results are bursty and a quiet network is normal;
 *   with it on, honest mesh peers would be penalised for silence.
 */
export const TOPIC_SCORE_PARAMS: Partial<TopicScoreParams> = {
  topicWeight: 1,
  timeInMeshWeight: 0.01,
  timeInMeshQuantum: 1_000,
  timeInMeshCap: 300,
  firstMessageDeliveriesWeight: 0.5,
  firstMessageDeliveriesDecay: 0.9,
  firstMessageDeliveriesCap: 20,
  meshMessageDeliveriesWeight: 0,
  meshFailurePenaltyWeight: 0,
  invalidMessageDeliveriesWeight: -10,
  invalidMessageDeliveriesDecay: 0.99
}

/** gossipsub's defaults, named here so the arithmetic above can be checked against them. */
export const SCORE_THRESHOLDS: Partial<PeerScoreThresholds> = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 20
}

export function gossipScoreParams (networkId: string): Partial<PeerScoreParams> {
  const topics: Record<string, TopicScoreParams> = {}
  for (const topic of GOSSIP_TOPICS) topics[topicName(networkId, topic)] = TOPIC_SCORE_PARAMS as TopicScoreParams
  return {
    topics,
    // Positive topic contributions are capped, so good behaviour cannot bank credit against P4.
    topicScoreCap: 10,
    decayInterval: 1_000,
    decayToZero: 0.01
  }
}

/**
 * A message's id: the first 20 bytes of sha256(topic ‖ data), as Ethereum's consensus gossip
 * does. gossipsub drops a message whose id it has seen before running our validator, so copies
 * from every mesh peer cost one hash each. The topic is in it so that a valid message copied
 * onto another topic (rejected there) cannot mark the real one as seen; the data holds the
 * signature, so a forged copy of a body cannot either.
 */
export const gossipMessageId: MsgIdFn = (message) => {
  const topic = Buffer.from(message.topic)
  const topicLength = Buffer.alloc(2)
  topicLength.writeUInt16BE(topic.byteLength)
  return createHash('sha256').update(topicLength).update(topic).update(message.data).digest().subarray(0, 20)
}

/** The gossipsub options the protocol layer needs, for `createHost({gossip})`. */
export function gossipsubOptions (networkId: string): Partial<GossipsubOpts> {
  return {
    scoreParams: gossipScoreParams(networkId),
    scoreThresholds: SCORE_THRESHOLDS,
    // Messages carry their own signature (gossipEnvelope.ts): made and checked with native
    // libsecp256k1 instead of gossipsub's pure-JS one, with no seqno or author on the wire.
    globalSignaturePolicy: StrictNoSign,
    msgIdFn: gossipMessageId,
    // A republished message (the same bytes, so the same id) already went out: not a failure.
    ignoreDuplicatePublishError: true
  }
}
