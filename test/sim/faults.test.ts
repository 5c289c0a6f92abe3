/**
 * Faults injected into a running network, as operators meet them: 1 oracle + 7 miners, each its
 * own OS process, on a real chain. Miners are SIGKILLed under load, the chain freezes (SIGSTOP
 * of anvil), the oracle is SIGKILLed and restarted with the same config, and every node gets a
 * SIGTERM under load. After each fault the chain must show every task closed and paid at most
 * once, and no healthy miner punished for someone else's failure.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import type {JsonRpcProvider} from 'ethers'
import type {TaskRecord} from '../../src/actors/oracle/messages.js'
import {connectContracts, type CortensorContracts} from '../../src/chain/contracts.js'
import {TaskState} from '../../src/chain/enums.js'
import {createProvider} from '../../src/chain/provider.js'
import {startDevnet, type Devnet, type DevnetNode} from '../../src/devnet/devnet.js'
import {toAddress, type Address} from '../../src/protocols/address.js'
import {loadSummary, mixedRequests, runLoad, type LoadResult} from '../support/load.js'
import {minersFree} from '../support/minersFree.js'
import {until} from '../support/until.js'

const MINERS = 7
const RESULT_TIMEOUT_MS = 8_000
const PRECOMMIT_WINDOW_S = 40
const COMMIT_WINDOW_S = 60
const FREEZE_MS = 30_000
/** How long a node may take to journal the receipts of what it sent, once the chain answers. */
const RECEIPT_WAIT_MS = 15_000
/** No client may wait longer than this: a reassignment or two, never a hang. */
const CLIENT_TIMEOUT_MS = 60_000
/** Every task is closable once its commit window passed (the precommit window outlasts the 30 s chain freeze); the oracle or its sweeper closes it soon after. */
const SETTLE_TIMEOUT_MS = (COMMIT_WINDOW_S + 45) * 1000

let dir: string
let devnet: Devnet
let provider: JsonRpcProvider
let contracts: CortensorContracts
/** Miners killed by a test: their failures are theirs, everyone else must come out clean. */
const killed = new Set<Address>()

async function api<T> (path: string): Promise<{status: number, json: T}> {
  const res = await fetch(`${devnet.apiUrl}${path}`, {headers: {authorization: `Bearer ${devnet.apiToken}`}})
  return {status: res.status, json: await res.json() as T}
}

/** Every task the chain ever saw created, with its current state. */
async function chainTasks (): Promise<Array<{taskId: bigint, state: number}>> {
  const created = await contracts.cognitive.queryFilter('TaskCreated', devnet.deployment.deployBlock)
  return await Promise.all(created.map(async (log) => {
    const taskId = BigInt(String((log as unknown as {args: {taskId: bigint}}).args.taskId))
    const task = await contracts.cognitive.getFunction('taskOf')(taskId) as {state: bigint}
    return {taskId, state: Number(task.state)}
  }))
}

async function allClosed (): Promise<void> {
  await until('every task on chain closed (Ended or Expired)', SETTLE_TIMEOUT_MS, async () => {
    const open = (await chainTasks()).filter(t => t.state !== TaskState.Ended && t.state !== TaskState.Expired)
    return open.length === 0 ? true : undefined
  })
}

/** No task paid twice: at most one TaskEnded/TaskExpired per task id. */
async function assertClosedOnce (): Promise<void> {
  const ended = await contracts.cognitive.queryFilter('TaskEnded', devnet.deployment.deployBlock)
  const expired = await contracts.cognitive.queryFilter('TaskExpired', devnet.deployment.deployBlock)
  const ids = [...ended, ...expired].map(l => String((l as unknown as {args: {taskId: bigint}}).args.taskId))
  assert.equal(new Set(ids).size, ids.length, 'a task was closed (and paid) more than once')
}

/** Healthy miners never marked expired nor disagreeing because another miner failed. */
async function assertHealthyMinersClean (): Promise<void> {
  for (const miner of devnet.miners) {
    const address = toAddress(miner.info.address)
    if (killed.has(address)) continue
    const stats = await contracts.nodeStats.getFunction('statsOf')(address) as {expired: bigint, disagreed: bigint, committed: bigint}
    assert.equal(stats.expired, 0n, `${miner.name} (healthy) was marked expired`)
    assert.equal(stats.disagreed, 0n, `${miner.name} (healthy) was marked disagreeing`)
  }
}

