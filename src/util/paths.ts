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

export function sharedModelAvailable (): boolean {
  return existsSync(SHARED_MODEL_PATH)
}
