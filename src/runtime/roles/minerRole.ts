import {peerIdFromString} from '@libp2p/peer-id'
import {ASK_TIMEOUT_MS} from '../../actors/askTimeouts.js'
import {inferenceActor} from '../../actors/inference/inferenceActor.js'
import {pooledModel} from '../../actors/model/messages.js'
import type {AddModelReply, InferenceMessage, InferenceStatus} from '../../actors/inference/messages.js'
import type {MiningMessage, MiningStatus} from '../../actors/mining/messages.js'
import {miningActor} from '../../actors/mining/miningActor.js'
import type {ActorRef} from '../../actors/actorSystem.js'
import type {ModelId} from '../../protocols/modelId.js'
import {dashboardRoutes} from '../../api/dashboardRoutes.js'
import {GossipTopic} from '../../protocols/topic.js'
import {askStatus} from './askStatus.js'
import {trackServing, watchServed} from './watchServed.js'
import {memoryBudgetBytes} from './memoryBudget.js'
import type {NodeComponents, StartRole, RoleRuntime} from './nodeRole.js'

/**
 * A miner: takes tasks from gossip for the models it serves, runs them, streams tokens and the
 * result to the task's oracle, and proves the work on chain. Each listed model is served once
 * its file is verified (IPFS + sha256) and the chain admits the node; the models share one
 * memory budget (loaded on demand, least recently used unloaded). A node that can serve none
 * of its models stops; one that can serve some logs the others and serves those.
 */
export const minerRole: StartRole = async (node: NodeComponents): Promise<RoleRuntime> => {
  const {config, system, log} = node
  const mining: ActorRef<MiningMessage> = node.spawn('mining', miningActor({
    system, address: node.key.address, chain: node.chain, journal: node.journal, slots: config.inference.sequences,
    publish: async (topic, message) => { await node.gossip.publish(topic, message) },
    // Only what it took on: a competing task it let pass while busy is no task lost.
    onTaken: (task) => { system.tell(node.earnings, {type: 'TaskSeen', task}) },
    openResultStream: async (oracle, taskId) => {
      const peer = node.access.peerIdOf(oracle)
      if (peer == null) throw new Error(`oracle ${oracle} has no registered peer id`)
      return await node.results.open(peerIdFromString(peer), taskId, {signal: node.signal})
    }
  }))
  const inference: ActorRef<InferenceMessage> = node.spawn('inference', inferenceActor({
    system,
    budgetBytes: memoryBudgetBytes(config.inference.memoryBudgetMiB),
    openEngine: async (modelPath) => await node.openEngine({modelPath, threads: config.inference.threads, sequences: config.inference.sequences, contextSize: config.inference.contextSize, logger: log.child({component: 'llama'})})
  }))

  const served: Array<Promise<ModelId>> = node.modelFiles.map(async (file) => {
    const reply = await file
    if (reply.type !== 'Ready') throw new Error(`model ${reply.modelId} unavailable: ${reply.code}: ${reply.error}`)
    const added = await system.ask<InferenceMessage, AddModelReply>(inference, replyTo => ({type: 'AddModel', model: pooledModel(reply), replyTo}), ASK_TIMEOUT_MS.modelEnsure)
    if (added.type === 'Failed') throw new Error(`model ${added.modelId} cannot be served: ${added.code}: ${added.error}`)
    await node.admitted
    system.tell(mining, {type: 'ModelReady', modelId: reply.modelId, inference})
    return reply.modelId
  })
  watchServed(node, served)
  const serving = trackServing(config.models.map(m => m.id), served)

  return {
    gossip: {
      [GossipTopic.task]: (m) => { system.tell(mining, {type: 'TaskReceived', task: m.payload}) },
      [GossipTopic.oracleHeartbeat]: (m) => { system.tell(node.earnings, {type: 'OracleHeard', heartbeat: m.payload}) }
    },
    streams: {},
    sample: async () => {
      const miningStatus = await askStatus<MiningStatus>(system, mining)
      const inferenceStatus = await askStatus<InferenceStatus>(system, inference)
      const mined = new Set(miningStatus?.modelsReady ?? [])
      return {
        models: (inferenceStatus?.models ?? []).filter(m => mined.has(m.id)),
        freeSlots: miningStatus?.freeSlots ?? 0,
        tokensPerSecond: inferenceStatus?.tokensPerSecond ?? 0
      }
    },
    status: async () => ({
      inference: await askStatus<InferenceStatus>(system, inference),
      mining: await askStatus<MiningStatus>(system, mining)
    }),
    routes: dashboardRoutes(),
    served,
    serving
  }
}