/**
 * Every transaction a node journaled as sent has its receipt journaled too, within
 * RECEIPT_WAIT_MS: after an outage a node's receipt polls are in backoff (up to 5 s), so the
 * chain can show a task closed before its sender has journaled the receipt.
 */
async function assertEveryTxHasReceipt (nodes: readonly DevnetNode[]): Promise<void> {
  for (const node of nodes) {
    const missing = async (): Promise<string[]> => {
      const text = await readFile(join(node.process.dataDir, 'tx-journal.jsonl'), 'utf8').catch(() => '')
      const lines = text.split('\n').filter(l => l.length > 0).map(l => JSON.parse(l) as {event: string, hash?: string})
      const sent = new Set(lines.filter(l => l.event === 'sent').map(l => l.hash))
      const done = new Set(lines.filter(l => l.event === 'receipt' || l.event === 'failed').map(l => l.hash))
      return [...sent].filter((h): h is string => h != null && !done.has(h))
    }
    const deadline = Date.now() + RECEIPT_WAIT_MS
    while ((await missing()).length > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 250))
    assert.deepEqual(await missing(), [], `${node.name}: transactions sent without a receipt`)
  }
}

function describeFailures (results: readonly LoadResult[]): string {
  return results.filter(r => r.status !== 200).map(r => `#${r.index}: ${r.status} ${r.code ?? ''} after ${r.endedAt - r.startedAt} ms`).join(', ')
}

/**
 * Every request answered, or refused with a reason within 2 × the result timeout (the oracle
 * holds a request that long for a free miner before it says none is free).
 */
function assertAnsweredOrRefused (results: readonly LoadResult[]): void {
  const bad = results.filter(r => r.status !== 200 && (r.code == null || r.endedAt - r.startedAt > 2 * RESULT_TIMEOUT_MS))
  assert.deepEqual(bad.map(r => r.index), [], `requests neither answered nor refused in time: ${describeFailures(bad)}`)
}

