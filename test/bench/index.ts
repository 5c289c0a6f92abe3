// Runs the benchmarks one after another, each in its own process (they measure; they do not
// pass or fail). `npm run bench` runs all; `npm run bench -- gas roundTrip` runs those named.
import {spawnSync} from 'node:child_process'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const BENCHES = ['gas', 'inference', 'gossip', 'ipfs', 'nodeCost', 'roundTrip', 'gateway', 'taskRate', 'faults', 'verify', 'verifiedStream', 'cliStart'] as const
const here = dirname(fileURLToPath(import.meta.url))
const wanted = process.argv.slice(2)
const unknown = wanted.filter(w => !(BENCHES as readonly string[]).includes(w))
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHES.join(', ')}\n`)
  process.exit(2)
}
let failed = 0
for (const name of wanted.length > 0 ? wanted : BENCHES) {
  process.stdout.write(`\n## ${name}  (npx tsx test/bench/${name}.ts)\n\n`)
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(here, `${name}.ts`)], {stdio: 'inherit'})
  if (run.status !== 0) failed++
}
process.exit(failed === 0 ? 0 : 1)
