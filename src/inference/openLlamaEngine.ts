import type {LlamaEngine, LlamaEngineOptions} from './llamaEngine.js'
import type {PromptTools} from './promptTools.js'
import type {Logger} from '../util/logger.js'

/*
 * node-llama-cpp (≈300 modules with its download and CLI helpers, its native addon, and a test
 * of that addon in a child process) is loaded by the first model a process opens, not when the
 * process starts: a node is up (API, gossip, chain) before its models have arrived, and a
 * process that never opens one (an oracle verifying through validators without model files,
 * the operator commands) never loads it.
 */

/** `LlamaEngine.load`, importing the engine on first use. */
export async function openLlamaEngine (options: LlamaEngineOptions): Promise<LlamaEngine> {
  const {LlamaEngine} = await import('./llamaEngine.js')
  return await LlamaEngine.load(options)
}

/** `PromptTools.load`, importing the tools on first use. */
export async function loadPromptTools (init: {modelPath: string, logger: Logger}): Promise<PromptTools> {
  const {PromptTools} = await import('./promptTools.js')
  return await PromptTools.load(init)
}
