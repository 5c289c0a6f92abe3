import {pooledModel} from '../../actors/model/messages.js'
import {dashboardRoutes} from '../../api/dashboardRoutes.js'
import {openLlamaEngine} from '../../inference/openLlamaEngine.js'
import type {ModelId} from '../../protocols/modelId.js'
import {GossipTopic} from '../../protocols/topic.js'
import {VerifierPool} from '../../verify/verifierPool.js'
import {trackServing, watchServed} from './watchServed.js'
import {memoryBudgetBytes} from './memoryBudget.js'
import type {NodeComponents, StartRole, RoleRuntime} from './nodeRole.js'

/**
 * A validator: holds its listed models and checks miners' claimed outputs for oracles over the
 * verify stream (teacher-forced, or re-executed when it shares the miner's class), answering
 * verdicts signed with its node key. Of gossip it takes only oracles' heartbeats (do they hear
 * it?); its own tells oracles its models and their classes. Models share one memory budget; a node that can load none of them stops.
 */
export const validatorRole: StartRole = async (node: NodeComponents): Promise<RoleRuntime> => {
  const {config, log} = node
  const counts = {served: 0, accepted: 0, refused: 0, failed: 0}
  const verifiers = new VerifierPool({
    budgetBytes: memoryBudgetBytes(config.inference.memoryBudgetMiB),
    openEngine: async (model) => await openLlamaEngine({modelPath: model.path, threads: config.inference.threads, sequences: config.inference.sequences, contextSize: config.inference.contextSize, logger: log.child({component: 'llama'}), signal: node.signal}),
    logger: log.child({component: 'verifiers'})
  })
  node.onStop(async () => { await verifiers.dispose() })
  /** Models loaded once (so their class is known) and offered to oracles. */
  const ready = new Set<ModelId>()

  const served = watchServed(node, node.modelFiles.map(async (file) => {
    const reply = await file
    if (reply.type !== 'Ready') throw new Error(`model ${reply.modelId} unavailable: ${reply.code}: ${reply.error}`)
    verifiers.add(pooledModel(reply))
    const determinismClass = await verifiers.load(reply.modelId, node.signal)
    ready.add(reply.modelId)
    log.info({modelId: reply.modelId, determinismClass}, 'validator ready for model')
    await node.admitted
    return reply.modelId
  }))

  return {
    gossip: {
      [GossipTopic.oracleHeartbeat]: (m) => { node.system.tell(node.earnings, {type: 'OracleHeard', heartbeat: m.payload}) }
    },
    streams: {
      verify: async (claim, options, oracle) => {
        // Oracles learn the models from the heartbeat; one that asks for another is refused.
        if (!ready.has(options.modelId)) throw new Error(`this validator does not check model ${options.modelId}`)
        let verdict
        try {
          verdict = await verifiers.check(options.modelId, claim, options)
        } catch (err) {
          counts.failed++
          throw err
        }
        counts.served++
        if (verdict.accepted) counts.accepted++
        else counts.refused++
        const fields = {oracle, modelId: options.modelId, accepted: verdict.accepted, method: verdict.method, sameClass: verdict.sameClass, tokens: verdict.tokens, failures: verdict.failures, ms: Math.round(verdict.ms), reason: verdict.reason}
        if (verdict.accepted) log.debug(fields, 'claim verified')
        else log.info(fields, 'claim refused')
        return verdict
      }
    },
    sample: async () => ({
      models: verifiers.served().filter(m => ready.has(m.id)),
      freeSlots: Math.max(0, config.inference.sequences - verifiers.activity().running),
      tokensPerSecond: 0
    }),
    status: async () => ({
      validator: {models: verifiers.served(), verifications: {...counts}, ...verifiers.activity()}
    }),
    routes: dashboardRoutes(),
    served,
    serving: trackServing(config.models.map(m => m.id), served)
  }
}
