import {spawn, type ChildProcess} from 'node:child_process'
import {accessSync, constants} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {createInterface} from 'node:readline'
import {CortensorError} from '../util/cortensorError.js'
import {createSilentLogger, type Logger} from '../util/logger.js'
import {sleep} from '../util/sleep.js'
import {fetchChainId} from '../chain/fetchChainId.js'

export interface AnvilOptions {
  /**
   * Address to listen on: loopback by default. `0.0.0.0` or a LAN address makes the chain
   * reachable from other hosts, and with it anvil's unauthenticated `anvil_*` methods.
   */
  host?: string
  /** 0 or undefined: a free port chosen by the OS. */
  port?: number
  chainId?: number
  /** Seconds between blocks; undefined = instant mining (each transaction its own block). */
  blockTimeSeconds?: number
  signal?: AbortSignal
  logger?: Logger
  /** How long anvil may take to answer its first RPC call. */
  startTimeoutMs?: number
  /**
   * File the chain is loaded from at start (when it exists) and written to at a clean stop
   * (SIGTERM/SIGINT); none: the chain lives in memory only.
   */
  statePath?: string
  /** Also write `statePath` every this many seconds, so a SIGKILL or a power cut loses little. */
  stateIntervalSeconds?: number
  /**
   * Funded dev accounts from anvil's public test mnemonic (default 1). A chain other hosts can
   * reach should have none: anyone knows their keys.
   */
  devAccounts?: number
}

export interface Anvil {
  /** Where this host reaches the chain (loopback when anvil listens on every interface). */
  rpcUrl: string
  /** The address anvil listens on. */
  host: string
  chainId: number
  port: number
  /** The anvil process (fault tests freeze the chain with SIGSTOP/SIGCONT). */
  pid: number
  /** Resolves when anvil exits, whether stopped or not (a crash, a signal from elsewhere). */
  exited: Promise<{code: number | null, signal: NodeJS.Signals | null}>
  stop: () => Promise<void>
}

export type AnvilErrorCode = 'ANVIL_BINARY_MISSING' | 'ANVIL_START_FAILED' | 'ANVIL_START_TIMEOUT'
export class AnvilError extends CortensorError<{code: AnvilErrorCode, detail?: string}> {}

export const DEVNET_CHAIN_ID = 31337

/** Name of the npm package that carries the anvil binary for this platform. */
export function anvilPackageName (platform: string = process.platform, arch: string = process.arch): string {
  const cpu = arch === 'x64' ? 'amd64' : arch
  return `@foundry-rs/anvil-${platform}-${cpu}`
}

/**
 * Path of the anvil binary inside its platform package (installed as an optional dependency of
 * @foundry-rs/anvil). Nothing is ever downloaded: a missing package is an install problem.
 */
