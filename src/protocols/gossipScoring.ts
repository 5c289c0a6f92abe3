import type {GossipsubOpts} from '@libp2p/gossipsub'
import type {PeerScoreParams, PeerScoreThresholds, TopicScoreParams} from '@libp2p/gossipsub/score'
import type {FastMsgIdFn} from '@libp2p/gossipsub/types'
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
 * Identifies byte-identical copies of a message before its signature is checked. gossipsub
 * verifies the (pure-JS secp256k1) signature of every copy a mesh peer forwards before its
 * seen-cache drops it, so without this each node pays one verification per mesh peer per
 * message. The hash covers the signature too: a forged copy racing the real one gets its own
 * id and cannot make the real message look like a duplicate.
 */
export const fastMessageId: FastMsgIdFn = (message) => {
  const hash = createHash('sha256')
  for (const part of [message.from, message.seqno, message.signature, message.data]) {
    hash.update(Uint32Array.of(part?.byteLength ?? 0))
    if (part != null) hash.update(part)
  }
  hash.update(message.topic)
  return hash.digest('base64')
}

/** The gossipsub options the protocol layer needs, for `createHost({gossip})`. */
export function gossipsubOptions (networkId: string): Partial<GossipsubOpts> {
  return {
    scoreParams: gossipScoreParams(networkId),
    scoreThresholds: SCORE_THRESHOLDS,
    fastMsgIdFn: fastMessageId
  }
}
