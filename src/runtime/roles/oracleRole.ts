import {peerIdFromString} from '@libp2p/peer-id'
import type {ActorRef} from '../../actors/actorSystem.js'
import {pooledModel} from '../../actors/model/messages.js'
import type {OracleMessage, TaskRecord} from '../../actors/oracle/messages.js'
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
import type {Address} from '../../protocols/address.js'
import {MAX_HEARD_NODES, MAX_HEARTBEAT_VERDICTS, MAX_VERDICT_REASON_CHARS, type HeartbeatVerdict, type OracleHearing} from '../../protocols/messages.js'
import {ASK_TIMEOUT_MS} from '../../actors/askTimeouts.js'
import {MAX_MESSAGE_BYTES} from '../../protocols/constants.js'
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

  /** When each node's heartbeat last reached this oracle: its heartbeat says whom it hears. */
  const heardAt = new Map<Address, number>()
  const hearingWindowMs = HEARD_INTERVALS * config.stats.heartbeatIntervalMs

  return {
    gossip: {
      [GossipTopic.heartbeat]: (m) => {
        heardAt.delete(m.payload.address)
        heardAt.set(m.payload.address, Date.now())
        if (heardAt.size > 2 * MAX_HEARD_NODES) heardAt.delete(heardAt.keys().next().value!)
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
    routes: [...oracleRoutes(client), ...openaiRoutes(client), ...dashboardRoutes()],
    hearing: async (): Promise<OracleHearing> => {
      const since = Date.now() - hearingWindowMs
      // Newest last in the map: the most recently heard first, when there are more than fit.
      const heard = [...heardAt].filter(([, at]) => at >= since).map(([address]) => address).reverse().slice(0, MAX_HEARD_NODES)
      // A slow oracle actor leaves the verdicts out of one heartbeat rather than hold it up.
      const tasks = await system.ask<OracleMessage, TaskRecord[]>(oracle, replyTo => ({type: 'ListTasks', replyTo}), ASK_TIMEOUT_MS.status).catch(() => [])
      return fitHearing({heard, verdicts: negativeVerdicts(tasks, Date.now() - VERDICT_WINDOW_MS)})
    }
  }
}

/** An oracle lists the nodes it heard within this many heartbeat intervals. */
const HEARD_INTERVALS = 3
/** An oracle repeats its negative verdicts in its heartbeats for this long (a miner that missed one heartbeat still learns them). */
const VERDICT_WINDOW_MS = 2 * 60_000

/** Room the rest of an oracle heartbeat takes (identity, addrs, models), kept free of the hearing. */
const HEARTBEAT_BASE_BYTES = 4 * 1024
/** msgpack bytes of an address (a 42-char string) and the fixed part of a verdict (keys, miner, verdict). */
const ADDRESS_BYTES = 44
const VERDICT_FIXED_BYTES = 100

/**
 * The hearing cut to what the topic's size limit leaves beside the rest of the heartbeat (an
 * oversized heartbeat would not be published at all): verdicts first (they name a miner's fault),
 * then the nodes heard, most recent first.
 */
function fitHearing (hearing: OracleHearing): OracleHearing {
  let budget = MAX_MESSAGE_BYTES[GossipTopic.oracleHeartbeat] - HEARTBEAT_BASE_BYTES
  const verdicts: HeartbeatVerdict[] = []
  for (const v of hearing.verdicts) {
    const size = VERDICT_FIXED_BYTES + v.taskId.length + Buffer.byteLength(v.reason)
    if (size > budget) break
    budget -= size
    verdicts.push(v)
  }
  return {heard: hearing.heard.slice(0, Math.max(0, Math.floor(budget / ADDRESS_BYTES))), verdicts}
}

/** The negative verdicts on miners' outputs of tasks answered since `since`, newest first, bounded for the heartbeat. */
export function negativeVerdicts (tasks: readonly TaskRecord[], since: number): HeartbeatVerdict[] {
  const verdicts: Array<HeartbeatVerdict & {at: number}> = []
  for (const task of tasks) {
    const at = task.timings.answeredAt ?? task.timings.requestedAt
    if (at < since || task.agreement == null) continue
    for (const miner of task.agreement.dissenting) {
      const result = task.results.find(r => r.miner === miner)
      const rejected = task.agreement.rejected.includes(miner)
      const reason = result?.verdict?.accepted === false ? result.verdict.reason : rejected ? 'outvoted within its determinism class' : 'in the minority by output hash'
      verdicts.push({taskId: task.taskId, miner, verdict: rejected ? 'rejected' : 'disagreed', reason: reason.slice(0, MAX_VERDICT_REASON_CHARS), at})
    }
  }
  return verdicts.sort((a, b) => b.at - a.at).slice(0, MAX_HEARTBEAT_VERDICTS).map(({at, ...v}) => v)
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
