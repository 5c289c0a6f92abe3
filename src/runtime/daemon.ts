import type {NodeConfig} from './config.js'
import {loadKeystore} from './keys.js'
import {startNode, type RunningNode} from './node.js'
import {aborted} from '../util/abortable.js'
import {createRootLogger} from '../util/logger.js'

export {NODE_INFO_FILE} from './node.js'

/** Socket errors a peer can cause in a library that left the socket without an error listener. */
const PEER_SOCKET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT'])

/**
 * One node's lifecycle: a root AbortController, the node started (`node.ts` composes it from
 * the role's parts), then a wait for SIGINT/SIGTERM (exit 0) or a fatal reason (exit 1, said on
 * stderr), then everything stopped in reverse order of start.
 */
export async function runDaemon (config: NodeConfig, keyPassword: string): Promise<number> {
  const root = createRootLogger({level: config.logLevel, bindings: {role: config.role}})
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
  process.once('SIGINT', onSignal('SIGINT'))
  process.once('SIGTERM', onSignal('SIGTERM'))
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
  try {
    node = await startNode({config, key, log, signal: shutdown.signal, fail})
    await aborted(shutdown.signal)
  } catch (err) {
    // Interrupted while starting: a clean stop, not a failure.
    if (!shutdown.signal.aborted) {
      fatalReason ??= (err as Error).message
      log.fatal({err}, 'node failed')
    }
  } finally {
    await node?.stop()
  }
  if (fatalReason != null) process.stderr.write(`cortensord: stopped: ${fatalReason}\n`)
  return fatalReason == null ? 0 : 1
}
