import {peerIdFromString} from '@libp2p/peer-id'
import type {ActorRef} from '../../actors/actorSystem.js'
import {pooledModel} from '../../actors/model/messages.js'
import type {OracleMessage} from '../../actors/oracle/messages.js'
import {oracleActor} from '../../actors/oracle/oracleActor.js'
import {dashboardRoutes} from '../../api/dashboardRoutes.js'
import {ModelCatalog} from '../../api/modelCatalog.js'
import {rpcUrlForLogs} from '../../chain/accessCache.js'
import {openaiRoutes} from '../../api/openaiRoutes.js'
import {OracleClient} from '../../api/oracleClient.js'
import {oracleRoutes} from '../../api/oracleRoutes.js'
import {loadPromptTools, openLlamaEngine} from '../../inference/openLlamaEngine.js'
import type {PromptTools} from '../../inference/promptTools.js'
import type {ModelId} from '../../protocols/modelId.js'
import {GossipTopic} from '../../protocols/topic.js'
import {ValidatorPool} from '../../verify/validatorPool.js'
import {VerifierPool} from '../../verify/verifierPool.js'
import {memoryBudgetBytes} from './memoryBudget.js'
import type {NodeComponents, StartRole, RoleRuntime} from './nodeRole.js'

/**
 * An oracle: the user's front door (router API, OpenAI routes, dashboard) and the tasks'
 * coordinator. It learns miners from heartbeats, follows their precommits and reveals on
 * gossip, takes their tokens and results over task streams, and seeds its model files to them.
 * Requests may name any registered model; the oracle checks outputs of the models it holds
 * (`verifier: local`), of those its validators hold (`validators`), or none (`off`).
 */
