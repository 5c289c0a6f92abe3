import {execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {createWriteStream} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import type {Role} from '../protocols/messages.js'
import {PROJECT_ROOT} from '../util/paths.js'
import {sleep} from '../util/sleep.js'
import {NODE_INFO_FILE} from '../runtime/daemon.js'
import {NODE_FLAGS} from '../runtime/nodeFlags.js'

export interface NodeInfo {
  pid: number
  role: Role
  address: string
  peerId: string
  addrs: string[]
  api: string
}

export interface NodeProcess {
  name: string
  child: ChildProcess
  dataDir: string
  logFile: string
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>
  /** Resolves once the node wrote its node.json; rejects if it exits first. */
  ready: Promise<NodeInfo>
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop: (graceMs?: number) => Promise<number | string>
  kill: () => void
}

/** The compiled command line (`npm run build`): a node starts without transpiling anything. */
const CLI = join(PROJECT_ROOT, 'dist', 'runtime', 'cli.js')
const BUILD_SCRIPT = join(PROJECT_ROOT, 'scripts', 'build.mjs')

/** Whether this process has brought dist/ up to date with src/ (see `ensureCompiled`). */
let compiled = false

/**
 * A devnet started from the TypeScript sources (the tests, through tsx) compiles them before its
 * first node, once per process: a test run after an edit never starts yesterday's JavaScript.
 * Started from dist/ itself (`npm run demo`, which builds first), there is nothing to do.
 */
function ensureCompiled (): void {
  if (compiled) return
  if (import.meta.url.endsWith('.ts')) execFileSync(process.execPath, [BUILD_SCRIPT], {cwd: PROJECT_ROOT, stdio: ['ignore', 'inherit', 'inherit']})
  compiled = true
}

/**
 * Starts `cortensord start --config FILE` as its own OS process, on this project's Node (the
 * one running us) under `NODE_FLAGS`, from the compiled dist/, logging into `logFile`. The
 * node announces itself through node.json. A custom `script` (a test's stand-in node, a .ts
 * file) runs through tsx.
 */
export function startNodeProcess (init: {name: string, configFile: string, dataDir: string, logFile: string, env?: Record<string, string>, script?: string[]}): NodeProcess {
  if (init.script == null) ensureCompiled()
  const log = createWriteStream(init.logFile, {flags: 'a'})
  const entry = init.script == null ? [CLI, 'start'] : ['--import', 'tsx', ...init.script]
  const child = spawn(process.execPath, [...NODE_FLAGS, ...entry, '--config', init.configFile], {
    cwd: PROJECT_ROOT,
    env: {...process.env, ...init.env},
    // The IPC channel is the node's lifeline: it closes when this process dies, however it dies.
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  })
  child.stdout?.pipe(log, {end: false})
  child.stderr?.pipe(log, {end: false})
  const exited = new Promise<number | string>(resolve => {
    child.once('exit', (code, signal) => {
      log.end()
      resolve(code ?? signal ?? 'unknown')
    })
  })
  let done = false
  void exited.then(() => { done = true })
  const ready = (async () => {
    const file = join(init.dataDir, NODE_INFO_FILE)
    while (!done) {
      const text = await readFile(file, 'utf8').catch(() => undefined)
      if (text != null) {
        const info = JSON.parse(text) as NodeInfo
        if (info.pid === child.pid) return info
      }
      await sleep(100)
    }
    throw new Error(`${init.name} exited (${String(await exited)}) before it was up; see ${init.logFile}`)
  })()
  ready.catch(() => {})
  return {
    name: init.name,
    child,
    dataDir: init.dataDir,
    logFile: init.logFile,
    exited,
    ready,
    kill: () => { if (!done) child.kill('SIGKILL') },
    stop: async (graceMs = 10_000) => {
      if (!done) child.kill('SIGTERM')
      const timer = setTimeout(() => { if (!done) child.kill('SIGKILL') }, graceMs)
      const code = await exited
      clearTimeout(timer)
      return code
    }
  }
}
