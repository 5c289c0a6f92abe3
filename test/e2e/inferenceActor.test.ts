import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {ActorSystem} from '../../src/actors/actorSystem.js'
import {inferenceActor} from '../../src/actors/inference/inferenceActor.js'
import type {AddModelReply, InferenceJob, InferenceMessage, InferenceReply, InferenceStatus} from '../../src/actors/inference/messages.js'
import type {PooledModel} from '../../src/inference/enginePool.js'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import {greedy} from '../../src/protocols/messages.js'
import {toModelId, type ModelId} from '../../src/protocols/modelId.js'
import {restartPolicy} from '../../src/runtime/supervisionTree.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {SHARED_MODEL_PATH, SHARED_Q4_MODEL_PATH, STORIES_260K, STORIES_260K_Q4} from '../../src/util/paths.js'

const F32: PooledModel = {id: toModelId(1), path: SHARED_MODEL_PATH, sha256: STORIES_260K.sha256, sizeBytes: STORIES_260K.sizeBytes}
const Q4: PooledModel = {id: toModelId(2), path: SHARED_Q4_MODEL_PATH, sha256: STORIES_260K_Q4.sha256, sizeBytes: STORIES_260K_Q4.sizeBytes}
const job = (jobId: string, modelId: ModelId = F32.id): InferenceJob => ({jobId, modelId, prompt: 'Once upon a time', seed: 42, params: greedy(12)})

/** An inference actor on real engines (one thread each), with the engines it opened. */
function start (budgetBytes: number): {system: ActorSystem, ref: ReturnType<ActorSystem['spawn']>, engines: LlamaEngine[], fatal: () => Error | undefined} {
  const engines: LlamaEngine[] = []
  let fatal: Error | undefined
  const system = new ActorSystem(createSilentLogger(), (err) => { fatal = err })
  const ref = system.spawn(inferenceActor({
    system,
    budgetBytes,
    openEngine: async (modelPath) => {
      const engine = await LlamaEngine.load({modelPath, threads: 1, contextSize: 256, logger: createSilentLogger()})
      engines.push(engine)
      return engine
    }
  }), {...restartPolicy('inference'), backoffMs: {initial: 10, max: 10}})
  return {system, ref, engines, fatal: () => fatal}
}

describe('inference actor under supervision (real models)', () => {
  it('reloads a broken engine and answers again, failing the broken run explicitly', async () => {
    const {system, ref, engines, fatal} = start(64 * 1024 * 1024)
    const run = async (id: string): Promise<InferenceReply> => await system.ask<InferenceMessage, InferenceReply>(ref, replyTo => ({type: 'Run', job: job(id), replyTo}), 30_000)
    try {
      const added = await system.ask<InferenceMessage, AddModelReply>(ref, replyTo => ({type: 'AddModel', model: F32, replyTo}), 30_000)
      assert.deepEqual(added, {type: 'Added', modelId: F32.id, loaded: true})
      const first = await run('a')
      assert.equal(first.type, 'Completed')
      // The native side goes away under the actor (what a llama.cpp failure looks like to it).
      await engines[0]?.dispose()
      const broken = await run('b')
      assert.equal(broken.type, 'Failed')
      assert.equal(broken.type === 'Failed' ? broken.code : '', 'ENGINE_DISPOSED')
      const after = await run('c')
      assert.equal(after.type, 'Completed', 'the restarted actor loaded a fresh engine')
      assert.equal(engines.length, 2)
      assert.equal(after.type === 'Completed' && first.type === 'Completed' ? after.outcome.text : '', first.type === 'Completed' ? first.outcome.text : 'x')
      assert.equal(fatal(), undefined)
    } finally {
      await system.stop([])
    }
  })

  it('serves two models within a budget that holds one: loads on demand, unloads the least recently used', async () => {
    // Room for the F32 file (1.13 MiB) or the Q4 one (0.35 MiB), not both.
    const {system, ref, engines, fatal} = start(F32.sizeBytes + 100_000)
    const run = async (id: string, modelId: ModelId): Promise<InferenceReply> => await system.ask<InferenceMessage, InferenceReply>(ref, replyTo => ({type: 'Run', job: job(id, modelId), replyTo}), 30_000)
    const status = async (): Promise<InferenceStatus> => await system.ask<InferenceMessage, InferenceStatus>(ref, replyTo => ({type: 'GetStatus', replyTo}), 5_000)
    const loaded = async (): Promise<string[]> => (await status()).models.filter(m => m.loaded).map(m => m.id)
    try {
      assert.deepEqual(await system.ask<InferenceMessage, AddModelReply>(ref, replyTo => ({type: 'AddModel', model: F32, replyTo}), 30_000), {type: 'Added', modelId: F32.id, loaded: true})
      assert.deepEqual(await system.ask<InferenceMessage, AddModelReply>(ref, replyTo => ({type: 'AddModel', model: Q4, replyTo}), 30_000), {type: 'Added', modelId: Q4.id, loaded: false},
        'the second model does not fit beside the first: it waits for its first task')
      const tooBig: PooledModel = {...F32, id: toModelId(3), sizeBytes: 10 * F32.sizeBytes}
      const refused = await system.ask<InferenceMessage, AddModelReply>(ref, replyTo => ({type: 'AddModel', model: tooBig, replyTo}), 30_000)
      assert.equal(refused.type === 'Failed' ? refused.code : refused.type, 'MODEL_TOO_LARGE')

      const f32 = await run('a', F32.id)
      assert.deepEqual(await loaded(), [F32.id])
      const q4 = await run('b', Q4.id)
      assert.deepEqual(await loaded(), [Q4.id], 'F32 was unloaded to make room for Q4')
      const f32Again = await run('c', F32.id)
      assert.deepEqual(await loaded(), [F32.id])
      assert.equal(engines.length, 3, 'one load per switch')

      assert.ok(f32.type === 'Completed' && q4.type === 'Completed' && f32Again.type === 'Completed')
      assert.equal(f32Again.outcome.text, f32.outcome.text, 'a reloaded model answers as before')
      assert.notEqual(q4.outcome.determinismClass, f32.outcome.determinismClass, 'each model computes in its own class (its file is part of it)')
      assert.ok(q4.outcome.determinismClass.startsWith(STORIES_260K_Q4.sha256))
      const classes = new Map((await status()).models.map(m => [m.id, m.determinismClass]))
      assert.equal(classes.get(Q4.id), q4.outcome.determinismClass, 'an unloaded model keeps its class in the status (the heartbeat)')

      const unknown = await run('d', toModelId(9))
      assert.equal(unknown.type === 'Failed' ? unknown.code : unknown.type, 'MODEL_NOT_SERVED')
      assert.equal(fatal(), undefined, 'a task for a model not served is the task\'s fault, not the engine\'s')
    } finally {
      await system.stop([])
    }
  })
})
