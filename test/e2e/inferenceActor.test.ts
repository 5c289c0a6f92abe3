import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {ActorSystem} from '../../src/actors/actorSystem.js'
import {inferenceActor} from '../../src/actors/inference/inferenceActor.js'
import type {InferenceJob, InferenceMessage, InferenceReply} from '../../src/actors/inference/messages.js'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import {greedy} from '../../src/protocols/messages.js'
import {restartPolicy} from '../../src/runtime/supervisionTree.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {SHARED_MODEL_PATH} from '../../src/util/paths.js'

const job = (jobId: string): InferenceJob => ({jobId, prompt: 'Once upon a time', seed: 42, params: greedy(12)})

describe('inference actor under supervision (real model)', () => {
  it('reloads a broken engine and answers again, failing the broken run explicitly', async () => {
    const engines: LlamaEngine[] = []
    let fatal: Error | undefined
    const system = new ActorSystem(createSilentLogger(), (err) => { fatal = err })
    const ref = system.spawn(inferenceActor({
      system,
      modelPath: SHARED_MODEL_PATH,
      modelSha256: '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d',
      openEngine: async (modelPath) => {
        const engine = await LlamaEngine.load({modelPath, threads: 1, contextSize: 256, logger: createSilentLogger()})
        engines.push(engine)
        return engine
      }
    }), {...restartPolicy('inference'), backoffMs: {initial: 10, max: 10}})
    const run = async (id: string): Promise<InferenceReply> => await system.ask<InferenceMessage, InferenceReply>(ref, replyTo => ({type: 'Run', job: job(id), replyTo}), 30_000)
    try {
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
      assert.equal(fatal, undefined)
    } finally {
      await system.stop([])
    }
  })
})
