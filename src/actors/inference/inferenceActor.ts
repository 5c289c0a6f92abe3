import {determinismClass} from '../../inference/determinismClass.js'
import type {InferenceEngine} from '../../inference/inferenceEngine.js'
import {assertNever} from '../../util/assertNever.js'
import type {ActorDefinition, ActorRef, ActorSystem} from '../actorSystem.js'
import type {InferenceMessage, InferenceReply} from './messages.js'

export interface InferenceActorInit {
  system: ActorSystem
  modelPath: string
  /** sha256 of the model file: with the engine's backend, it makes the node's determinism class. */
  modelSha256: string
  /** Opens the engine: called on start and after every crash (the engine is the resource). */
  openEngine: (modelPath: string) => Promise<InferenceEngine>
}

interface InferenceState {
  engine: InferenceEngine
  determinismClass: string
  running: Map<string, AbortController>
  completed: number
  recentTokensPerSecond: number[]
}

const RECENT_WINDOW = 16
/** Failures that are the request's own fault; any other failure means the engine is broken. */
const REQUEST_FAULTS: ReadonlySet<string> = new Set(['PROMPT_TOO_LONG', 'INVALID_REQUEST', 'ABORTED'])

type Internal = {type: '$EngineFailed', error: Error}

/**
 * Owns the node-llama-cpp engine. Runs are started, not awaited, so the mailbox stays free
 * for cancellations and status; the engine bounds concurrency with its own queue. A native
 * failure that is not the request's fault crashes the actor: the supervisor reloads the
 * engine and every run in flight is answered `Failed`, never dropped.
 */
export function inferenceActor (init: InferenceActorInit): ActorDefinition<InferenceState, InferenceMessage | Internal> {
  const {system} = init
  return {
    name: 'inference',
    init: async (ctx) => {
      ctx.log.info({modelPath: init.modelPath}, 'loading model')
      const engine = await init.openEngine(init.modelPath)
      ctx.log.info({info: engine.info}, 'model loaded')
      return {engine, determinismClass: engine.determinismClass ?? determinismClass(init.modelSha256, engine.info.gpu), running: new Map(), completed: 0, recentTokensPerSecond: []}
    },
    receive: (state, msg, ctx) => {
      switch (msg.type) {
        case 'Run': {
          const {job, replyTo} = msg
          if (state.running.has(job.jobId)) {
            system.tell<InferenceReply>(replyTo, {type: 'Failed', jobId: job.jobId, code: 'DUPLICATE_JOB', error: `job ${job.jobId} is already running`})
            return state
          }
          const controller = new AbortController()
          state.running.set(job.jobId, controller)
          state.engine.complete({prompt: job.prompt, seed: job.seed, params: job.params}, {signal: controller.signal, onToken: msg.onToken}).then(result => {
            state.completed++
            state.recentTokensPerSecond = [...state.recentTokensPerSecond, result.tokensPerSecond].slice(-RECENT_WINDOW)
            system.tell<InferenceReply>(replyTo, {type: 'Completed', jobId: job.jobId, outcome: {...result, determinismClass: state.determinismClass}})
          }, (err: Error & {code?: string}) => {
            ctx.log.warn({jobId: job.jobId, err}, 'inference failed')
            system.tell<InferenceReply>(replyTo, {type: 'Failed', jobId: job.jobId, code: err.code ?? 'INFERENCE_FAILED', error: err.message})
            // Crash on purpose: the supervisor disposes the engine and loads the model again.
            if (!REQUEST_FAULTS.has(err.code ?? '')) system.tell<Internal>(ctx.self as ActorRef<Internal>, {type: '$EngineFailed', error: err})
          }).finally(() => {
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
          system.tell(msg.replyTo, {
            phase: 'ready',
            modelPath: init.modelPath,
            running: state.engine.running,
            queued: state.engine.queued,
            completed: state.completed,
            tokensPerSecond: tps.length === 0 ? 0 : tps.reduce((a, b) => a + b, 0) / tps.length,
            determinismClass: state.determinismClass
          })
          return state
        }
        default:
          return assertNever(msg, 'inference message')
      }
    },
    dispose: async (state) => {
      for (const controller of state.running.values()) controller.abort(new Error('inference engine restarting'))
      await state.engine.dispose()
    },
    failMessage: (msg, error) => {
      if (msg.type === 'Run') system.tell<InferenceReply>(msg.replyTo, {type: 'Failed', jobId: msg.job.jobId, code: 'INFERENCE_CRASHED', error: error.message})
    }
  }
}
