import type {ActorRef} from '../../actors/actorSystem.js'
import type {OracleMessage} from '../../actors/oracle/messages.js'
import {oracleActor} from '../../actors/oracle/oracleActor.js'
import {dashboardRoutes} from '../../api/dashboardRoutes.js'
import {openaiRoutes} from '../../api/openaiRoutes.js'
import {OracleClient} from '../../api/oracleClient.js'
import {oracleRoutes} from '../../api/oracleRoutes.js'
import {PromptTools} from '../../inference/promptTools.js'
import {GossipTopic} from '../../protocols/topic.js'
import type {NodeComponents, StartRole, RoleRuntime} from './nodeRole.js'

/**
 * An oracle: the user's front door (router API, OpenAI routes, dashboard) and the tasks'
 * coordinator. It learns miners from heartbeats, follows their precommits and reveals on
 * gossip, takes their tokens and results over task streams, and seeds its model file to them.
 */
export const oracleRole: StartRole = async (node: NodeComponents): Promise<RoleRuntime> => {
  const {config, system, log, deployment} = node
  const oracle: ActorRef<OracleMessage> = node.spawn('oracle', oracleActor({
    system, address: node.key.address, chain: node.chain, journal: node.journal,
    publishTask: async (task) => { await node.gossip.publish(GossipTopic.task, task) },
    isAdmittedMiner: (address) => node.access.roleAllowed(address, 'miner'),
    escrowWei: BigInt(config.chain.taskEscrowWei),
    resultTimeoutMs: config.oracle.resultTimeoutMs,
    precommitWindowS: config.oracle.precommitWindowS,
    commitWindowS: config.oracle.commitWindowS,
    heartbeatIntervalMs: config.stats.heartbeatIntervalMs,
    deployBlock: deployment.deployBlock
  }))

  const model = node.modelReady.then(reply => {
    if (reply.type === 'Ready') return {...reply.descriptor, path: reply.path}
    log.error({reply}, 'oracle could not seed the model; miners must find it elsewhere')
    return undefined
  }, () => undefined)
  // Vocabulary only: token counts and chat templates for the API, no weights.
  const promptTools = model.then(async m => m == null ? undefined : await PromptTools.load({modelPath: m.path, logger: log.child({component: 'llama'})}))
    .catch((err: Error) => { log.warn({err}, 'no tokenizer: usage counts and context checks are off'); return undefined })
  node.onStop(async () => { await (await promptTools)?.dispose() })
  const client = new OracleClient({
    system, oracle, chain: node.chain, modelId: config.model.id, model, promptTools, contextSize: config.inference.contextSize,
    defaults: config.oracle, resultTimeoutMs: config.oracle.precommitWindowS * 1000, signal: node.signal,
    network: {networkId: config.networkId, chainId: deployment.chainId, rpcUrl: config.chain.rpcUrl, contracts: deployment.contracts, deployBlock: deployment.deployBlock}
  })

  return {
    gossip: {
      [GossipTopic.heartbeat]: (m) => { system.tell(oracle, {type: 'HeartbeatSeen', heartbeat: m.payload}) },
      [GossipTopic.precommit]: (m) => { system.tell(oracle, {type: 'PrecommitSeen', precommit: m.payload}) },
      [GossipTopic.commit]: (m) => { system.tell(oracle, {type: 'CommitSeen', commit: m.payload}) }
    },
    streams: {
      result: {
        onOpen: (taskId, miner) => {
          const controller = new AbortController()
          system.tell(oracle, {type: 'StreamOpened', taskId, miner, controller})
          return {cancelled: controller.signal, token: (text) => { system.tell(oracle, {type: 'TokenReceived', taskId, miner, text}) }}
        },
        onResult: (result, sender) => { system.tell(oracle, {type: 'ResultReceived', result, sender}) }
      }
    },
    // An oracle mines nothing: its heartbeat only says it is there.
    sample: async () => ({modelsReady: [], freeSlots: 0, tokensPerSecond: 0}),
    status: async () => ({}),
    routes: [...oracleRoutes(client), ...openaiRoutes(client), ...dashboardRoutes()]
  }
}
