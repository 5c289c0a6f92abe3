/**
 * A lying miner for the trust tests: the project's own daemon and miner, with its engine
 * replaced by a rogue one (test/support/rogueEngine.ts).
 * Run: node --import tsx test/support/rogueMiner.ts <behaviour> --config FILE
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {determinismClass} from '../../src/inference/determinismClass.js'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import {buildConfig, readConfigFile} from '../../src/runtime/config.js'
import {runDaemon} from '../../src/runtime/daemon.js'
import {PROJECT_ROOT, STORIES_260K} from '../../src/util/paths.js'
import {ROGUE_BEHAVIOURS, rogueEngine, type RogueBehaviour} from './rogueEngine.js'

const Q4_MODEL_PATH = join(PROJECT_ROOT, '..', 'shared', 'models', 'stories260K-Q4_0.gguf')

const [behaviour, flag, configFile] = process.argv.slice(2)
if (!(ROGUE_BEHAVIOURS as readonly string[]).includes(behaviour ?? '') || flag !== '--config' || configFile == null) {
  process.stderr.write(`usage: rogueMiner.ts <${ROGUE_BEHAVIOURS.join('|')}> --config FILE\n`)
  process.exit(2)
}
const rogue = behaviour as RogueBehaviour
const config = buildConfig([readConfigFile(configFile)])
const password = readFileSync(config.keyPasswordFile ?? '', 'utf8').replace(/\r?\n$/, '')
const onQ4 = rogue === 'swapped' || rogue === 'gpuHonest'
const code = await runDaemon(config, password, {
  openEngine: async (options) => rogueEngine(rogue, await LlamaEngine.load({...options, modelPath: onQ4 ? Q4_MODEL_PATH : options.modelPath}),
    // The swapped model declares the class its F32 peers have (the default); the GPU stand-in another backend of the same model.
    rogue === 'gpuHonest' ? determinismClass(STORIES_260K.sha256, 'cuda') : undefined)
})
process.exit(code)
