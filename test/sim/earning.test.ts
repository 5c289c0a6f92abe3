/**
 * "Why am I (not) earning?" on a real network (issue 14): one devnet, miners as their own OS
 * processes, each with a reason not to earn, and `cortensord status` (nodeStatus against the
 * node's own API) explaining it with its fix: not admitted, a model file that is not the
 * registry's, outputs failing verification (a lying engine), every competing task lost to a
 * faster miner (an engine that waits), heartbeats no oracle takes (a clock running ahead), no gas
 * (balance set to 0); and a miner killed -9 keeps its ledger across the restart. The dashboards
 * of the slow and the lying miner are rendered in headless Chromium to
 * test-artifacts/dashboard-earning-*.png.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Writable} from 'node:stream'
import {after, before, describe, it} from 'node:test'
import {Interface, toBeHex, zeroPadValue, type JsonRpcProvider} from 'ethers'
import {CONTRACT_ABIS} from '../../src/chain/contracts.js'
import {createProvider} from '../../src/chain/provider.js'
import {startDevnet, type Devnet, type DevnetNode} from '../../src/devnet/devnet.js'
import type {EarningReport, FindingCode} from '../../src/operator/earningReport.js'
import {nodeStatus} from '../../src/operator/statusCommand.js'
import {toAddress} from '../../src/protocols/address.js'
import {PROJECT_ROOT, SHARED_MODEL_PATH} from '../../src/util/paths.js'
import {devnetApi} from '../support/devnetApi.js'
import {until} from '../support/until.js'

const ROGUE_MINER = join(PROJECT_ROOT, 'test', 'support', 'rogueMiner.ts')
const SLOW_MINER = join(PROJECT_ROOT, 'test', 'support', 'slowMiner.ts')
const SKEWED_MINER = join(PROJECT_ROOT, 'test', 'support', 'skewedMiner.ts')
/** Past the oracle's tolerance for heartbeats from the future (MAX_CLOCK_SKEW_MS), short of the age at which the miner finds the oracle's stale. */
const CLOCK_AHEAD_MS = 15_000
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync)
/** Long enough that the fast miners' precommits are mined first, well inside the precommit window. */
const SLOW_DELAY_MS = 4_000

let dir: string
let devnet: Devnet
const {api, settled, ready} = devnetApi(() => devnet)
let provider: JsonRpcProvider

/** `cortensord status` against `node`'s API, as the operator runs it: exit code, text and the JSON. */
async function status (node: DevnetNode): Promise<{code: number, text: string, earning: EarningReport}> {
  const capture = (): {stream: Writable, text: () => string} => {
    let text = ''
    return {stream: new Writable({write (chunk, _enc, done) { text += String(chunk); done() }}), text: () => text}
  }
  const text = capture()
  const json = capture()
  const err = capture()
  const code = await nodeStatus({api: node.info.api, json: false, io: {out: text.stream, err: err.stream}})
  await nodeStatus({api: node.info.api, json: true, io: {out: json.stream, err: err.stream}})
  return {code, text: text.text(), earning: (JSON.parse(json.text()) as {earning: EarningReport}).earning}
}

/** Waits until `node`'s status holds the finding `code` (whose message has `includes`); returns it with the status. */
async function finding (node: DevnetNode, code: FindingCode, includes = '', timeoutMs = 60_000): Promise<{code: number, text: string, earning: EarningReport, message: string, fix: string}> {
  return await until(`${node.name}: finding ${code}${includes === '' ? '' : ` saying ${JSON.stringify(includes)}`}`, timeoutMs, async () => {
    const s = await status(node)
    const f = s.earning.findings.find(x => x.code === code && x.message.includes(includes))
    // Both calls must say it (the text one gives the exit code; a chain read may land between them).
    return f == null || !s.text.includes(`finding ${code}`) ? undefined : {...s, message: f.message, fix: f.fix}
  })
}

function screenshot (node: DevnetNode, name: string, expect: RegExp[]): void {
  const url = `${node.info.api}/dashboard`
  const common = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--virtual-time-budget=6000', '--window-size=1280,1400']
  const dom = spawnSync(CHROMIUM as string, [...common, '--dump-dom', url], {encoding: 'utf8', timeout: 60_000})
  assert.equal(dom.status, 0, dom.stderr)
  for (const want of expect) assert.match(dom.stdout, want)
  const shot = spawnSync(CHROMIUM as string, [...common, `--screenshot=${join(PROJECT_ROOT, 'test-artifacts', `dashboard-earning-${name}.png`)}`, url], {encoding: 'utf8', timeout: 60_000})
  assert.equal(shot.status, 0, shot.stderr)
}

