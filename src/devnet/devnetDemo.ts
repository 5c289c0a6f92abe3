import {setTimeout as delay} from 'node:timers/promises'
import type {TaskRecord} from '../actors/oracle/messages.js'
import type {RouterCompletion} from '../api/oracleRoutes.js'
import {STORIES_260K_Q4} from '../util/paths.js'

/** The demo's prompts: both modes, several redundancies, both models (the F32 default and the 4-bit one by name). */
export const DEMO_PROMPTS = [
  {prompt: 'Once upon a time', mode: 'parallel', redundancy: 3, max_tokens: 48},
  {prompt: 'The little dog', mode: 'competing', redundancy: 1, max_tokens: 48},
  {prompt: 'Lily wanted to play', mode: 'parallel', redundancy: 2, max_tokens: 48, model: STORIES_260K_Q4.name},
  {prompt: 'One day, a boy named Tom', mode: 'competing', redundancy: 2, max_tokens: 48, model: STORIES_260K_Q4.name},
  {prompt: 'The sun was shining and', mode: 'parallel', redundancy: 7, max_tokens: 32}
] as const

const SETTLE_TIMEOUT_MS = 120_000

/**
 * Sends the demo prompts to the oracle (both modes), prints each answer with its miners,
 * agreement and latency, then waits for each task's settlement and prints its on-chain trail.
 * True when every prompt was answered by agreeing miners and settled on chain.
 */
export async function runDemo (init: {apiUrl: string, apiToken: string, miners: number, out: (line: string) => void, signal: AbortSignal}): Promise<boolean> {
  const {out} = init
  let ok = true
  const answered: RouterCompletion[] = []
  // A smaller devnet runs the same prompts with redundancy capped at its miner count.
  for (const [i, p] of DEMO_PROMPTS.map(p => ({...p, redundancy: Math.min(p.redundancy, init.miners)})).entries()) {
    out(`\n── prompt ${i + 1}/${DEMO_PROMPTS.length}: "${p.prompt}"  (${'model' in p ? `${p.model}, ` : ''}${p.mode}, k=${p.redundancy}, max ${p.max_tokens} tokens)`)
    const res = await fetch(`${init.apiUrl}/api/v1/completions`, {method: 'POST', headers: {'content-type': 'application/json', authorization: `Bearer ${init.apiToken}`}, body: JSON.stringify(p), signal: init.signal})
    const body = await res.json() as RouterCompletion & {error?: {code: string, message: string}}
    if (!res.ok) {
      out(`   FAILED ${res.status} ${body.error?.code}: ${body.error?.message}`)
      ok = false
      continue
    }
    answered.push(body)
    out(`   answer     ${JSON.stringify(body.answer)}`)
    out(`   task       #${body.task_id}  miners ${body.miners.map(short).join(', ')}`)
    out(`   agreement  ${body.agreement?.status} (${body.agreement?.agreeing.length}/${body.redundancy} ${body.agreement?.verified === true ? 'verified' : 'agree'}${body.agreement?.dissenting.length ? `; dissent: ${body.agreement.dissenting.map(short).join(', ')}` : ''})`)
    out(`   latency    ${body.timings.total_ms} ms to answer (task gossiped at ${body.timings.gossip_ms} ms, before its block; first result ${body.timings.first_result_ms} ms)`)
    if (body.agreement?.status !== 'agreed') ok = false
  }

  out('\n── on-chain trail (settlement runs behind the answers)')
  for (const a of answered) {
    const record = await waitSettled(init.apiUrl, init.apiToken, a.task_id, init.signal)
    if (record == null) {
      out(`   task #${a.task_id}: not settled within ${SETTLE_TIMEOUT_MS / 1000} s`)
      ok = false
      continue
    }
    out(`   task #${record.taskId} (${record.mode}, k=${record.k}) → ${record.phase}`)
    for (const e of record.trail) out(`     block ${String(e.blockNumber).padStart(4)}  ${e.name.padEnd(17)} ${describeEvent(e.name, e.args)}  tx ${e.txHash.slice(0, 18)}…`)
    if (record.phase !== 'ended') ok = false
  }
  return ok
}

async function waitSettled (apiUrl: string, apiToken: string, taskId: string, signal: AbortSignal): Promise<TaskRecord | null> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS
  while (Date.now() < deadline && !signal.aborted) {
    const res = await fetch(`${apiUrl}/api/v1/tasks/${taskId}`, {headers: {authorization: `Bearer ${apiToken}`}, signal})
    if (res.ok) {
      const record = await res.json() as TaskRecord
      if (record.phase === 'ended' || record.phase === 'expired') return record
    }
    await delay(250, undefined, {signal}).catch(() => {})
  }
  return null
}

function short (address: string): string {
  return `${address.slice(0, 8)}…`
}

function describeEvent (name: string, args: Record<string, unknown>): string {
  const miner = typeof args.miner === 'string' ? `miner ${short(args.miner)}` : ''
  switch (name) {
    case 'TaskCreated': return `input ${JSON.stringify(args.input)} escrow ${String(args.escrow)} wei`
    case 'TaskCommitted': return `${miner} output ${JSON.stringify(String(args.output).slice(0, 40))}…`
    case 'TaskEnded': return `winners ${(args.winners as string[]).map(short).join(', ')} paid ${String(args.payoutEach)} wei each`
    case 'MinerReassigned': return `${short(String(args.from))} → ${short(String(args.to))}`
    default: return miner
  }
}
