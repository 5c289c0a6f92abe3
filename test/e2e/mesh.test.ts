import type {PeerId} from '@libp2p/interface'
import type {JsonRpcProvider} from 'ethers'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {after, before, describe, it} from 'node:test'
import {AccessCache} from '../../src/chain/accessCache.js'
import {revokeRole} from '../../src/chain/admission.js'
import {startAnvil, type Anvil} from '../../src/devnet/anvil.js'
import {createProvider} from '../../src/chain/provider.js'
import {AclRole} from '../../src/chain/enums.js'
import {setupDevnet, type Devnet} from '../../src/devnet/setupDevnet.js'
import {encodeGossip} from '../../src/protocols/codec.js'
import {MAX_MESSAGE_BYTES} from '../../src/protocols/constants.js'
import {gossipSigner, sealGossip} from '../../src/protocols/gossipEnvelope.js'
import {GossipNetwork} from '../../src/protocols/gossipNetwork.js'
import {gossipsubOptions} from '../../src/protocols/gossipScoring.js'
import type {ValidatedGossip} from '../../src/protocols/gossipValidation.js'
import type {Heartbeat, Precommit, Role, Task} from '../../src/protocols/messages.js'
import {toModelId} from '../../src/protocols/modelId.js'
import {GOSSIP_TOPICS, GossipTopic, heartbeatTopicOf, topicName} from '../../src/protocols/topic.js'
import {createHost, dialAddresses, type Host} from '../../src/runtime/host.js'
import {type NodeKey, nodeKeyFromPrivateKey} from '../../src/runtime/keys.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {metricValue, NodeMetrics} from '../../src/util/metrics.js'
import {waitFor} from '../support/until.js'

const NETWORK_ID = 'mesh-e2e'

interface MeshNode {
  name: string
  role: Role
  key: NodeKey
  host: Host
  access: AccessCache
  gossip: GossipNetwork
  received: {[K in GossipTopic]: Array<ValidatedGossip<K>>}
}

