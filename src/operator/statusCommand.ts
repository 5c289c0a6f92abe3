import {formatWei, TASK_OUTCOMES, type EarningReport} from './earningReport.js'
import type {OperatorIo} from './operatorContext.js'
import {OperatorError} from './operatorError.js'

/** `cortensord status`'s exit code for a healthy node that something keeps from earning. */
export const STATUS_NOT_EARNING = 3

/** A node has this long to answer `GET /api/v1/status` before it counts as unreachable. */
export const STATUS_TIMEOUT_MS = 5_000

/** One model's state as a node reports it (src/actors/model/messages.ts `ModelStatus`). */
interface ReportedModel {
  modelId?: string
  phase?: string
  progress?: {bytes?: number, total?: number}
  error?: string
}

/** The parts of a node's status this command reads; the rest is passed through to `--json`. */
export interface ReportedStatus {
  role?: string
  address?: string
  peerId?: string
  networkId?: string
  chainId?: number
  peers?: number
  admitted?: boolean
  /** Every model the node lists, on its way to a verified file. */
  models?: ReportedModel[]
  stats?: {heartbeatsSent?: number, chainPings?: number, lastChainPing?: {at?: number, tx?: string, blockNumber?: number}, lastPingError?: string}
  /** Why the node earns or not (src/operator/earningReport.ts); absent from nodes before it. */
  earning?: EarningReport
}

export interface NodeHealth {
  healthy: boolean
  /** Why it is not healthy. */
  problems: string[]
  /** Worth a look, not a failure (no peers yet, a failed chain ping that will be retried). */
  warnings: string[]
}

/** Healthy = admitted on chain and no model failed; everything else is a warning at most. */
export function nodeHealth (status: ReportedStatus): NodeHealth {
  const problems: string[] = []
  const warnings: string[] = []
  if (status.admitted !== true) {
    problems.push(`not admitted: ${status.address ?? 'its address'} needs an ACL ${status.role ?? 'node'} grant and an active IAM registration (cortensord network admit --role ${status.role ?? 'ROLE'} ${status.address ?? 'ADDRESS'})`)
  }
  for (const model of status.models ?? []) {
    if (model.phase === 'failed') problems.push(`model ${model.modelId ?? '?'} failed: ${model.error ?? 'no reason given'}`)
  }
  if (status.peers === 0) warnings.push('no peers connected')
  if (status.stats?.lastPingError != null) warnings.push(`last chain ping failed: ${status.stats.lastPingError}`)
  return {healthy: problems.length === 0, problems, warnings}
}

/**
 * `cortensord status`: a node's health and why it earns or not, from its API. Exit 0 healthy
 * with no earning finding; 1 answering but not healthy; 3 healthy, but a reason it does not earn
 * holds (each printed with its fix): a health check that restarts on non-zero can tell a working
 * node that lacks gas from a broken one. Unreachable or refusing is an `OperatorError` (one line, exit 2).
 */
export async function nodeStatus (opts: {api: string, token?: string, json: boolean, io: OperatorIo}): Promise<number> {
  const {io} = opts
  let url: URL
  try {
    url = new URL('/api/v1/status', opts.api)
  } catch {
    throw new OperatorError({code: 'NODE_UNREACHABLE'}, `--api must be the node's API URL (http://host:port), got ${JSON.stringify(opts.api)}`)
  }
  let res: Response
  try {
    res = await fetch(url, {
      headers: opts.token == null ? {} : {authorization: `Bearer ${opts.token}`},
      signal: AbortSignal.any([AbortSignal.timeout(STATUS_TIMEOUT_MS), ...(io.signal == null ? [] : [io.signal])])
    })
  } catch (err) {
    const cause = (err as Error).cause as NodeJS.ErrnoException | undefined
    const why = (err as Error).name === 'TimeoutError' ? `no answer within ${STATUS_TIMEOUT_MS / 1000} s` : cause?.code ?? cause?.message ?? (err as Error).message
    throw new OperatorError({code: 'NODE_UNREACHABLE'}, `cannot reach the node at ${url.origin}: ${why}`)
  }
  if (!res.ok) {
    const body = await res.json().catch(() => undefined) as {error?: {message?: string}} | undefined
    const hint = res.status === 401 || res.status === 403 ? ' (pass --token, or set CORTENSORD_API_TOKEN)' : ''
    throw new OperatorError({code: 'NODE_API_ERROR'}, `the node at ${url.origin} answered ${res.status}: ${body?.error?.message ?? res.statusText}${hint}`)
  }
  const status = await res.json() as ReportedStatus
  const health = nodeHealth(status)
  io.out.write(opts.json ? `${JSON.stringify({...status, health}, null, 2)}\n` : formatStatus(status, health))
  if (!health.healthy) return 1
  return (status.earning?.findings.length ?? 0) === 0 ? 0 : STATUS_NOT_EARNING
}

