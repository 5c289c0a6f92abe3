/**
 * A miner whose clock runs `offsetMs` ahead (a host without NTP): the project's own daemon with
 * `Date.now` shifted. Oracles ignore its heartbeats as from the future, while it still takes
 * theirs (not yet stale by its clock): the "oracles do not hear me" case.
 * Run: node --import tsx test/support/skewedMiner.ts <offsetMs> --config FILE
 */
import {readFileSync} from 'node:fs'
import {buildConfig, readConfigFile} from '../../src/runtime/config.js'
import {runDaemon} from '../../src/runtime/daemon.js'

const [offset, flag, configFile] = process.argv.slice(2)
const offsetMs = Number(offset)
if (!Number.isSafeInteger(offsetMs) || flag !== '--config' || configFile == null) {
  process.stderr.write('usage: skewedMiner.ts <offsetMs> --config FILE\n')
  process.exit(2)
}
const realNow = Date.now.bind(Date)
Date.now = () => realNow() + offsetMs
const config = buildConfig([readConfigFile(configFile)])
const password = readFileSync(config.keyPasswordFile ?? '', 'utf8').replace(/\r?\n$/, '')
process.exit(await runDaemon(config, password, {}))