describe('gossip mesh over real libp2p, admitted by real ACL/IAM contracts', () => {
  const log = createSilentLogger()
  let anvil: Anvil
  let provider: JsonRpcProvider
  let devnet: Devnet
  const nodes: MeshNode[] = []
  let stranger: {key: NodeKey, host: Host}
  let oracle: MeshNode
  let miners: MeshNode[]

  function startNode (name: string, role: Role, privateKey: string, bootstrap: string[]): Promise<MeshNode> {
    return (async () => {
      const key = nodeKeyFromPrivateKey(privateKey)
      const host = await createHost({privateKey: key.privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, gossip: gossipsubOptions(NETWORK_ID), logger: log})
      const access = new AccessCache({
        provider,
        aclAddress: devnet.deployment.contracts.acl,
        iamAddress: devnet.deployment.contracts.iam,
        fromBlock: devnet.deployment.deployBlock,
        pollIntervalMs: 100,
        logger: log
      })
      await access.ready
      const gossip = new GossipNetwork({libp2p: host.libp2p, networkId: NETWORK_ID, signer: gossipSigner(key.privateKey), access, logger: log, metrics: new NodeMetrics()})
      const received = {heartbeat: [], 'oracle-heartbeat': [], task: [], precommit: [], commit: []} as unknown as MeshNode['received']
      for (const topic of GOSSIP_TOPICS) gossip.on(topic, message => { (received[topic] as unknown[]).push(message) })
      gossip.start()
      return {name, role, key, host, access, gossip, received}
    })()
  }

  function heartbeat (node: MeshNode, seq: number): Heartbeat {
    return {
      role: node.role,
      address: node.key.address,
      peerId: node.key.peerId.toString(),
      addrs: dialAddresses(node.host),
      models: [{id: toModelId(1), determinismClass: 'llama.cpp-test/cpu-x64', loaded: true}],
      freeSlots: 1,
      tokensPerSecond: 100,
      seq,
      timestamp: Date.now()
    }
  }

  function precommit (miner: MeshNode, taskId: string): Precommit {
    return {taskId, miner: miner.key.address, commitment: '0x' + randomBytes(32).toString('hex'), timestamp: Date.now()}
  }

  const others = (node: MeshNode): MeshNode[] => nodes.filter(n => n !== node)
  const rejections = async (node: MeshNode, topic: GossipTopic, code: string): Promise<number> =>
    await metricValue(node.gossip.validationCounter, {topic, result: 'reject', code})
  /** Whether `count` holds for every node of `of`. */
  const all = async (of: MeshNode[], count: (n: MeshNode) => Promise<boolean>): Promise<boolean> => (await Promise.all(of.map(count))).every(Boolean)
  const scoreOf = (node: MeshNode, peer: PeerId): number => node.gossip.peerScore(peer)

  before(async () => {
    anvil = await startAnvil({logger: log})
    provider = createProvider(anvil.rpcUrl, anvil.chainId)
    devnet = await setupDevnet({provider, oracles: 1, miners: 4, logger: log})
    oracle = await startNode('oracle', 'oracle', devnet.oracles[0]!.wallet.privateKey, [])
    nodes.push(oracle)
    const bootstrap = [dialAddresses(oracle.host)[0]!]
    miners = await Promise.all(devnet.miners.map(async (m, i) => await startNode(`miner-${i}`, 'miner', m.wallet.privateKey, bootstrap)))
    nodes.push(...miners)
    const strangerKey = nodeKeyFromPrivateKey('0x' + '77'.repeat(32))
    stranger = {key: strangerKey, host: await createHost({privateKey: strangerKey.privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], gossip: gossipsubOptions(NETWORK_ID), logger: log})}
  })

  after(async () => {
    for (const node of nodes) {
      node.gossip.stop()
      node.access.stop()
    }
    await Promise.all([...nodes.map(async n => await n.host.stop()), stranger?.host.stop()])
    provider?.destroy()
    await anvil?.stop()
  })

  it('five nodes form a full mesh from one bootstrap address, and messages reach every node', async () => {
    // Leaves know only the bootstrap node; heartbeats carry addresses, so they find each other.
    await waitFor('the bootstrap node to mesh with every miner on heartbeat', () => oracle.gossip.meshPeers(GossipTopic.heartbeat).length === miners.length)
    for (const node of nodes) await node.gossip.publish(heartbeatTopicOf(node.role), node.role === 'oracle' ? {...heartbeat(node, Date.now()), heard: [], verdicts: []} : heartbeat(node, Date.now()))
    await waitFor('every node to connect to every other', () => nodes.every(n => others(n).every(o => n.host.libp2p.getConnections(o.key.peerId).length > 0)))
    await waitFor('every node to see every other subscribed to every topic', () =>
      nodes.every(n => GOSSIP_TOPICS.every(t => others(n).every(o => n.gossip.subscribers(t).some(p => p.equals(o.key.peerId))))))
    const heartbeatsOf = (n: MeshNode): Array<ValidatedGossip<GossipTopic.heartbeat | GossipTopic.oracleHeartbeat>> => [...n.received.heartbeat, ...n.received['oracle-heartbeat']]
    await waitFor('every heartbeat to reach every node', () => nodes.every(n => heartbeatsOf(n).length >= others(n).length))
    for (const node of nodes) {
      assert.deepEqual(new Set(heartbeatsOf(node).map(m => m.address)), new Set(others(node).map(o => o.key.address)))
    }

    const now = Date.now()
    const task: Task = {
      taskId: '1',
      modelId: toModelId(1),
      prompt: 'Once upon a time',
      params: {maxTokens: 16, temperature: 0, topK: 1, topP: 1},
      seed: 7,
      mode: 'parallel',
      k: 2,
      assignees: [miners[0]!.key.address, miners[1]!.key.address],
      precommitDeadline: now + 30_000,
      deadline: now + 60_000,
      oracle: oracle.key.address,
      createdAt: now
    }
    await oracle.gossip.publish(GossipTopic.task, task)
    await waitFor('the task to reach every miner', () => miners.every(m => m.received.task.length === 1))
    for (const miner of miners) {
      assert.deepEqual(miner.received.task[0]!.payload, task)
      assert.equal(miner.received.task[0]!.address, oracle.key.address)
    }

    await miners[0]!.gossip.publish(GossipTopic.precommit, precommit(miners[0]!, '1'))
    await waitFor('the precommit to reach the four other nodes', () => others(miners[0]!).every(n => n.received.precommit.length === 1))
  })

  it('rejects a message signed by a key not registered in IAM, on every node, and penalises its sender', async () => {
    for (const node of nodes) await stranger.host.libp2p.dial(node.host.libp2p.getMultiaddrs()[0]!)
    const topic = topicName(NETWORK_ID, GossipTopic.precommit)
    await waitFor('the stranger to see every node subscribed', () => stranger.host.libp2p.services.pubsub.getSubscribers(topic).length === nodes.length)
    // Schema-valid and self-consistent: only the missing registration is wrong.
    const strangerMessage = {taskId: '1', miner: stranger.key.address, commitment: '0x' + '00'.repeat(32), timestamp: Date.now()}
    await stranger.host.libp2p.services.pubsub.publish(topic, sealGossip(topic, encodeGossip(GossipTopic.precommit, strangerMessage), gossipSigner(stranger.key.privateKey)))
    await waitFor('every node to reject it', async () => await all(nodes, async n => await rejections(n, GossipTopic.precommit, 'SIGNER_NOT_ALLOWED') === 1))
    await waitFor('every node to score the stranger below zero', () => nodes.every(n => scoreOf(n, stranger.key.peerId) < 0))
    assert.ok(nodes.every(n => n.received.precommit.every(m => m.address !== stranger.key.address)))
  })

  it('rejects a topic the signer\'s ACL role may not publish on (a miner publishing a task)', async () => {
    const rogue = miners[3]!
    const now = Date.now()
    await rogue.gossip.publish(GossipTopic.task, {
      taskId: '666', modelId: toModelId(1), prompt: 'obey', params: {maxTokens: 1, temperature: 0, topK: 1, topP: 1}, seed: 1,
      mode: 'competing', k: 1, assignees: [], precommitDeadline: now + 30_000, deadline: now + 60_000, oracle: rogue.key.address, createdAt: now
    })
    await waitFor('every other node to reject the task', async () => await all(others(rogue), async n => await rejections(n, GossipTopic.task, 'SIGNER_NOT_ALLOWED') === 1))
    await waitFor('every other node to score the rogue miner below zero', () => others(rogue).every(n => scoreOf(n, rogue.key.peerId) < 0))
    assert.ok(miners.every(m => m.received.task.every(t => t.payload.taskId !== '666')))
  })

  it('rejects a node\'s messages once its RoleRevoked event reaches the access cache', async () => {
    const revoked = miners[1]!
    await revokeRole(devnet.admin.queue, devnet.contracts, AclRole.Miner, revoked.key.address)
    await waitFor('every node to see the revocation', () => nodes.every(n => !n.access.roleAllowed(revoked.key.address, 'miner')))
    await revoked.gossip.publish(GossipTopic.precommit, precommit(revoked, '1'))
    await waitFor('every other node to reject it', async () => await all(others(revoked), async n => await rejections(n, GossipTopic.precommit, 'SIGNER_NOT_ALLOWED') === 2))
    assert.ok(others(revoked).every(n => n.received.precommit.every(m => m.address !== revoked.key.address)))
  })

  it('ignores a duplicate (the same precommit republished) and delivers it once', async () => {
    const sender = miners[0]!
    const message = precommit(sender, '2')
    await sender.gossip.publish(GossipTopic.precommit, message)
    // The same bytes have the same message id: gossipsub does not send them again.
    assert.equal(await sender.gossip.publish(GossipTopic.precommit, message), 0)
    // Re-stamped, they are other bytes that reach the validators, which know the precommit.
    await sender.gossip.publish(GossipTopic.precommit, {...message, timestamp: message.timestamp + 1})
    await waitFor('every other node to ignore the copy', async () => await all(others(sender), async n => await metricValue(n.gossip.validationCounter, {topic: GossipTopic.precommit, result: 'ignore', code: 'DUPLICATE'}) === 1))
    for (const node of others(sender)) {
      assert.equal(node.received.precommit.filter(m => m.payload.taskId === '2').length, 1)
      // IGNORE costs no score: the sender stays in good standing.
      assert.ok(scoreOf(node, sender.key.peerId) >= 0)
    }
  })

  // Last: three rejects graylist the sender (score < -80), and peers then stop sending to it.
  it('rejects unsigned, random, oversized and schema-invalid bytes from an admitted node without crashing', async () => {
    const sender = miners[2]!
    const topic = topicName(NETWORK_ID, GossipTopic.precommit)
    const pubsub = sender.host.libp2p.services.pubsub
    const seal = (body: Uint8Array): Uint8Array => sealGossip(topic, body, gossipSigner(sender.key.privateKey))
    // Shorter than a signature: nobody signed it. On another topic, whose P4 counter is its own:
    // a fourth reject on this one would graylist the sender before the fourth message is read.
    await pubsub.publish(topicName(NETWORK_ID, GossipTopic.commit), randomBytes(40))
    await pubsub.publish(topic, seal(randomBytes(200)))
    await pubsub.publish(topic, seal(randomBytes(MAX_MESSAGE_BYTES.precommit + 1)))
    // Valid msgpack, wrong shape: a heartbeat on the precommit topic.
    await pubsub.publish(topic, seal(encodeGossip(GossipTopic.heartbeat, heartbeat(sender, 1))))
    await waitFor('every other node to reject all four', async () => await all(others(sender), async n =>
      await rejections(n, GossipTopic.commit, 'SIGNATURE_INVALID') === 1 &&
      await rejections(n, GossipTopic.precommit, 'MESSAGE_TOO_LARGE') === 1 &&
      await rejections(n, GossipTopic.precommit, 'MESSAGE_SCHEMA_INVALID') >= 1 &&
      await rejections(n, GossipTopic.precommit, 'MESSAGE_UNDECODABLE') + await rejections(n, GossipTopic.precommit, 'MESSAGE_SCHEMA_INVALID') === 2))
    await waitFor('every other node to score the sender below zero', () => others(sender).every(n => scoreOf(n, sender.key.peerId) < 0))
    // Still working: a valid message from the oracle goes through afterwards.
    const before = miners[0]!.received['oracle-heartbeat'].length
    await oracle.gossip.publish(GossipTopic.oracleHeartbeat, {...heartbeat(oracle, Date.now()), heard: [], verdicts: []})
    await waitFor('a valid heartbeat after the garbage', () => miners[0]!.received['oracle-heartbeat'].length === before + 1)
  })

  it('redials the bootstrap peer when the connection drops', async () => {
    const leaf = miners[0]!
    await leaf.host.libp2p.hangUp(oracle.key.peerId)
    assert.equal(leaf.host.libp2p.getConnections(oracle.key.peerId).length, 0)
    await waitFor('the leaf to reconnect to its bootstrap peer', () => leaf.host.libp2p.getConnections(oracle.key.peerId).length > 0)
  })
})
