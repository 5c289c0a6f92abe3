import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {InferenceError} from '../../src/inference/inferenceError.js'
import {resolveModelPath} from '../../src/inference/resolveModelPath.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {SHARED_MODEL_PATH, sharedModelAvailable} from '../../src/util/paths.js'

describe('resolveModelPath', () => {
  it('prefers the shared model file', {skip: !sharedModelAvailable() && 'shared model missing'}, async () => {
    assert.equal(await resolveModelPath({cacheDirectory: '/nonexistent', logger: createSilentLogger()}), SHARED_MODEL_PATH)
  })

  // Without the shared file it goes to the remote URI; an aborted signal keeps this test off the network.
  it('falls back to the remote URI, honouring the signal', async () => {
    const cacheDirectory = await mkdtemp(join(tmpdir(), 'cortensord-models-'))
    try {
      const outcome = resolveModelPath({cacheDirectory, logger: createSilentLogger(), sharedModelPath: join(cacheDirectory, 'missing.gguf'), signal: AbortSignal.abort(new Error('offline test'))})
      // An abort is the caller's decision, so its reason comes back as is rather than as MODEL_UNAVAILABLE.
      await assert.rejects(outcome, (err: unknown) => !(err instanceof InferenceError) && (err as Error).message === 'offline test')
    } finally {
      await rm(cacheDirectory, {recursive: true, force: true})
    }
  })
})
