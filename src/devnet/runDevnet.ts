import {setTimeout as delay} from 'node:timers/promises'
import {createRootLogger} from '../util/logger.js'
import {defaultDevnetDir, startDevnet, type Devnet, type DevnetNode} from './devnet.js'
import {runDemo} from './devnetDemo.js'

export interface RunDevnetOptions {
  miners: number
  /** Validator nodes (0: the oracle verifies in process). */
  validators?: number
  demo: boolean
  dir?: string
  logLevel: string
  /** Redraw the node table in place (a terminal) instead of printing it when it changes (CI, pipes). */
  interactive: boolean
}

interface NodeStatus {
  models?: Array<{modelId: string, phase: string, progress?: {bytes: number, total: number}}>
  mining?: {completed: number, active: number}
  validator?: {verifications: {served: number}}
  stats?: {chainPings: number}
  admitted?: boolean
  peers?: number
}

/** Time allowed for every miner to fetch, verify and load the models and ping NodeStats (validators: load them and ping). */
const READY_TIMEOUT_MS = 5 * 60_000

/** `cortensord devnet`: start the network, show it live, optionally run the demo and stop. */
export async function runDevnet (opts: RunDevnetOptions): Promise<number> {
  const out = (line: string): void => { process.stdout.write(`${line}\n`) }
  const started = Date.now()
  const stamp = (): string => `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s]`
  const controller = new AbortController()
  let interrupted = false
  // Ctrl-C reaches the whole process group, often twice (npm, tsx): stop once, cleanly.
  const onSignal = (): void => {
    if (interrupted) return
    interrupted = true
    out(`${stamp()} interrupted: stopping every node`)
    controller.abort(new Error('interrupted'))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  const dir = opts.dir ?? defaultDevnetDir()
  const validators = opts.validators ?? 0
  const validatorsText = validators > 0 ? ` + ${validators} validators` : ''
  out(`${stamp()} devnet: 1 oracle + ${opts.miners} miners${validatorsText} in ${dir} (node logs: ${dir}/<node>.log)`)
  let devnet: Devnet | undefined
  try {
    devnet = await startDevnet({
      miners: opts.miners, validators, dir, logLevel: opts.logLevel, signal: controller.signal,
      logger: createRootLogger({level: 'warn'}),
      onProgress: line => { out(`${stamp()} ${line}`) }
    })
    const net = devnet
    out(`${stamp()} oracle API ${net.apiUrl}, bearer token ${net.apiToken} (dashboard: ${net.apiUrl}/#token=${net.apiToken})`)
    out(`${stamp()} all ${opts.miners + validators + 1} processes up; waiting for miners to fetch the models over IPFS, verify them and ping NodeStats`)
    const ready = await watchUntilReady(net, controller.signal, out, stamp)
    if (!ready) {
      out(`${stamp()} miners${validators > 0 ? ' or validators' : ''} did not become ready within ${READY_TIMEOUT_MS / 1000} s`)
      return interrupted ? 130 : 1
    }
    out(`${stamp()} network ready: ${opts.miners} miners mining models ${net.modelIds.join(', ')}${validators > 0 ? `, ${validators} validators checking their outputs` : ''}`)
    if (opts.demo) {
      const ok = await runDemo({apiUrl: net.apiUrl, apiToken: net.apiToken, miners: opts.miners, out, signal: controller.signal})
      out(`${stamp()} demo ${ok ? 'finished' : 'FAILED'}; stopping the network`)
      return ok ? 0 : 1
    }
    out(`${stamp()} try: npx cortensord ask --api ${net.apiUrl} --token ${net.apiToken} "Once upon a time"`)
    out(`${stamp()}  or: curl -s -H 'authorization: Bearer ${net.apiToken}' ${net.apiUrl}/v1/completions -d '{"prompt":"Once upon a time","max_tokens":32}'`)
    out('press Ctrl-C to stop')
    await showLive(net, opts, controller.signal, out)
    return 130
  } catch (err) {
    if (interrupted) return 130
    throw err
  } finally {
    if (devnet != null) {
      await devnet.stop()
      out(`${stamp()} all processes stopped`)
    }
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

async function fetchStatus (node: DevnetNode, token: string): Promise<NodeStatus | undefined> {
  try {
    const res = await fetch(`${node.info.api}/api/v1/status`, {headers: {authorization: `Bearer ${token}`}, signal: AbortSignal.timeout(2_000)})
    return res.ok ? await res.json() as NodeStatus : undefined
  } catch {
    return undefined
  }
}

async function oracleReadyMiners (net: Devnet): Promise<Set<string>> {
  try {
    const res = await fetch(`${net.apiUrl}/api/v1/miners`, {headers: {authorization: `Bearer ${net.apiToken}`}, signal: AbortSignal.timeout(2_000)})
    if (!res.ok) return new Set()
    // Addresses and model ids come as the node writes them everywhere (`toAddress`, decimal ids).
    const {miners} = await res.json() as {miners: Array<{address: string, models: Array<{id: string}>}>}
    return new Set(miners.filter(m => net.modelIds.every(id => m.models.some(s => s.id === id))).map(m => m.address))
  } catch {
    return new Set()
  }
}

/** One word per model, in the node's order: `ready`, `fetching 40%`, ... */
function modelCell (s: NodeStatus | undefined): string {
  if (s?.models == null || s.models.length === 0) return '?'
  return s.models.map(m => {
    const p = m.progress
    return m.phase === 'fetching' && p != null && p.total > 0 ? `fetching ${Math.floor(100 * p.bytes / p.total)}%` : m.phase
  }).join(' ')
}

/** Every model the node lists has its verified file. */
function modelsReady (s: NodeStatus | undefined): boolean {
  return s?.models != null && s.models.length > 0 && s.models.every(m => m.phase === 'ready')
}

async function table (net: Devnet): Promise<{text: string, readyMiners: number, readyValidators: number}> {
  const nodes = [net.oracle, ...net.miners, ...net.validators]
  const statuses = await Promise.all(nodes.map(async node => await fetchStatus(node, net.apiToken)))
  const rows = nodes.map((node, i) => {
    const s = statuses[i]
    return [node.name, node.role, `${node.info.address.slice(0, 10)}…`, `…${node.info.peerId.slice(-10)}`, modelCell(s),
      String(s?.mining?.completed ?? s?.validator?.verifications.served ?? (node.role === 'oracle' ? '-' : '?')), String(s?.stats?.chainPings ?? '?'), String(s?.peers ?? '?')]
  })
  const header = ['node', 'role', 'address', 'peer id', 'models', 'tasks done', 'pings', 'peers']
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map(r => (r[c] ?? '').length)))
  const line = (cells: string[]): string => cells.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ')
  // Ready means: verified model, pinged on chain, and seen ready by the oracle's heartbeat view.
  const seenByOracle = await oracleReadyMiners(net)
  const readyMiners = net.miners.filter((node, i) => {
    const s = statuses[i + 1]
    return modelsReady(s) && (s?.stats?.chainPings ?? 0) > 0 && seenByOracle.has(node.info.address)
  }).length
  // A validator is ready once its model is loaded and it pinged NodeStats (it does once admitted too).
  const readyValidators = net.validators.filter((_, i) => {
    const s = statuses[i + 1 + net.miners.length]
    return modelsReady(s) && (s?.stats?.chainPings ?? 0) > 0
  }).length
  return {text: [line(header), ...rows.map(line)].join('\n'), readyMiners, readyValidators}
}

async function watchUntilReady (net: Devnet, signal: AbortSignal, out: (l: string) => void, stamp: () => string): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  let last = ''
  while (!signal.aborted && Date.now() < deadline) {
    const {text, readyMiners, readyValidators} = await table(net)
    if (text !== last) {
      const validatorsReady = net.validators.length > 0 ? `, ${readyValidators}/${net.validators.length} validators` : ''
      out(`${stamp()} nodes (${readyMiners}/${net.miners.length} miners${validatorsReady} ready):\n${text}`)
      last = text
    }
    if (readyMiners === net.miners.length && readyValidators === net.validators.length) return true
    await delay(500, undefined, {signal}).catch(() => {})
  }
  return false
}

async function showLive (net: Devnet, opts: RunDevnetOptions, signal: AbortSignal, out: (l: string) => void): Promise<void> {
  let last = ''
  while (!signal.aborted) {
    const {text} = await table(net)
    if (opts.interactive) {
      const lines = text.split('\n').length
      if (last !== '') process.stdout.write(`\x1b[${lines}A`)
      out(text)
    } else if (text !== last) {
      out(text)
    }
    last = text
    await delay(1_000, undefined, {signal}).catch(() => {})
  }
}