describe('earning: cortensord status says why a miner earns or not, with the fix', {timeout: 900_000}, () => {
  let honest: DevnetNode
  let liar: DevnetNode
  let slow: DevnetNode
  let wrongModel: DevnetNode
  let outsider: DevnetNode
  let skewed: DevnetNode

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cortensor-earning-'))
    devnet = await startDevnet({
      miners: 1, spareMiners: 4, dir, logLevel: 'warn',
      nodeConfig: {inference: {sequences: 1}, stats: {heartbeatIntervalMs: 1_000}, oracle: {precommitWindowS: 20, commitWindowS: 40, auditRate: 1}}
    })
    provider = createProvider(devnet.anvil.rpcUrl, devnet.deployment.chainId)
    honest = devnet.miners[0] as DevnetNode
    const [q4] = devnet.modelIds.slice(1)
    ;[liar, slow, wrongModel, outsider, skewed] = await Promise.all([
      devnet.startMiner({index: 1, admitted: true, script: [ROGUE_MINER, 'invented']}),
      devnet.startMiner({index: 2, admitted: true, script: [SLOW_MINER, String(SLOW_DELAY_MS)]}),
      // The F32 file given as the Q4 model's local copy: its sha256 is not the registry's.
      devnet.startMiner({index: 3, admitted: true, nodeConfig: {models: [{id: Number(devnet.modelId)}, {id: Number(q4), file: SHARED_MODEL_PATH}]}}),
      devnet.startMiner({index: 0, admitted: false}),
      devnet.startMiner({index: 4, admitted: true, script: [SKEWED_MINER, String(CLOCK_AHEAD_MS)]})
    ])
    await ready([honest, liar, slow, wrongModel])
  })

  after(async () => {
    provider?.destroy()
    await devnet?.stop()
    if (dir != null && process.env.KEEP_DEVNET !== '1') await rm(dir, {recursive: true, force: true})
  })

  it('a miner the ACL never admitted: NOT_ADMITTED, with the admit command for its address; exit 1', async () => {
    const s = await finding(outsider, 'NOT_ADMITTED')
    assert.equal(s.code, 1)
    assert.match(s.fix, new RegExp(`cortensord network admit --role miner ${outsider.info.address}`, 'i'))
    assert.match(s.text, /finding NOT_ADMITTED: /)
    assert.match(s.text, /fix: ask the network's admin to run: cortensord network admit/)
  })

  it('a local model file whose hash is not the registry\'s: MODEL_NOT_VERIFIED naming the hash mismatch', async () => {
    const s = await finding(wrongModel, 'MODEL_NOT_VERIFIED')
    assert.match(s.message, new RegExp(`model ${devnet.modelIds[1]} is not verified: .*(HASH|sha256)`, 'i'))
    assert.match(s.fix, /remove its `file` from `models`/)
    // The other model is verified and mined.
    assert.ok(s.earning.checks.some(c => c.name === `model ${devnet.modelId}` && c.ok), JSON.stringify(s.earning.checks))
  })

  it('a miner whose heartbeats no oracle takes (its clock runs ahead): ORACLE_DOES_NOT_HEAR while the honest miner is heard', async () => {
    const s = await finding(skewed, 'ORACLE_DOES_NOT_HEAR')
    assert.match(s.message, new RegExp(`oracles do not hear your heartbeats \\(${devnet.oracle.info.address} send theirs, none lists ${skewed.info.address}\\)`, 'i'))
    assert.match(s.fix, /p2p\.announce/)
    assert.match(s.fix, /clock/)
    const heard = (await status(honest)).earning
    assert.ok(heard.checks.some(c => c.name === 'oracle hears me' && c.ok), JSON.stringify(heard.checks))
    assert.ok(!heard.findings.some(f => f.code === 'ORACLE_DOES_NOT_HEAR'))
    // It would compete for tasks with its precommits dropped as from the future: out of the way.
    await devnet.kill(skewed)
  })

  it('outputs that fail verification: FAILING_VERIFICATION with the oracle\'s reason; the honest miners are paid', async () => {
    // Parallel over every live miner: the liar is among them.
    const {status: code, json} = await api('/api/v1/completions', {prompt: 'Once upon a time', max_tokens: 24, temperature: 0, redundancy: 4, mode: 'parallel'})
    assert.equal(code, 200, JSON.stringify(json))
    const record = await settled(json.task_id as string)
    assert.ok(record.agreement?.rejected.includes(toAddress(liar.info.address)), JSON.stringify(record.agreement))
    const reason = record.results.find(r => r.miner === toAddress(liar.info.address))?.verdict?.reason ?? ''
    assert.ok(reason.length > 0, 'the oracle recorded why')
    // The oracle's next heartbeats say why; the miner books the rejection once it reads the task's end on chain.
    await finding(liar, 'FAILING_VERIFICATION', reason.slice(0, 60))
    const s = await until('the liar\'s ledger to book the rejection', 30_000, async () => {
      const st = await status(liar)
      return st.earning.tasks.rejected + st.earning.tasks.disagreed > 0 ? st : undefined
    })
    assert.equal(s.earning.tasks.rejected, 1, JSON.stringify(s.earning.recent))
    assert.ok(s.earning.recent.some(r => r.taskId === record.taskId && r.outcome === 'rejected' && r.reason.includes(reason.slice(0, 60))), JSON.stringify(s.earning.recent))
    const paid = await until('the honest miner\'s payout booked', 30_000, async () => {
      const e = (await status(honest)).earning
      return e.tasks.won >= 1 ? e : undefined
    })
    assert.ok(BigInt(paid.earnedWei) > 0n)
    if (CHROMIUM != null) {
      await mkdir(join(PROJECT_ROOT, 'test-artifacts'), {recursive: true})
      screenshot(liar, 'rejected', [/FAILING_VERIFICATION/, /<td class="bad">rejected<\/td>/])
    }
  })

  it('a slow miner losing every competing task: LOSING_COMPETING naming the winners and what to do', async () => {
    // The liar would take competing slots and be rejected: only honest miners compete now.
    await devnet.kill(liar)
    const fast = new Set([honest, wrongModel].map(n => toAddress(n.info.address)))
    for (let i = 0; i < 3; i++) {
      const {status: code, json} = await api('/api/v1/completions', {prompt: `The cat number ${i}`, max_tokens: 16, temperature: 0, redundancy: 1, mode: 'competing'})
      assert.equal(code, 200, JSON.stringify(json))
      const record = await settled(json.task_id as string)
      const ended = record.trail.find(e => e.name === 'TaskEnded')
      assert.ok(ended != null && (ended.args.winners as string[]).every(w => fast.has(toAddress(w))), `a fast miner won task ${record.taskId}`)
    }
    const s = await finding(slow, 'LOSING_COMPETING')
    assert.match(s.message, /lost the last [3-9] competing tasks to 0x[0-9a-f]{40}/)
    for (const winner of s.message.match(/0x[0-9a-f]{40}/g) ?? []) assert.ok(fast.has(toAddress(winner)), `${winner} is a fast miner`)
    assert.match(s.fix, /faster hardware/)
    assert.ok(s.earning.tasks.lost >= 3)
    assert.ok(BigInt(s.earning.earnedWei) > 0n, 'its parallel task was paid')
    assert.match(s.text, /task \d+ lost: the slots went to 0x/)
    // The same answer on /metrics, computed for the scrape (no status call in between needed).
    const metrics = await (await fetch(new URL('/metrics', slow.info.api))).text()
    assert.match(metrics, /^cortensor_earning_problem\{code="LOSING_COMPETING"\} 1$/m)
    assert.match(metrics, /^cortensor_earning_problem\{code="NO_GAS"\} 0$/m)
    assert.ok(Number(/^cortensor_miner_tasks\{outcome="lost"\} (\d+)$/m.exec(metrics)?.[1]) >= 3, 'lost tasks on /metrics')
    assert.ok(Number(/^cortensor_earned_wei (\S+)$/m.exec(metrics)?.[1]) > 0, 'earnings on /metrics')
    if (CHROMIUM != null) screenshot(slow, 'losing', [/LOSING_COMPETING/, /the slots went to 0x/, /earned \(ETH\)/])
  })

  it('a miner killed -9 and started again keeps its ledger, and books the task that paid it while it was down', async () => {
    const miner = wrongModel
    // Two fast miners only (the slow one would keep the oracle frozen below for seconds).
    await devnet.kill(slow)
    const before = (await status(miner)).earning
    assert.ok(before.since != null, 'a miner\'s ledger says since when it counts')
    const cognitive = new Interface(CONTRACT_ABIS.cognitive)
    const topic = (name: string): string => cognitive.getEvent(name)!.topicHash
    const address = devnet.deployment.contracts.cognitive
    const mine = zeroPadValue(miner.info.address, 32)
    const fromBlock = await provider.getBlockNumber()
    const request = api('/api/v1/completions', {prompt: 'A dog named Rex', max_tokens: 12, temperature: 0, redundancy: 2, mode: 'parallel'})
    // Its precommit on chain: the oracle (which alone settles) is frozen, the miners reveal without
    // it, this miner is killed once its reveal is mined, and only then does the oracle go on and
    // end the task: the end comes while the miner is down.
    const precommit = await until(`${miner.name}'s precommit on chain`, 60_000, async () =>
      (await provider.getLogs({address, topics: [topic('TaskPrecommitted'), null, mine], fromBlock}))[0])
    const taskId = BigInt(precommit.topics[1] as string)
    process.kill(devnet.oracle.info.pid, 'SIGSTOP')
    try {
      await until(`${miner.name}'s reveal on chain`, 60_000, async () =>
        (await provider.getLogs({address, topics: [topic('TaskCommitted'), toBeHex(taskId, 32), mine], fromBlock}))[0])
      await devnet.kill(miner)
      assert.deepEqual(await provider.getLogs({address, topics: [topic('TaskEnded'), toBeHex(taskId, 32)], fromBlock}), [], 'not ended before the kill')
    } finally {
      process.kill(devnet.oracle.info.pid, 'SIGCONT')
    }
    assert.equal((await request).status, 200)
    const record = await settled(taskId.toString())
    const ended = record.trail.find(e => e.name === 'TaskEnded')
    const winners = (ended?.args.winners as string[] | undefined ?? []).map(toAddress)
    assert.ok(winners.includes(toAddress(miner.info.address)), `the killed miner's output was paid: ${winners.join(', ')}`)
    // The end mined and buried: a node's watch starts at the head block it finds, and must not be what books it.
    await until('TaskEnded on chain', 30_000, async () => (await provider.getLogs({address, topics: [topic('TaskEnded'), toBeHex(taskId, 32)], fromBlock}))[0])
    await provider.send('anvil_mine', ['0x2'])

    await devnet.restart(miner)
    const after = await until(`${miner.name}'s ledger to book task ${taskId} after its restart`, 60_000, async () => {
      const e = (await status(miner)).earning
      return e.recent.some(r => r.taskId === taskId.toString() && r.outcome === 'won') ? e : undefined
    })
    assert.equal(after.since, before.since, 'the ledger counts from the first start, not from the restart')
    assert.equal(after.tasks.won, before.tasks.won + 1, `won ${before.tasks.won} before, ${after.tasks.won} after: the one task, once`)
    const payout = after.recent.find(r => r.taskId === taskId.toString())?.payoutWei ?? '0'
    assert.equal(BigInt(after.earnedWei) - BigInt(before.earnedWei), BigInt(payout), 'earned grew by that task\'s payout, once')
  })

  it('a wallet emptied: NO_GAS saying how much to send to which address; a healthy node that cannot earn exits 3', async () => {
    const before = (await status(honest)).earning
    assert.ok(BigInt(before.balanceWei ?? '0') > BigInt(before.gasReserveWei ?? '0') && !before.findings.some(f => f.code === 'NO_GAS'), JSON.stringify(before.checks))
    await provider.send('anvil_setBalance', [honest.info.address, '0x0'])
    const s = await finding(honest, 'NO_GAS', '', 30_000)
    assert.match(s.fix, new RegExp(`send at least [0-9.]+ (ETH|wei) to ${honest.info.address}`, 'i'))
    // A payout for a task it won just before may land after the drain: below the reserve is what counts.
    assert.ok(BigInt(s.earning.balanceWei ?? '0') < BigInt(s.earning.gasReserveWei ?? '0'), `${s.earning.balanceWei} < ${s.earning.gasReserveWei}`)
    assert.equal(s.code, 3, 'healthy, but not earning')
  })
})
