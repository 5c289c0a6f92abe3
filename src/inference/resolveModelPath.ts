import {existsSync} from 'node:fs'
import {resolveModelFile} from 'node-llama-cpp'
import type {Logger} from '../util/logger.js'
import {SHARED_MODEL_PATH, STORIES_260K} from '../util/paths.js'
import {InferenceError} from './inferenceError.js'

export interface ResolveModelPathOptions {
  /** Where a downloaded copy is cached (e.g. `<dataDir>/models`); reused on the next start. */
  cacheDirectory: string
  logger: Logger
  signal?: AbortSignal
  /** The copy beside the project; overridable for tests. */
  sharedModelPath?: string
  /** Smallest progress step worth a log line, as a fraction of the file. */
  progressStep?: number
}

/**
 * The devnet model: `../shared/models/stories260K.gguf` when it is there (machines without
 * internet), otherwise node-llama-cpp fetches it once from Hugging Face into the cache
 * directory and later calls find it there without downloading.
 */
export async function resolveModelPath ({cacheDirectory, logger, signal, sharedModelPath = SHARED_MODEL_PATH, progressStep = 0.1}: ResolveModelPathOptions): Promise<string> {
  const log = logger.child({component: 'model-resolve'})
  if (existsSync(sharedModelPath)) {
    log.debug({path: sharedModelPath}, 'using the shared model file')
    return sharedModelPath
  }
  log.info({uri: STORIES_260K.remoteUri, cacheDirectory}, 'shared model file missing; resolving from the remote URI')
  let loggedFraction = 0
  try {
    const path = await resolveModelFile(STORIES_260K.remoteUri, {
      directory: cacheDirectory,
      download: 'auto',
      // cli: false keeps node-llama-cpp's progress bar off stdout; progress goes to the logger.
      cli: false,
      signal,
      onProgress: ({totalSize, downloadedSize}) => {
        const fraction = totalSize > 0 ? downloadedSize / totalSize : 0
        if (fraction - loggedFraction < progressStep && fraction < 1) return
        loggedFraction = fraction
        log.info({downloadedSize, totalSize}, 'model download progress')
      }
    })
    log.info({path}, 'model file resolved')
    return path
  } catch (err) {
    if (signal?.aborted === true) throw err
    throw new InferenceError({code: 'MODEL_UNAVAILABLE', uri: STORIES_260K.remoteUri, directory: cacheDirectory},
      `model not at ${sharedModelPath} and not obtainable from ${STORIES_260K.remoteUri}: ${(err as Error).message}`, {cause: err})
  }
}