export function locateAnvilBinary (): string {
  const pkg = anvilPackageName()
  let packageDir: string
  try {
    packageDir = dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`))
  } catch (cause) {
    throw new AnvilError({code: 'ANVIL_BINARY_MISSING', detail: pkg},
      `the anvil binary package ${pkg} is not installed (run npm ci; it is an optional dependency of @foundry-rs/anvil)`, {cause})
  }
  const binary = join(packageDir, 'bin', process.platform === 'win32' ? 'anvil.exe' : 'anvil')
  try {
    accessSync(binary, constants.X_OK)
  } catch (cause) {
    throw new AnvilError({code: 'ANVIL_BINARY_MISSING', detail: binary}, `${pkg} is installed but ${binary} is missing or not executable`, {cause})
  }
  return binary
}

/**
 * util-linux's `setpriv` (in every Debian, Ubuntu and Fedora base system) execs anvil with a
 * parent-death signal, so the chain goes down with us even when we are SIGKILLed and no exit
 * hook runs. Without it (macOS), only the exit hook below stops a forgotten anvil.
 */
const SETPRIV = process.platform === 'linux'
  ? ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => { try { accessSync(path, constants.X_OK); return true } catch { return false } })
  : undefined

/** Every anvil this process started, killed if the process exits without stopping them. */
const running = new Set<ChildProcess>()
let exitHookInstalled = false
function killAllOnExit (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL')
  })
}

/**
 * Starts a local anvil chain and resolves once its RPC answers. Port 0 lets the OS pick: anvil
 * prints the port it bound ("Listening on 127.0.0.1:PORT"), which is read back from stdout.
 */
export async function startAnvil (opts: AnvilOptions = {}): Promise<Anvil> {
  opts.signal?.throwIfAborted()
  const log = (opts.logger ?? createSilentLogger()).child({component: 'anvil'})
  const chainId = opts.chainId ?? DEVNET_CHAIN_ID
  const host = opts.host ?? '127.0.0.1'
  const args = ['--host', host, '--port', String(opts.port ?? 0), '--chain-id', String(chainId), '--accounts', String(opts.devAccounts ?? 1)]
  if (opts.blockTimeSeconds !== undefined) args.push('--block-time', String(opts.blockTimeSeconds))
  if (opts.statePath !== undefined) args.push('--state', opts.statePath)
  if (opts.stateIntervalSeconds !== undefined) args.push('--state-interval', String(opts.stateIntervalSeconds))
  const command = [locateAnvilBinary(), ...args]
  const child = spawn(SETPRIV ?? command[0]!, SETPRIV == null ? command.slice(1) : ['--pdeathsig', 'SIGTERM', '--', ...command], {stdio: ['ignore', 'pipe', 'pipe']})
  running.add(child)
  killAllOnExit()

  let exited = false
  const exitedPromise = new Promise<{code: number | null, signal: NodeJS.Signals | null}>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true
      running.delete(child)
      log.debug({code, signal}, 'anvil exited')
      resolve({code, signal})
    })
  })
  // SIGTERM: anvil shuts down cleanly and writes its state file, if it has one.
  const stop = async (): Promise<void> => {
    if (!exited) child.kill('SIGTERM')
    await exitedPromise
  }
  /** anvil's last lines: why it refused to start (a port in use, a bad state file) is in them. */
  const lastLines: string[] = []
  const remember = (line: string): void => {
    if (line.trim() === '') return
    lastLines.push(line.trim())
    if (lastLines.length > 5) lastLines.shift()
  }

  const listening = Promise.withResolvers<number>()
  child.once('error', (err) => listening.reject(new AnvilError({code: 'ANVIL_START_FAILED', detail: err.message}, `anvil failed to start: ${err.message}`, {cause: err})))
  void exitedPromise.then(({code}) => {
    const why = lastLines.findLast(line => /error/i.test(line)) ?? lastLines.at(-1)
    listening.reject(new AnvilError({code: 'ANVIL_START_FAILED', detail: why}, `anvil exited (code ${code}) before listening${why === undefined ? '' : `: ${why}`}`))
  })
  createInterface({input: child.stderr!}).on('line', (line) => {
    remember(line)
    log.warn({line}, 'anvil stderr')
  })
  createInterface({input: child.stdout!}).on('line', (line) => {
    // Never remembered: the banner lists the dev accounts' private keys.
    const match = /Listening on \S*:(\d+)/.exec(line)
    if (match !== null) listening.resolve(Number(match[1]))
    if (line.trim() !== '') log.trace({line}, 'anvil')
  })

  const onAbort = (): void => { void stop() }
  opts.signal?.addEventListener('abort', onAbort, {once: true})
  try {
    const timeoutMs = opts.startTimeoutMs ?? 15_000
    const timer = setTimeout(() => listening.reject(new AnvilError({code: 'ANVIL_START_TIMEOUT'}, `anvil did not listen within ${timeoutMs} ms`)), timeoutMs)
    const port = await listening.promise.finally(() => clearTimeout(timer))
    const rpcUrl = `http://${localHost(host)}:${port}`
    await waitForRpc(rpcUrl, timeoutMs, opts.signal)
    log.info({rpcUrl, host, chainId, pid: child.pid}, 'anvil started')
    return {
      rpcUrl,
      host,
      chainId,
      port,
      pid: child.pid ?? 0,
      exited: exitedPromise,
      stop: async () => {
        opts.signal?.removeEventListener('abort', onAbort)
        await stop()
      }
    }
  } catch (err) {
    opts.signal?.removeEventListener('abort', onAbort)
    await stop()
    throw err
  }
}

/** How this host dials a chain listening on `host`: a wildcard address is reached on loopback. */
function localHost (host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}

async function waitForRpc (rpcUrl: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    signal?.throwIfAborted()
    try {
      await fetchChainId(rpcUrl, signal)
      return
    } catch (err) {
      if (signal?.aborted === true) throw err
    }
    if (Date.now() > deadline) throw new AnvilError({code: 'ANVIL_START_TIMEOUT'}, `anvil at ${rpcUrl} did not answer within ${timeoutMs} ms`)
    await sleep(20, signal)
  }
}
