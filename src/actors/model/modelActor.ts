import type {ModelId} from '../../protocols/modelId.js'
import type {ModelDescriptor} from '../../model/modelDescriptor.js'
import {MODEL_PROGRESS_MESSAGE, type ModelProgress} from '../../model/modelProgress.js'
import type {ModelStore} from '../../model/modelStore.js'
import {assertNever} from '../../util/assertNever.js'
import {sleep} from '../../util/sleep.js'
import type {ActorDefinition, ActorRef, ActorSystem} from '../actorSystem.js'
import {ChainClient} from '../chain/chainClient.js'
import type {ChainMessage} from '../chain/messages.js'
import type {EnsureReply, ModelMessage, ModelStatus} from './messages.js'

export interface ModelActorInit {
  system: ActorSystem
  chain: ActorRef<ChainMessage>
  openStore: () => Promise<ModelStore>
}

/** Fetch failures worth another attempt (a hash mismatch is not: the bytes are wrong). */
const RETRYABLE_FETCH_ERRORS: ReadonlySet<string> = new Set(['FETCH_STALLED', 'FETCH_FAILED'])
const FETCH_ATTEMPTS = 5
const FETCH_RETRY_DELAY_MS = 1_000

type Internal =
  | {type: '$Progress', modelId: ModelId, progress: ModelProgress}
  | {type: '$Done', reply: EnsureReply}

interface ModelState {
  store: ModelStore
  statuses: Map<ModelId, ModelStatus>
  controller: AbortController
}

/**
 * Owns the model store (helia blocks + model files): resolves a model id on chain, seeds a
 * local copy or fetches it over bitswap with progress, and hands out only verified files.
 * The work runs beside the mailbox, so status queries answer during a long download.
 */
export function modelActor (init: ModelActorInit): ActorDefinition<ModelState, ModelMessage | Internal> {
  const {system} = init
  const chain = new ChainClient(system, init.chain)
  return {
    name: 'model',
    init: async () => ({store: await init.openStore(), statuses: new Map(), controller: new AbortController()}),
    receive: (state, msg, ctx) => {
      const self = ctx.self as ActorRef<Internal>
      switch (msg.type) {
        case 'Ensure': {
          state.statuses.set(msg.modelId, {modelId: msg.modelId, phase: 'resolving'})
          const signal = state.controller.signal
          const onProgress = (event: {detail: ModelProgress}): void => { system.tell(self, {type: '$Progress', modelId: msg.modelId, progress: event.detail}) }
          const work = async (): Promise<EnsureReply> => {
            const read = await chain.read({contract: 'modelRegistry', functionName: 'modelOf', args: [BigInt(msg.modelId)]})
            if (read.type !== 'Value') return {type: 'Failed', modelId: msg.modelId, code: 'REGISTRY_UNREADABLE', error: read.error}
            const model = read.value
            if (!model.active) return {type: 'Failed', modelId: msg.modelId, code: 'MODEL_INACTIVE', error: `model ${msg.modelId} (${model.name}) is deactivated in the registry`}
            const descriptor: ModelDescriptor = {id: msg.modelId, name: model.name, cid: model.cid, sha256: model.sha256Digest, sizeBytes: Number(model.sizeBytes), quantization: model.quantization}
            if (msg.localFile != null) {
              const added = await state.store.addFile(msg.localFile, {signal, onProgress})
              if (added.cid !== descriptor.cid || `0x${added.sha256}` !== descriptor.sha256.toLowerCase()) {
                return {type: 'Failed', modelId: msg.modelId, code: 'LOCAL_FILE_MISMATCH', error: `local model file ${msg.localFile} (cid ${added.cid}, sha256 ${added.sha256}) is not the registry's model ${msg.modelId} (cid ${descriptor.cid}, sha256 ${descriptor.sha256})`}
              }
              return {type: 'Ready', modelId: msg.modelId, path: msg.localFile, descriptor, networkBytes: 0}
            }
            // A stalled or broken transfer is tried again: blocks already received stay in the
            // blockstore, so each attempt resumes, and new wants go out to every connected peer.
            for (let attempt = 1; ; attempt++) {
              try {
                const file = await state.store.ensureModel(descriptor, {signal, onProgress})
                return {type: 'Ready', modelId: msg.modelId, path: file.path, descriptor, networkBytes: file.networkBytes}
              } catch (err) {
                const code = (err as {code?: string}).code ?? ''
                if (!RETRYABLE_FETCH_ERRORS.has(code) || attempt >= FETCH_ATTEMPTS) throw err
                ctx.log.warn({attempt, code, err: (err as Error).message}, 'model fetch interrupted; resuming')
                await sleep(FETCH_RETRY_DELAY_MS * attempt, signal)
              }
            }
          }
          work().then(
            reply => { system.tell(self, {type: '$Done', reply}); system.tell(msg.replyTo, reply) },
            (err: Error & {code?: string}) => {
              const reply: EnsureReply = {type: 'Failed', modelId: msg.modelId, code: err.code ?? 'MODEL_FAILED', error: err.message}
              system.tell(self, {type: '$Done', reply})
              system.tell(msg.replyTo, reply)
            })
          return state
        }
        case '$Progress': {
          const phase = msg.progress.phase === 'import' ? 'importing' : msg.progress.phase === 'fetch' ? 'fetching' : 'verifying'
          state.statuses.set(msg.modelId, {modelId: msg.modelId, phase, progress: msg.progress})
          ctx.log.info({modelId: msg.modelId, phase, bytes: msg.progress.bytes, total: msg.progress.total, rate: Math.round(msg.progress.rate)}, MODEL_PROGRESS_MESSAGE)
          return state
        }
        case '$Done': {
          const {reply} = msg
          const last = state.statuses.get(reply.modelId)
          state.statuses.set(reply.modelId, reply.type === 'Ready'
            ? {modelId: reply.modelId, phase: 'ready', progress: last?.progress, path: reply.path}
            : {modelId: reply.modelId, phase: 'failed', progress: last?.progress, error: `${reply.code}: ${reply.error}`})
          if (reply.type === 'Ready') ctx.log.info({modelId: reply.modelId, path: reply.path, networkBytes: reply.networkBytes}, 'model file ready')
          else ctx.log.error({modelId: reply.modelId, code: reply.code, error: reply.error}, 'model unavailable')
          return state
        }
        case 'GetStatus':
          system.tell(msg.replyTo, structuredClone([...state.statuses.values()]))
          return state
        default:
          return assertNever(msg, 'model message')
      }
    },
    dispose: (state) => { state.controller.abort(new Error('model actor stopping')) },
    failMessage: (msg, error) => {
      if (msg.type === 'Ensure') system.tell(msg.replyTo, {type: 'Failed', modelId: msg.modelId, code: 'MODEL_ACTOR_CRASHED', error: error.message})
    }
  }
}
