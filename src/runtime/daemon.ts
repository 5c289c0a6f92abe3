import type {NodeConfig} from './config.js'
import {loadKeystore} from './keys.js'
import {startNode, type NodeOverrides, type RunningNode} from './node.js'
import {modelProgressView} from '../model/modelProgress.js'
import {aborted} from '../util/abortable.js'
import {createRootLogger, resolveLogFormat} from '../util/logger.js'
import {ProgressBars} from '../util/progressBar.js'

export {NODE_INFO_FILE} from './node.js'

/**
 * Longest a stop may take from SIGINT/SIGTERM (or a fatal error) to the exit: a supervisor
 * waiting 10 s before SIGKILL sees a clean exit.
 */
export const STOP_DEADLINE_MS = 8_000

/** Socket errors a peer can cause in a library that left the socket without an error listener. */
const PEER_SOCKET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT'])

/**
 * One node's lifecycle: a root AbortController, the node started (`node.ts` composes it from
 * the role's parts), then a wait for SIGINT/SIGTERM (exit 0) or a fatal reason (exit 1, said on
 * stderr), then everything stopped in reverse order of start — within `STOP_DEADLINE_MS`, or
 * the steps still pending are named and left behind. The caller exits the process with the
 * returned code: whatever a stuck step still holds cannot keep it alive.
 */
export async function runDaemon (config: NodeConfig, keyPassword: string, overrides: NodeOverrides = {}): Promise<number> {
  // A person at a terminal sees text lines and a bar per model download; anything else gets JSON lines.
  const bars = resolveLogFormat(config.logFormat, process.stderr) === 'pretty' ? ProgressBars.on(process.stderr) : undefined
  const root = createRootLogger({level: config.logLevel, format: config.logFormat, bindings: {role: config.role}, view: bars === undefined ? undefined : modelProgressView(bars)})
  const key = await loadKeystore(config.keystore, keyPassword)
  const log = root.child({address: key.address})
  const shutdown = new AbortController()
  let fatalReason: string | undefined
  const fail = (reason: string, err: Error): void => {
    if (shutdown.signal.aborted) return
    fatalReason = reason
    log.fatal({err}, reason)
    shutdown.abort(err)
  }
  const onSignal = (signal: string) => () => {
    log.info({signal}, 'shutting down')
    shutdown.abort(new Error(signal))
  }
  // `on`, not `once`: node-llama-cpp, loaded on first use, brings signal-exit (through
  // proper-lockfile), which re-raises a signal to kill the process when it finds itself the
  // signal's only listener: a once-listener, removed as it runs, left it alone (exit by SIGTERM).
  process.on('SIGINT', onSignal('SIGINT'))
  process.on('SIGTERM', onSignal('SIGTERM'))
  // Started by a devnet (through an IPC channel): a devnet that crashes or is SIGKILLed gets no
  // chance to stop its nodes, so each node stops itself when the channel closes. Unref'd, so the
  // channel alone never keeps the node running.
  if (process.channel != null) {
    process.channel.unref()
    process.once('disconnect', onSignal('parent exited'))
  }
  // A peer resetting a socket that a library left without an error listener must not take the
  // node down; anything else uncaught is a bug: stop cleanly, exit 1, say why.
  process.on('uncaughtException', (err: NodeJS.ErrnoException) => {
    if (err.code != null && PEER_SOCKET_ERRORS.has(err.code)) {
      log.warn({err}, 'peer socket error escaped its library; ignored')
      return
    }
    fail(`uncaught exception: ${err.message}`, err)
  })

  let node: RunningNode | undefined
  // Set from inside `lifecycle`; the cast keeps TypeScript from narrowing it to 'starting' here.
  let step = 'starting' as 'starting' | 'running' | 'stopping'
  const lifecycle = (async () => {
    try {
      node = await startNode({config, key, log, signal: shutdown.signal, fail, ...overrides})
      step = 'running'
      await aborted(shutdown.signal)
    } catch (err) {
      // Interrupted while starting: a clean stop, not a failure.
      if (!shutdown.signal.aborted) {
        fatalReason ??= (err as Error).message
        log.fatal({err}, 'node failed')
        shutdown.abort(err)
      }
    } finally {
      step = 'stopping'
      await node?.stop()
    }
  })()
  // Whatever is in flight, a stop ends within STOP_DEADLINE_MS of its start: what must survive
  // is written synchronously before then, so an abandoned cleanup loses nothing.
  const deadline = stopDeadline(shutdown.signal, STOP_DEADLINE_MS)
  const outcome = await Promise.race([lifecycle.then(() => 'stopped' as const), deadline.passed])
  deadline.cancel()
  if (outcome === 'deadline') {
    log.error({pending: step === 'stopping' ? 'node.stop' : 'node start', deadlineMs: STOP_DEADLINE_MS},
      `stop deadline passed with the ${step === 'stopping' ? 'node\'s cleanups' : 'start-up'} still pending; exiting anyway`)
  }
  bars?.stop()
  if (fatalReason != null) process.stderr.write(`cortensord: stopped: ${fatalReason}\n`)
  return fatalReason == null ? 0 : 1
}

/**
 * Resolves `passed` with 'deadline' `ms` after `signal` aborts; `cancel` clears the timer (the
 * caller's exit must not wait for it).
 */
function stopDeadline (signal: AbortSignal, ms: number): {passed: Promise<'deadline'>, cancel: () => void} {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const passed = new Promise<'deadline'>(resolve => {
    onAbort = () => { timer = setTimeout(() => { resolve('deadline') }, ms) }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, {once: true})
  })
  return {
    passed,
    cancel: () => {
      clearTimeout(timer)
      if (onAbort != null) signal.removeEventListener('abort', onAbort)
    }
  }
}