export const oracleRole: StartRole = async (node: NodeComponents): Promise<RoleRuntime> => {
  const {config, system, log, deployment} = node
  const local = config.oracle.verifier === 'local' ? localVerifiers(node) : undefined
  // `validators` mode: checks go over the verify stream to live validators, learnt from heartbeats.
  const validators = config.oracle.verifier === 'validators' ? validatorPool(node) : undefined
  /** Vocabulary only, per held model: token counts and chat templates for the API, no weights. */
  const promptTools = new Map<ModelId, Promise<PromptTools | undefined>>()
  /** Listed models whose copy this oracle could not get or load: their tasks cannot be checked here. */
  const unusable = new Set<ModelId>()

  for (const [i, file] of node.modelFiles.entries()) {
    const entry = config.models[i]
    if (entry == null) continue
    const ready = file.then(reply => {
      if (reply.type === 'Ready') return reply
      unusable.add(reply.modelId)
      log.error({modelId: reply.modelId, code: reply.code, error: reply.error}, 'oracle could not seed the model; miners must find it elsewhere, and this oracle cannot check it')
      return undefined
    }, () => undefined)
    promptTools.set(entry.id, ready.then(async r => r == null ? undefined : await loadPromptTools({modelPath: r.path, logger: log.child({component: 'llama'})}))
      .catch((err: Error) => { log.warn({err, modelId: entry.id}, 'no tokenizer: usage counts and context checks are off for this model'); return undefined }))
    if (local != null) {
      void ready.then(async r => {
        if (r == null) return
        local.add(pooledModel(r))
        const determinismClass = await local.load(r.modelId, node.signal)
        log.info({modelId: r.modelId, determinismClass}, 'verifier ready')
      }).catch((err: Error) => {
        unusable.add(entry.id)
        log.error({err, modelId: entry.id}, 'the local verifier cannot load this model: its tasks cannot be answered')
      })
    }
  }
  node.onStop(async () => {
    for (const tools of promptTools.values()) await (await tools)?.dispose()
    await local?.dispose()
  })

  const oracle: ActorRef<OracleMessage> = node.spawn('oracle', oracleActor({
    system, address: node.key.address, chain: node.chain, journal: node.journal,
    publishTask: async (task) => { await node.gossip.publish(GossipTopic.task, task) },
    isAdmittedMiner: (address) => node.access.roleAllowed(address, 'miner'),
    escrowWei: BigInt(config.chain.taskEscrowWei),
    resultTimeoutMs: config.oracle.resultTimeoutMs,
    precommitWindowS: config.oracle.precommitWindowS,
    commitWindowS: config.oracle.commitWindowS,
    heartbeatIntervalMs: config.stats.heartbeatIntervalMs,
    deployBlock: deployment.deployBlock,
    verify: local != null
      ? async (modelId, claim, options) => await local.check(modelId, claim, {...options, signal: node.signal})
      : validators == null ? undefined : async (modelId, claim, options) => await validators.check(claim, {...options, modelId, signal: node.signal}),
    // Local: the oracle's own classes. Validators: theirs (the pool sends an audit to a validator of the miner's class).
    auditableClasses: () => validators != null ? validators.classes() : local?.ownClasses() ?? [],
    auditRate: config.oracle.auditRate,
    // Two missed pings: the node has stopped reporting.
    pingWindowS: Math.ceil(2 * config.stats.chainPingIntervalMs / 1000)
  }))
  const listed = new Set(config.models.map(m => m.id))
  const catalog = new ModelCatalog(system, node.chain)
  // Read once now: a chain outage later finds the list already there.
  catalog.list().catch((err: Error) => { log.warn({err: err.message}, 'model registry not read yet; the first request reads it') })
  const client = new OracleClient({
    system, oracle, chain: node.chain, catalog,
    defaultModelId: config.models[0]!.id,
    promptToolsOf: async (modelId) => await promptTools.get(modelId),
    unverifiable: (modelId) => local == null ? null
      : unusable.has(modelId) ? 'this oracle could not get or load its copy of it (see its log)'
        : local.has(modelId) ? null
          : listed.has(modelId) ? 'this oracle has not loaded its copy of it yet'
            : 'this oracle checks only the models it holds (add it to the oracle\'s `models`, or use validators)',
    minerLiveMs: 3 * config.stats.heartbeatIntervalMs,
    contextSize: config.inference.contextSize,
    defaults: config.oracle, resultTimeoutMs: config.oracle.precommitWindowS * 1000, signal: node.signal,
    network: {networkId: config.networkId, chainId: deployment.chainId, rpcUrl: rpcUrlForLogs(config.chain.rpcUrls[0]!), contracts: deployment.contracts, deployBlock: deployment.deployBlock}
  })

  return {
    gossip: {
      [GossipTopic.heartbeat]: (m) => {
        system.tell(oracle, {type: 'HeartbeatSeen', heartbeat: m.payload})
        validators?.heartbeat(m.payload)
      },
      [GossipTopic.precommit]: (m) => { system.tell(oracle, {type: 'PrecommitSeen', precommit: m.payload}) },
      [GossipTopic.commit]: (m) => { system.tell(oracle, {type: 'CommitSeen', commit: m.payload}) }
    },
    streams: {
      result: {
        onOpen: (taskId, miner) => {
          const controller = new AbortController()
          system.tell(oracle, {type: 'StreamOpened', taskId, miner, controller})
          return {cancelled: controller.signal, token: (chunk) => { system.tell(oracle, {type: 'TokenReceived', taskId, miner, chunk}) }}
        },
        onResult: (result, sender) => { system.tell(oracle, {type: 'ResultReceived', result, sender}) }
      }
    },
    // An oracle mines nothing: its heartbeat only says it is there.
    sample: async () => ({models: [], freeSlots: 0, tokensPerSecond: 0}),
    status: async () => ({verifier: {mode: config.oracle.verifier, models: local?.served() ?? []}}),
    routes: [...oracleRoutes(client), ...openaiRoutes(client), ...dashboardRoutes()]
  }
}

/**
 * The oracle checks outputs itself with its own copy of each model it holds (one slot per
 * model: checks are prefills, far cheaper than the decoding they check on real models), the
 * models sharing the node's memory budget.
 */
function localVerifiers (node: NodeComponents): VerifierPool {
  const {config} = node
  return new VerifierPool({
    budgetBytes: memoryBudgetBytes(config.inference.memoryBudgetMiB),
    openEngine: async (model) => await openLlamaEngine({modelPath: model.path, threads: config.inference.threads, sequences: 1, contextSize: config.inference.contextSize, logger: node.log.child({component: 'verifier'}), signal: node.signal}),
    logger: node.log.child({component: 'verifiers'})
  })
}

/** The validators this oracle asks in `validators` mode (admitted ones only, by their connection key). */
function validatorPool (node: NodeComponents): ValidatorPool {
  return new ValidatorPool({
    ask: async (validator, claim, options, abort) => await node.verify.check(peerIdFromString(validator.peerId), claim, options, abort),
    isAdmitted: (address) => node.access.roleAllowed(address, 'validator'),
    heartbeatIntervalMs: node.config.stats.heartbeatIntervalMs,
    logger: node.log.child({component: 'validators'})
  })
}
