import {determinismClass} from '../../inference/determinismClass.js'
import {EnginePool, type EngineLease, type PooledModel} from '../../inference/enginePool.js'
import type {InferenceEngine} from '../../inference/inferenceEngine.js'
import type {LlamaEngineInfo} from '../../inference/llamaEngine.js'
import type {ModelId} from '../../protocols/modelId.js'
import {assertNever} from '../../util/assertNever.js'
import type {ActorDefinition, ActorRef, ActorSystem} from '../actorSystem.js'
import type {AddModelReply, InferenceMessage, InferenceReply, InferenceStatus} from './messages.js'
import {nodeMetrics} from '../../util/metrics.js'

export interface InferenceActorInit {
  system: ActorSystem
  /** Memory the loaded models may take together (see EnginePool). */
  budgetBytes: number
  /** Opens an engine on a model file: on first use, and again after every crash (the engine is the resource). */
  openEngine: (modelPath: string) => Promise<InferenceEngine>
}

interface InferenceState {
  pool: EnginePool<InferenceEngine>
  running: Map<string, AbortController>
  completed: number
  recentTokensPerSecond: number[]
}

const RECENT_WINDOW = 16
/** Failures that are the request's own fault (or its model's); any other failure means the engine is broken. */
const REQUEST_FAULTS: ReadonlySet<string> = new Set(['PROMPT_TOO_LONG', 'INVALID_REQUEST', 'ABORTED', 'MODEL_NOT_SERVED', 'MODEL_LOAD_FAILED', 'POOL_DISPOSED'])

type Internal = {type: '$EngineFailed', error: Error}

/**
 * Owns the node-llama-cpp engines of the models this node serves (an EnginePool: loaded on
 * demand within the memory budget, the least recently used idle one unloaded to make room).
 * Runs are started, not awaited, so the mailbox stays free for cancellations and status; each
 * engine bounds concurrency with its own queue. A native failure that is not the request's
 * fault crashes the actor: the supervisor unloads every engine and the models load again as
 * tasks need them, and every run in flight is answered `Failed`, never dropped.
 */
