/**
 * Gossip figures (not pass/fail): 5 real libp2p nodes on loopback in one process, full mesh,
 * every message through the real codec and validators (access from a StaticAccessView, so no
 * chain sits in the path, as with the AccessCache whose reads are map lookups too).
 *  1. Latency: one precommit at a time, publishers in turn; publish → handler on each of the
 *     4 receivers (p50, p99).
 *  2. Throughput: one node publishes a burst; messages/s until all 4 receivers have them all.
 *  3. Signing and validation alone, on one core: sealing a message (sign), then validate() on it
 *     (signature recovery, access, decode, schema, dedup), µs per message.
 * Run: npx tsx test/bench/gossip.ts [--latency 400] [--burst 2000]
 */
import type {Message} from '@libp2p/gossipsub'
import {randomBytes} from 'node:crypto'
import {parseArgs} from 'node:util'
import {devnetPrivateKey} from '../../src/devnet/devnetKeys.js'
import {StaticAccessView} from '../../src/protocols/accessView.js'
import {encodeGossip} from '../../src/protocols/codec.js'
import {gossipSigner, sealGossip} from '../../src/protocols/gossipEnvelope.js'
import {GossipNetwork} from '../../src/protocols/gossipNetwork.js'
import {gossipsubOptions} from '../../src/protocols/gossipScoring.js'
import {GossipValidator} from '../../src/protocols/gossipValidation.js'
import type {Precommit} from '../../src/protocols/messages.js'
import {GossipTopic, topicName} from '../../src/protocols/topic.js'
import {createHost, type Host} from '../../src/runtime/host.js'
import {nodeKeyFromPrivateKey, type NodeKey} from '../../src/runtime/keys.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {NodeMetrics} from '../../src/util/metrics.js'
import {waitFor, type WaitOptions} from '../support/until.js'

const {values: args} = parseArgs({options: {
  latency: {type: 'string', default: '400'},
  burst: {type: 'string', default: '2000'}
}})
const NETWORK_ID = 'bench'
const NODES = 5
const log = createSilentLogger()

interface Node {key: NodeKey, host: Host, gossip: GossipNetwork}

/** A 5 ms poll, so the latency rounds follow each other closely; bursts may take a minute. */
const WAIT: WaitOptions = {timeoutMs: 60_000, intervalMs: 5}

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
}

const commitment = '0x' + randomBytes(32).toString('hex')
let nextTaskId = 1
function precommit (node: Node): Precommit {
  return {taskId: String(nextTaskId++), miner: node.key.address, commitment, timestamp: Date.now()}
}

async function main (): Promise<void> {
  const keys = Array.from({length: NODES}, (_, i) => nodeKeyFromPrivateKey(devnetPrivateKey('miner', i)))
  const access = new StaticAccessView(keys.map(k => [k.address, 'miner']))
  const nodes: Node[] = []
  for (const key of keys) {
    const host = await createHost({privateKey: key.privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], gossip: gossipsubOptions(NETWORK_ID), logger: log})
    const gossip = new GossipNetwork({libp2p: host.libp2p, networkId: NETWORK_ID, signer: gossipSigner(key.privateKey), access, logger: log, metrics: new NodeMetrics(), dialAnnouncedPeers: false})
    gossip.start()
    nodes.push({key, host, gossip})
  }
  for (const [i, a] of nodes.entries()) {
    for (const b of nodes.slice(i + 1)) await a.host.libp2p.dial(b.host.libp2p.getMultiaddrs()[0]!)
  }
  // Receivers record arrival times per task id.
  const arrivals = new Map<string, number[]>()
  for (const node of nodes) {
    node.gossip.on(GossipTopic.precommit, ({payload}) => {
      const list = arrivals.get(payload.taskId) ?? []
      list.push(performance.now())
      arrivals.set(payload.taskId, list)
    })
  }
  // A node subscribes to a topic once it handles it: the mesh forms after the handlers.
  await waitFor('a full mesh on precommit', () => nodes.every(n => n.gossip.subscribers(GossipTopic.precommit).length === NODES - 1 && n.gossip.meshPeers(GossipTopic.precommit).length >= NODES - 2), WAIT)

  // 1. Latency.
  const latencies: number[] = []
  const rounds = Number(args.latency)
  for (let i = 0; i < rounds; i++) {
    const publisher = nodes[i % NODES]!
    const message = precommit(publisher)
    const start = performance.now()
    await publisher.gossip.publish(GossipTopic.precommit, message)
    await waitFor('one round', () => (arrivals.get(message.taskId)?.length ?? 0) === NODES - 1, WAIT)
    for (const at of arrivals.get(message.taskId)!) latencies.push(at - start)
  }
  latencies.sort((a, b) => a - b)
  console.log(`latency publish→deliver, ${rounds} messages × ${NODES - 1} receivers: p50 ${percentile(latencies, 0.5).toFixed(2)} ms, p99 ${percentile(latencies, 0.99).toFixed(2)} ms, max ${latencies.at(-1)!.toFixed(2)} ms`)

  // 2. Throughput.
  const burst = Number(args.burst)
  const publisher = nodes[0]!
  const firstId = nextTaskId
  const start = performance.now()
  const sends: Array<Promise<number>> = []
  for (let i = 0; i < burst; i++) sends.push(publisher.gossip.publish(GossipTopic.precommit, precommit(publisher)))
  await Promise.all(sends)
  const published = performance.now()
  await waitFor('the burst', () => {
    for (let id = firstId; id < nextTaskId; id++) if ((arrivals.get(String(id))?.length ?? 0) < NODES - 1) return false
    return true
  }, WAIT)
  const seconds = (performance.now() - start) / 1000
  console.log(`throughput: ${burst} messages from one node to ${NODES - 1} in ${seconds.toFixed(2)} s (published in ${((published - start) / 1000).toFixed(2)} s): ${(burst / seconds).toFixed(0)} msg/s, ${(burst * (NODES - 1) / seconds).toFixed(0)} deliveries/s`)

  // 3. Signing and validation alone.
  const validator = new GossipValidator({access})
  const topic = topicName(NETWORK_ID, GossipTopic.precommit)
  const signer = gossipSigner(keys[1]!.privateKey)
  const bodies = Array.from({length: 20_000}, () => encodeGossip(GossipTopic.precommit, precommit(nodes[1]!)))
  const sStart = performance.now()
  const messages: Message[] = bodies.map(body => ({type: 'unsigned', topic, data: sealGossip(topic, body, signer)}))
  const sMs = performance.now() - sStart
  console.log(`signing (seal) alone: ${(bodies.length / sMs * 1000).toFixed(0)} msg/s (${(sMs * 1000 / bodies.length).toFixed(1)} µs each)`)
  const vStart = performance.now()
  for (const message of messages) validator.validate(GossipTopic.precommit, message)
  const vMs = performance.now() - vStart
  console.log(`validation (signature + access + decode + schema + dedup) alone: ${(messages.length / vMs * 1000).toFixed(0)} msg/s (${(vMs * 1000 / messages.length).toFixed(1)} µs each)`)

  await Promise.all(nodes.map(async n => { n.gossip.stop(); await n.host.stop() }))
}

await main()
