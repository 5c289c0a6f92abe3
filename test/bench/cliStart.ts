/**
 * What one command-line run costs (not pass/fail): the compiled `cortensord` (dist/, built
 * first), each command run N times in a row, wall time from spawn to exit (median, max) and the
 * peak resident memory of the process (from /usr/bin/time where it exists). `status` against a
 * port nothing listens on is what a health check pays when it fails fast; `--help` is the floor.
 * Run: npx tsx test/bench/cliStart.ts [--runs 10]
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {PROJECT_ROOT} from '../../src/util/paths.js'

const {values: args} = parseArgs({options: {runs: {type: 'string', default: '10'}}})
const RUNS = Number(args.runs)
const CLI = join(PROJECT_ROOT, 'dist', 'runtime', 'cli.js')
const TIME = '/usr/bin/time'

execFileSync(process.execPath, [join(PROJECT_ROOT, 'scripts', 'build.mjs')], {cwd: PROJECT_ROOT, stdio: ['ignore', 'inherit', 'inherit']})

const COMMANDS: Array<{name: string, argv: string[]}> = [
  {name: '--help', argv: ['--help']},
  {name: 'status (node unreachable)', argv: ['status', '--api', 'http://127.0.0.1:9']}
]

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN

console.log(`| command | runs | wall median (ms) | wall max (ms) | peak RSS median (MiB) |`)
console.log('| --- | --- | --- | --- | --- |')
for (const {name, argv} of COMMANDS) {
  const walls: number[] = []
  const rss: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now()
    const run = existsSync(TIME)
      ? spawnSync(TIME, ['-f', '%M', process.execPath, CLI, ...argv], {encoding: 'utf8'})
      : spawnSync(process.execPath, [CLI, ...argv], {encoding: 'utf8'})
    walls.push(performance.now() - t0)
    const kb = Number(/(\d+)\s*$/.exec(run.stderr)?.[1])
    if (existsSync(TIME) && Number.isFinite(kb)) rss.push(kb / 1024)
  }
  console.log(`| ${name} | ${RUNS} | ${median(walls).toFixed(0)} | ${Math.max(...walls).toFixed(0)} | ${rss.length === 0 ? 'n/a' : median(rss).toFixed(0)} |`)
}
