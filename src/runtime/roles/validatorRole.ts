import {determinismClass} from '../../inference/determinismClass.js'
import {LlamaEngine} from '../../inference/llamaEngine.js'
import type {ModelId} from '../../protocols/modelId.js'
import {Verifier} from '../../verify/verifier.js'
import type {NodeComponents, StartRole, RoleRuntime} from './nodeRole.js'

/**
 * A validator: holds the model and checks miners' claimed outputs for oracles over the verify
 * stream (teacher-forced, or re-executed when it shares the miner's class), answering verdicts
 * signed with its node key. It takes no gossip; its heartbeat tells oracles its model and class.
 * A model it cannot load stops the node.
 */
export const validatorRole: StartRole = async (node: NodeComponents): Promise<RoleRuntime> => {
  const {config, log} = node
  const counts = {served: 0, accepted: 0, refused: 0, failed: 0}
  let engine: LlamaEngine | undefined
  let verifier: Verifier | undefined
  let modelId: ModelId | undefined

  const serving: Promise<ModelId> = node.modelReady.then(async (reply) => {
    if (reply.type !== 'Ready') throw new Error(`model ${reply.modelId} unavailable: ${reply.code}: ${reply.error}`)
    const loaded = await LlamaEngine.load({modelPath: reply.path, threads: config.inference.threads, sequences: config.inference.sequences, contextSize: config.inference.contextSize, logger: log.child({component: 'llama'}), signal: node.signal})
    node.onStop(async () => { await loaded.dispose() })
    engine = loaded
    verifier = new Verifier(loaded, determinismClass(reply.descriptor.sha256, loaded.info.gpu))
    modelId = reply.modelId
    log.info({modelId, determinismClass: verifier.ownClass}, 'validator ready')
    await node.admitted
    return reply.modelId
  })
  serving.catch((err: Error) => { if (!node.signal.aborted) node.fail(err.message, err) })

  return {
    gossip: {},
    streams: {
      verify: async (claim, options, oracle) => {
        // Oracles learn the model is loaded from the heartbeat; one that asks earlier is refused.
        if (verifier == null) throw new Error('the validator\'s model is not loaded yet')
        let verdict
        try {
          verdict = await verifier.check(claim, options)
        } catch (err) {
          counts.failed++
          throw err
        }
        counts.served++
        if (verdict.accepted) counts.accepted++
        else counts.refused++
        const fields = {oracle, accepted: verdict.accepted, method: verdict.method, sameClass: verdict.sameClass, tokens: verdict.tokens, failures: verdict.failures, ms: Math.round(verdict.ms), reason: verdict.reason}
        if (verdict.accepted) log.debug(fields, 'claim verified')
        else log.info(fields, 'claim refused')
        return verdict
      }
    },
    sample: async () => ({
      modelsReady: verifier != null && modelId != null ? [modelId] : [],
      freeSlots: engine == null ? 0 : Math.max(0, engine.info.sequences - engine.running),
      tokensPerSecond: 0,
      determinismClass: verifier?.ownClass ?? ''
    }),
    status: async () => ({
      validator: {modelId: modelId ?? null, determinismClass: verifier?.ownClass ?? null, verifications: {...counts}, running: engine?.running ?? 0, queued: engine?.queued ?? 0}
    }),
    routes: [],
    serving
  }
}