export function inferenceActor (init: InferenceActorInit): ActorDefinition<InferenceState, InferenceMessage | Internal> {
  const {system} = init
  // Outside the state on purpose: which models are served, and the class each computes in,
  // outlive a crash-restart of the actor (the new pool is rebuilt from them).
  const models = new Map<ModelId, PooledModel>()
  const classes = new Map<ModelId, string>()
  let backend: LlamaEngineInfo['gpu'] | undefined

  const learnClass = (lease: EngineLease<InferenceEngine>): string => {
    backend = lease.engine.info.gpu
    const own = lease.engine.determinismClass ?? determinismClass(lease.model.sha256, lease.engine.info.gpu)
    classes.set(lease.model.id, own)
    return own
  }
  // A model not loaded yet computes on the backend the others got: its class is known before its first task.
  const classOf = (model: PooledModel): string => classes.get(model.id) ?? (backend === undefined ? '' : determinismClass(model.sha256, backend))

  return {
    name: 'inference',
    init: async (ctx) => {
      const pool = new EnginePool<InferenceEngine>({
        budgetBytes: init.budgetBytes,
        open: async (model) => await init.openEngine(model.path),
        close: async (engine) => { await engine.dispose() },
        logger: ctx.log
      })
      for (const model of models.values()) pool.add(model)
      for (const model of models.values()) pool.preload(model.id)
      return {pool, running: new Map(), completed: 0, recentTokensPerSecond: []}
    },
    receive: (state, msg, ctx) => {
      switch (msg.type) {
        case 'AddModel': {
          const {model, replyTo} = msg
          const reply = (r: AddModelReply): void => { system.tell<AddModelReply>(replyTo, r) }
          try {
            state.pool.add(model)
          } catch (err) {
            reply({type: 'Failed', modelId: model.id, code: (err as {code?: string}).code ?? 'MODEL_REJECTED', error: (err as Error).message})
            return state
          }
          models.set(model.id, model)
          if (!state.pool.preload(model.id)) {
            reply({type: 'Added', modelId: model.id, loaded: false})
            return state
          }
          state.pool.acquire(model.id).then(lease => {
            learnClass(lease)
            lease.release()
            ctx.log.info({modelId: model.id, info: lease.engine.info}, 'model ready')
            reply({type: 'Added', modelId: model.id, loaded: true})
          }, (err: Error & {code?: string}) => {
            // Cut short by a restart of this actor: the model is fine and loads on its first task.
            if (err.code === 'POOL_DISPOSED') {
              reply({type: 'Added', modelId: model.id, loaded: false})
              return
            }
            models.delete(model.id)
            state.pool.remove(model.id)
            reply({type: 'Failed', modelId: model.id, code: 'MODEL_LOAD_FAILED', error: err.message})
          })
          return state
        }
        case 'Run': {
          const {job, replyTo} = msg
          if (state.running.has(job.jobId)) {
            system.tell<InferenceReply>(replyTo, {type: 'Failed', jobId: job.jobId, code: 'DUPLICATE_JOB', error: `job ${job.jobId} is already running`})
            return state
          }
          const controller = new AbortController()
          state.running.set(job.jobId, controller)
          let lease: EngineLease<InferenceEngine> | undefined
          state.pool.acquire(job.modelId, controller.signal).then(
            held => { lease = held; return {lease: held, determinismClass: learnClass(held)} },
            (err: Error & {code?: string}) => {
              // Cancelled while its model was loading, or a model that cannot load: the run's failure, not the engines'.
              const code = controller.signal.aborted ? 'ABORTED' : err.code === 'MODEL_NOT_SERVED' || err.code === 'POOL_DISPOSED' ? err.code : 'MODEL_LOAD_FAILED'
              throw Object.assign(new Error(err.message, {cause: err}), {code})
            }
          ).then(async ({lease: held, determinismClass}) => {
            const result = await held.engine.complete({prompt: job.prompt, seed: job.seed, params: job.params}, {signal: controller.signal, onToken: msg.onToken})
            state.completed++
            state.recentTokensPerSecond = [...state.recentTokensPerSecond, result.tokensPerSecond].slice(-RECENT_WINDOW)
            // One observation per run: a run cut short says nothing of the engine's speed.
            if (result.finishReason !== 'abort' && result.completionTokens > 0) nodeMetrics.inferenceTokensPerSecond.observe({model: job.modelId}, result.tokensPerSecond)
            system.tell<InferenceReply>(replyTo, {type: 'Completed', jobId: job.jobId, outcome: {...result, determinismClass}})
          }).catch((err: Error & {code?: string}) => {
            ctx.log.warn({jobId: job.jobId, modelId: job.modelId, err}, 'inference failed')
            system.tell<InferenceReply>(replyTo, {type: 'Failed', jobId: job.jobId, code: err.code ?? 'INFERENCE_FAILED', error: err.message})
            // Crash on purpose: the supervisor disposes the engines and they load again.
            if (!REQUEST_FAULTS.has(err.code ?? '')) system.tell<Internal>(ctx.self as ActorRef<Internal>, {type: '$EngineFailed', error: err})
          }).finally(() => {
            lease?.release()
            state.running.delete(job.jobId)
          })
          return state
        }
        case '$EngineFailed':
          throw msg.error
        case 'Cancel':
          state.running.get(msg.jobId)?.abort(new Error(`job ${msg.jobId} cancelled`))
          return state
        case 'GetStatus': {
          const tps = state.recentTokensPerSecond
          const loaded = new Set(state.pool.loaded())
          const engines = [...loaded].map(id => state.pool.loadedEngine(id)).filter(e => e != null)
          const status: InferenceStatus = {
            models: [...models.values()].map(m => ({id: m.id, determinismClass: classOf(m), loaded: loaded.has(m.id)})),
            running: engines.reduce((n, e) => n + e.running, 0),
            queued: engines.reduce((n, e) => n + e.queued, 0),
            completed: state.completed,
            tokensPerSecond: tps.length === 0 ? 0 : tps.reduce((a, b) => a + b, 0) / tps.length
          }
          system.tell(msg.replyTo, status)
          return state
        }
        default:
          return assertNever(msg, 'inference message')
      }
    },
    dispose: async (state) => {
      for (const controller of state.running.values()) controller.abort(new Error('inference engine restarting'))
      await state.pool.dispose()
    },
    failMessage: (msg, error) => {
      if (msg.type === 'Run') system.tell<InferenceReply>(msg.replyTo, {type: 'Failed', jobId: msg.job.jobId, code: 'INFERENCE_CRASHED', error: error.message})
      if (msg.type === 'AddModel') system.tell<AddModelReply>(msg.replyTo, {type: 'Failed', modelId: msg.model.id, code: 'INFERENCE_CRASHED', error: error.message})
    }
  }
}