function formatStatus (s: ReportedStatus, health: NodeHealth): string {
  const lines = [
    `role      ${s.role ?? '?'}`,
    `address   ${s.address ?? '?'}`,
    `peer id   ${s.peerId ?? '?'}`,
    `network   ${s.networkId ?? '?'}, chain id ${s.chainId ?? '?'}`,
    `peers     ${s.peers ?? '?'}`,
    `admitted  ${s.admitted === true ? 'yes' : 'no'}`
  ]
  for (const model of s.models ?? []) lines.push(`model     ${modelLine(model)}`)
  if (s.stats != null) {
    const last = s.stats.lastChainPing
    const ping = last?.at == null ? 'none yet' : `last ${new Date(last.at).toISOString()} in block ${last.blockNumber ?? '?'}`
    lines.push(`stats     ${s.stats.heartbeatsSent ?? 0} heartbeats, ${s.stats.chainPings ?? 0} chain pings (${ping})`)
  }
  lines.push(`healthy   ${health.healthy ? 'yes' : 'no'}`)
  for (const problem of health.problems) lines.push(`  problem: ${problem}`)
  for (const warning of health.warnings) lines.push(`  warning: ${warning}`)
  if (s.earning != null) lines.push(...earningLines(s.earning))
  return `${lines.join('\n')}\n`
}

/** Recent outcomes printed; the rest are in `--json`. */
const RECENT_SHOWN = 10

function earningLines (e: EarningReport): string[] {
  const since = e.since == null ? '' : ` since ${new Date(e.since).toISOString().slice(0, 16).replace('T', ' ')} UTC`
  const lines = [`earning   ${e.earning ? 'yes' : 'no'}: earned ${formatWei(BigInt(e.earnedWei))}${since}${e.balanceWei == null ? '' : `, balance ${formatWei(BigInt(e.balanceWei))}`}${BigInt(e.owedWei) > 0n ? `, owed ${formatWei(BigInt(e.owedWei))}` : ''}`]
  for (const c of e.checks) lines.push(`  ${c.ok ? 'ok    ' : 'not ok'} ${c.name}: ${c.detail}`)
  if (TASK_OUTCOMES.some(o => e.tasks[o] > 0)) lines.push(`tasks     ${TASK_OUTCOMES.map(o => `${e.tasks[o]} ${o}`).join(', ')}`)
  for (const f of e.findings) {
    lines.push(`  finding ${f.code}: ${f.message}`)
    lines.push(`    fix: ${f.fix}`)
  }
  for (const r of e.recent.slice(0, RECENT_SHOWN)) lines.push(`  task ${r.taskId} ${r.outcome}: ${r.reason}`)
  return lines
}

function modelLine (m: ReportedModel): string {
  const id = m.modelId == null ? '' : ` (model ${m.modelId})`
  const p = m.progress
  const percent = p?.bytes != null && p.total != null && p.total > 0 ? ` ${Math.floor(100 * p.bytes / p.total)}%` : ''
  return `${m.phase ?? '?'}${m.phase === 'ready' ? '' : percent}${id}${m.error == null ? '' : `: ${m.error}`}`
}
