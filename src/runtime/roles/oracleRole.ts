import {peerIdFromString} from '@libp2p/peer-id'
import type {ActorRef} from '../../actors/actorSystem.js'
import type {OracleMessage} from '../../actors/oracle/messages.js'
import {oracleActor} from '../../actors/oracle/oracleActor.js'
import {dashboardRoutes} from '../../api/dashboardRoutes.js'
import {openaiRoutes} from '../../api/openaiRoutes.js'
import {OracleClient} from '../../api/oracleClient.js'
import {oracleRoutes} from '../../api/oracleRoutes.js'
import {PromptTools} from '../../inference/promptTools.js'
import {determinismClass} from '../../inference/determinismClass.js'
import {LlamaEngine} from '../../inference/llamaEngine.js'
import {GossipTopic} from '../../protocols/topic.js'
import {ValidatorPool} from '../../verify/validatorPool.js'
import {Verifier} from '../../verify/verifier.js'
import type {NodeComponents, StartRole, RoleRuntime} from './nodeRole.js'

/**
 * An oracle: the user's front door (router API, OpenAI routes, dashboard) and the tasks'
 * coordinator. It learns miners from heartbeats, follows their precommits and reveals on
 * gossip, takes their tokens and results over task streams, and seeds its model file to them.
 */
export const oracleRole: StartRole = async (node: NodeComponents): Promise<RoleRuntime> => {
  const {config, system, log, deployment} = node
  const model = node.modelReady.then(reply => {
    if (reply.type === 'Ready') return {...reply.descriptor, path: reply.path}
    log.error({reply}, 'oracle could not seed the model; miners must find it elsewhere')
    return undefined
  }, () => undefined)
  const verifier = config.oracle.verifier === 'local' ? localVerifier(node, model) : undefined
  // `validators` mode: checks go over the verify stream to live validators, learnt from heartbeats.
  const validators = config.oracle.verifier === 'validators' ? validatorPool(node) : undefined
  let verifierClass: string | undefined
  void verifier?.then(v => { verifierClass = v.ownClass }, (err: Error) => { log.error({err}, 'the local verifier cannot load: no task can be answered') })
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
    verify: verifier != null
      ? async (claim, options) => await (await verifier).check(claim, options)
      : validators == null ? undefined : async (claim, options) => await validators.check(claim, {...options, modelId: config.model.id, signal: node.signal}),
    // Local: the oracle's own class. Validators: theirs (the pool sends an audit to a validator of the miner's class).
    auditableClasses: () => validators != null ? validators.classes(config.model.id) : verifierClass == null ? [] : [verifierClass],
    auditRate: config.oracle.auditRate,
    // Two missed pings: the node has stopped reporting.
    pingWindowS: Math.ceil(2 * config.stats.chainPingIntervalMs / 1000)
  }))
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
    sample: async () => ({modelsReady: [], freeSlots: 0, tokensPerSecond: 0, determinismClass: verifierClass ?? ''}),
    status: async () => ({}),
    routes: [...oracleRoutes(client), ...openaiRoutes(client), ...dashboardRoutes()]
  }
}

/**
 * The oracle checks outputs itself with its own copy of the model (one slot: checks are
 * prefills, far cheaper than the decoding they check on real models).
 */
async function localVerifier (node: NodeComponents, model: Promise<{path: string, sha256: string} | undefined>): Promise<Verifier> {
  const m = await model
  if (m == null) throw new Error('the oracle has no copy of the model to verify with')
  const engine = await LlamaEngine.load({modelPath: m.path, threads: node.config.inference.threads, sequences: 1, contextSize: node.config.inference.contextSize, logger: node.log.child({component: 'verifier'})})
  node.onStop(async () => { await engine.dispose() })
  const verifier = new Verifier(engine, determinismClass(m.sha256, engine.info.gpu))
  node.log.info({determinismClass: verifier.ownClass}, 'verifier ready')
  return verifier
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
