import {peerIdFromString} from '@libp2p/peer-id'
import {ASK_TIMEOUT_MS} from '../../actors/askTimeouts.js'
import {inferenceActor} from '../../actors/inference/inferenceActor.js'
import type {InferenceMessage, InferenceStatus} from '../../actors/inference/messages.js'
import type {MiningMessage, MiningStatus} from '../../actors/mining/messages.js'
import {miningActor} from '../../actors/mining/miningActor.js'
import type {ActorRef} from '../../actors/actorSystem.js'
import type {ModelId} from '../../protocols/modelId.js'
import {GossipTopic} from '../../protocols/topic.js'
import {askStatus} from './askStatus.js'
import type {NodeComponents, StartRole, RoleRuntime} from './nodeRole.js'

/**
 * A miner: takes tasks from gossip, runs them on its model, streams tokens and the result to
 * the task's oracle, and proves the work on chain. It serves once its model is verified (IPFS +
 * sha256) and loaded, and the chain admits it; a model it cannot serve stops the node.
 */
export const minerRole: StartRole = async (node: NodeComponents): Promise<RoleRuntime> => {
  const {config, system, log} = node
  const mining: ActorRef<MiningMessage> = node.spawn('mining', miningActor({
    system, address: node.key.address, chain: node.chain, journal: node.journal, slots: config.inference.sequences,
    publish: async (topic, message) => { await node.gossip.publish(topic, message) },
    openResultStream: async (oracle, taskId) => {
      const peer = node.access.peerIdOf(oracle)
      if (peer == null) throw new Error(`oracle ${oracle} has no registered peer id`)
      return await node.results.open(peerIdFromString(peer), taskId, {signal: node.signal})
    }
  }))
  let inference: ActorRef<InferenceMessage> | undefined

  const serving: Promise<ModelId> = node.modelReady.then(async (reply) => {
    if (reply.type !== 'Ready') throw new Error(`model ${reply.modelId} unavailable: ${reply.code}: ${reply.error}`)
    const engine = node.spawn('inference', inferenceActor({
      system, modelPath: reply.path, modelSha256: reply.descriptor.sha256,
      openEngine: async (modelPath) => await node.openEngine({modelPath, threads: config.inference.threads, sequences: config.inference.sequences, contextSize: config.inference.contextSize, logger: log.child({component: 'llama'})})
    }))
    inference = engine
    await system.ask<InferenceMessage, InferenceStatus>(engine, replyTo => ({type: 'GetStatus', replyTo}), ASK_TIMEOUT_MS.modelEnsure)
    await node.admitted
    system.tell(mining, {type: 'ModelReady', modelId: reply.modelId, inference: engine})
    return reply.modelId
  })
  serving.catch((err: Error) => { if (!node.signal.aborted) node.fail(err.message, err) })

  return {
    gossip: {
      [GossipTopic.task]: (m) => { system.tell(mining, {type: 'TaskReceived', task: m.payload}) }
    },
    streams: {},
    sample: async () => {
      const miningStatus = await askStatus<MiningStatus>(system, mining)
      const inferenceStatus = await askStatus<InferenceStatus>(system, inference)
      return {modelsReady: miningStatus?.modelsReady ?? [], freeSlots: miningStatus?.freeSlots ?? 0, tokensPerSecond: inferenceStatus?.tokensPerSecond ?? 0, determinismClass: inferenceStatus?.determinismClass ?? ''}
    },
    status: async () => ({
      inference: await askStatus<InferenceStatus>(system, inference),
      mining: await askStatus<MiningStatus>(system, mining)
    }),
    routes: [],
    serving
  }
}
