/**
 * An honest but slow miner for the earning tests: the project's own daemon and miner, its engine
 * waiting `delayMs` before each completion (a slower machine), so faster miners take the
 * competing slots first.
 * Run: node --import tsx test/support/slowMiner.ts <delayMs> --config FILE
 */
import {readFileSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import type {InferenceEngine} from '../../src/inference/inferenceEngine.js'
import {buildConfig, readConfigFile} from '../../src/runtime/config.js'
import {runDaemon} from '../../src/runtime/daemon.js'

const [delay, flag, configFile] = process.argv.slice(2)
const delayMs = Number(delay)
if (!Number.isSafeInteger(delayMs) || delayMs < 0 || flag !== '--config' || configFile == null) {
  process.stderr.write('usage: slowMiner.ts <delayMs> --config FILE\n')
  process.exit(2)
}
const config = buildConfig([readConfigFile(configFile)])
const password = readFileSync(config.keyPasswordFile ?? '', 'utf8').replace(/\r?\n$/, '')
const code = await runDaemon(config, password, {
  openEngine: async (options): Promise<InferenceEngine> => {
    const real = await LlamaEngine.load(options)
    return {
      get info () { return real.info },
      get running () { return real.running },
      get queued () { return real.queued },
      complete: async (request, opts) => {
        await sleep(delayMs, undefined, {signal: opts?.signal})
        return await real.complete(request, opts)
      },
      dispose: async () => { await real.dispose() }
    }
  }
})
process.exit(code)
