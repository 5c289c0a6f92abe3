import {existsSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

/** Root of the project checkout (the folder holding package.json). */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** The test and devnet model shipped beside the project (see ../shared/models/README.md). */
export const SHARED_MODEL_PATH = resolve(PROJECT_ROOT, '..', 'shared', 'models', 'stories260K.gguf')

/** Facts about stories260K from ../shared/models/README.md, checked on every load. */
export const STORIES_260K = {
  name: 'stories260K',
  fileName: 'stories260K.gguf',
  sizeBytes: 1_185_376,
  sha256: '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d',
  quantization: 'F32',
  remoteUri: 'hf:ggml-org/models/tinyllamas/stories260K.gguf'
} as const

/** The same model with its weights quantized to 4 bits (Q4_0): the devnet's and tests' second model, the format family the reference network mines with. */
export const SHARED_Q4_MODEL_PATH = resolve(PROJECT_ROOT, '..', 'shared', 'models', 'stories260K-Q4_0.gguf')

/** Facts about stories260K-Q4_0 from ../shared/models/README.md. */
export const STORIES_260K_Q4 = {
  name: 'stories260K-Q4_0',
  fileName: 'stories260K-Q4_0.gguf',
  sizeBytes: 370_688,
  sha256: '50a54f93375c73f8879abd20a6d6cb1eb60f36c64c629ef69056eb8294696eed',
  quantization: 'Q4_0'
} as const

export function sharedModelAvailable (): boolean {
  return existsSync(SHARED_MODEL_PATH)
}
