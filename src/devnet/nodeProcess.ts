import {spawn, type ChildProcess} from 'node:child_process'
import {createWriteStream} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import type {Role} from '../protocols/messages.js'
import {PROJECT_ROOT} from '../util/paths.js'
import {sleep} from '../util/sleep.js'
import {NODE_INFO_FILE} from '../runtime/daemon.js'

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

const CLI = join(PROJECT_ROOT, 'src', 'runtime', 'cli.ts')

/**
 * Starts `cortensord start --config FILE` as its own OS process, on this project's Node (the
 * one running us), logging into `logFile`. The node announces itself through node.json.
 */
export function startNodeProcess (init: {name: string, configFile: string, dataDir: string, logFile: string, env?: Record<string, string>, script?: string[]}): NodeProcess {
  const log = createWriteStream(init.logFile, {flags: 'a'})
  const entry = init.script ?? [CLI, 'start']
  const child = spawn(process.execPath, ['--import', 'tsx', ...entry, '--config', init.configFile], {
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