describe(`faults: 1 oracle + ${MINERS} miners under load`, {timeout: 1_200_000}, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cortensor-faults-'))
    devnet = await startDevnet({
      miners: MINERS, dir, logLevel: 'warn',
      nodeConfig: {
        stats: {heartbeatIntervalMs: 1_000},
        inference: {threads: 1, sequences: 2},
        oracle: {resultTimeoutMs: RESULT_TIMEOUT_MS, precommitWindowS: PRECOMMIT_WINDOW_S, commitWindowS: COMMIT_WINDOW_S}
      }
    })
    provider = createProvider(devnet.anvil.rpcUrl, devnet.anvil.chainId)
    contracts = connectContracts(devnet.deployment, provider)
    await minersFree(devnet, MINERS, 180_000)
  })

  after(async () => {
    provider?.destroy()
    await devnet?.stop()
    // KEEP_DEVNET=1 keeps the nodes' logs and journals for a look after a failure.
    if (dir != null && process.env.KEEP_DEVNET == null) await rm(dir, {recursive: true, force: true})
  })

  it('kill -9 of 3 miners during 100 requests: every request answered, every task closed, no healthy miner punished', async (t) => {
    const victims = devnet.miners.slice(0, 3)
    const killAt = new Map([[15, victims[0]], [40, victims[1]], [65, victims[2]]])
    const results = await runLoad(devnet, mixedRequests(100), {
      concurrency: 6, timeoutMs: CLIENT_TIMEOUT_MS,
      onSettled: async (_result, settled) => {
        const victim = killAt.get(settled)
        if (victim == null) return
        killed.add(toAddress(victim.info.address))
        await devnet.kill(victim)
      }
    })
    t.diagnostic(`with 3 kills: ${JSON.stringify(loadSummary(results))}; refused: ${describeFailures(results)}`)
    assertAnsweredOrRefused(results)
    await allClosed()
    await assertClosedOnce()
    await assertHealthyMinersClean()
  })

  it('killed miners restart with the same command, resume from their journal and take work again', async () => {
    for (const miner of devnet.miners.slice(0, 3)) await devnet.restart(miner)
    await minersFree(devnet, MINERS, 120_000)
    const results = await runLoad(devnet, mixedRequests(12), {concurrency: 4, timeoutMs: CLIENT_TIMEOUT_MS})
    assert.deepEqual(results.filter(r => r.status !== 200).map(r => r.index), [], describeFailures(results))
  })

  it(`chain frozen ${FREEZE_MS / 1000} s: answers keep coming during the outage, and everything settles afterwards`, async (t) => {
    process.kill(devnet.anvil.pid, 'SIGSTOP')
    const thawAt = Date.now() + FREEZE_MS
    try {
      const results = await runLoad(devnet, mixedRequests(20), {concurrency: 4, timeoutMs: CLIENT_TIMEOUT_MS})
      const duringOutage = results.filter(r => r.status === 200 && r.endedAt < thawAt)
      t.diagnostic(`chain frozen: ${duringOutage.length}/20 answered during the outage; ${JSON.stringify(loadSummary(results))}`)
      assert.deepEqual(results.filter(r => r.status !== 200).map(r => r.index), [], describeFailures(results))
      assert.ok(duringOutage.length >= 15, `only ${duringOutage.length} of 20 answers came while the chain was frozen`)
      // The outage lasts its full length whatever the load did.
      await new Promise(resolve => setTimeout(resolve, Math.max(0, thawAt - Date.now())))
    } finally {
      process.kill(devnet.anvil.pid, 'SIGCONT')
    }
    await allClosed()
    await assertClosedOnce()
    await assertEveryTxHasReceipt([devnet.oracle, ...devnet.miners])
    await assertHealthyMinersClean()
  })

  it('oracle kill -9 mid-run and a restart with the same command: waiting clients get an error, every open task settles and is served after', async (t) => {
    let oracleKilled = false
    const results = await runLoad(devnet, mixedRequests(16), {
      concurrency: 6, timeoutMs: CLIENT_TIMEOUT_MS,
      onSettled: async (_result, settled) => {
        if (settled !== 4) return
        oracleKilled = true
        await devnet.kill(devnet.oracle)
      }
    })
    assert.ok(oracleKilled)
    // Clients cut off by the crash got a connection error (or a refusal while it was down), never a hang.
    assert.deepEqual(results.filter(r => r.code === 'CLIENT_TIMEOUT').map(r => r.index), [], 'a client hung')
    const restartedAt = Date.now()
    await devnet.restart(devnet.oracle)
    assert.equal(new URL(devnet.oracle.info.api).port, String(devnet.oracle.ports.api), 'the restarted oracle keeps its API port')
    await minersFree(devnet, 3, 60_000)
    const first = await runLoad(devnet, mixedRequests(1), {concurrency: 1, timeoutMs: CLIENT_TIMEOUT_MS})
    assert.equal(first[0]?.status, 200, describeFailures(first))
    t.diagnostic(`oracle restart to first answer: ${(first[0]?.endedAt ?? 0) - restartedAt} ms`)

    await allClosed()
    await assertClosedOnce()
    const oracle = toAddress(devnet.oracle.info.address)
    for (const {taskId} of await chainTasks()) {
      const task = await contracts.cognitive.getFunction('taskOf')(taskId) as {oracle: string}
      if (toAddress(task.oracle) !== oracle) continue
      const {status, json} = await until(`task ${taskId} served as settled`, 30_000, async () => {
        const reply = await api<TaskRecord>(`/api/v1/tasks/${taskId}`)
        return reply.status === 200 && (reply.json.phase === 'ended' || reply.json.phase === 'expired') ? reply : undefined
      })
      assert.equal(status, 200)
      assert.ok(json.phase === 'ended' || json.phase === 'expired')
    }
    await assertHealthyMinersClean()
  })

  it('SIGTERM under load: every node exits within 10 s with code 0', async () => {
    const load = runLoad(devnet, mixedRequests(30), {concurrency: 6, timeoutMs: CLIENT_TIMEOUT_MS})
    await new Promise(resolve => setTimeout(resolve, 1_500))
    const nodes = [devnet.oracle, ...devnet.miners]
    const exits = await Promise.all(nodes.map(async (node) => {
      const startedAt = Date.now()
      // Grace beyond 10 s so that a slow stop shows as slow, not as a SIGKILL.
      const code = await node.process.stop(20_000)
      return {name: node.name, code, ms: Date.now() - startedAt}
    }))
    await load
    for (const exit of exits) {
      assert.equal(exit.code, 0, `${exit.name} exit code`)
      assert.ok(exit.ms < 10_000, `${exit.name} took ${exit.ms} ms to stop`)
    }
  })
})
