import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {arch, platform} from 'node:process'
import {fileURLToPath} from 'node:url'

/**
 * What decides a node's greedy output bit for bit: the model file, the llama.cpp build (the
 * node-llama-cpp release pins it) and the backend it computes on. Nodes of one class produce
 * byte-identical greedy output, so their outputs are compared exactly; across classes (a GPU
 * miner next to a CPU verifier) kernels round differently and only a tolerance check applies.
 */
export interface DeterminismClass {
  /** sha256 of the GGUF file, lowercase hex. */
  modelSha256: string
  /** `node-llama-cpp-<version>`. */
  build: string
  /** `cpu-<platform>-<arch>`, or the GPU API (`cuda`, `vulkan`, `metal`). */
  backend: string
}

const SHA256 = /^[0-9a-f]{64}$/

/** The class as heartbeats and results carry it: `<model sha256>/<build>/<backend>`. */
export function formatDeterminismClass (c: DeterminismClass): string {
  return `${c.modelSha256}/${c.build}/${c.backend}`
}

/** Undefined for a string that is not a class (a result declaring one is refused). */
export function parseDeterminismClass (text: string): DeterminismClass | undefined {
  const [modelSha256, build, backend, ...rest] = text.split('/')
  if (rest.length > 0 || modelSha256 == null || !SHA256.test(modelSha256) || build == null || build === '' || backend == null || backend === '') return undefined
  return {modelSha256, build, backend}
}

/** This process's class for a model: `gpu` is what llama.cpp actually got (false: CPU). */
export function determinismClass (modelSha256: string, gpu: string | false): string {
  // The registry writes it 0x-prefixed; the class names it as bare hex.
  return formatDeterminismClass({modelSha256: modelSha256.toLowerCase().replace(/^0x/, ''), build: `node-llama-cpp-${llamaVersion()}`, backend: gpu === false ? `cpu-${platform}-${arch}` : gpu})
}

let version: string | undefined

/** The node-llama-cpp release this process runs (read once: heartbeats ask for classes every tick). */
function llamaVersion (): string {
  if (version == null) {
    // The package does not export its package.json; its entry point sits in dist/.
    const packageDir = dirname(dirname(fileURLToPath(import.meta.resolve('node-llama-cpp'))))
    version = (JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {version: string}).version
  }
  return version
}
