/**
 * The network as users run it: a real chain (anvil), 1 oracle + 3 miners each in its own OS
 * process with its own libp2p node and key, the real model through node-llama-cpp. Miners
 * start with empty model folders and fetch the model from the oracle over IPFS.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import type {TaskRecord} from '../../src/actors/oracle/messages.js'
import {registerModel} from '../../src/chain/admission.js'
import {connectContracts} from '../../src/chain/contracts.js'
import {devnetWallet} from '../../src/devnet/devnetKeys.js'
import {TxQueue} from '../../src/chain/txQueue.js'
import {createProvider} from '../../src/chain/provider.js'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import {toAddress, type Address} from '../../src/protocols/address.js'
import {greedy} from '../../src/protocols/messages.js'
import {toModelId, type ModelId} from '../../src/protocols/modelId.js'
import {sha256File} from '../../src/model/verifyFile.js'
import {startDevnet, type Devnet, type DevnetNode} from '../../src/devnet/devnet.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {SHARED_MODEL_PATH, SHARED_Q4_MODEL_PATH, STORIES_260K, STORIES_260K_Q4} from '../../src/util/paths.js'
import {until} from '../support/until.js'

const HEARTBEAT_MS = 1_000
const RESULT_TIMEOUT_MS = 2_000
const READY_TIMEOUT_MS = 120_000
const SETTLE_TIMEOUT_MS = 60_000

interface Completion {
  task_id: string
  answer: string
  miners: string[]
  agreement: {status: string, agreeing: string[], dissenting: string[]}
  reassignments: Array<{from: string, to: string}>
}

let devnet: Devnet
let unadmitted: DevnetNode
let engine: LlamaEngine
let dir: string

async function api<T> (path: string, body?: unknown): Promise<{status: number, json: T}> {
  const authorization = `Bearer ${devnet.apiToken}`
  const res = await fetch(`${devnet.apiUrl}${path}`, body == null ? {headers: {authorization}} : {method: 'POST', headers: {'content-type': 'application/json', authorization}, body: JSON.stringify(body)})
  return {status: res.status, json: await res.json() as T}
}

async function readyMiners (): Promise<Set<Address>> {
  const {json} = await api<{miners: Array<{address: string, models: Array<{id: ModelId}>}>}>('/api/v1/miners')
  const fresh = json.miners.filter(m => m.models.some(s => s.id === toModelId(devnet.modelId)))
  return new Set(fresh.map(m => toAddress(m.address)))
}

async function settled (taskId: string): Promise<TaskRecord> {
  return await until(`task ${taskId} to settle on chain`, SETTLE_TIMEOUT_MS, async () => {
    const {json} = await api<TaskRecord>(`/api/v1/tasks/${taskId}`)
    return json.phase === 'ended' || json.phase === 'expired' ? json : undefined
  })
}

async function direct (prompt: string, maxTokens: number): Promise<string> {
  return (await engine.complete({prompt, seed: 42, params: greedy(maxTokens)})).text
}

/** Checks the chain's record of a task against what the API answered. */
function assertTrail (record: TaskRecord, prompt: string, answer: string, k: number): void {
  const names = record.trail.map(e => e.name)
  const created = record.trail.find(e => e.name === 'TaskCreated')
  assert.equal(created?.args.input, prompt, 'TaskCreated carries the prompt')
  assert.equal(names.filter(n => n === 'TaskPrecommitted').length, k, `${k} precommits`)
  const commits = record.trail.filter(e => e.name === 'TaskCommitted')
  assert.equal(commits.length, k, `${k} commits`)
  for (const c of commits) assert.equal(c.args.output, answer, 'every revealed output is the answer')
  const ended = record.trail.find(e => e.name === 'TaskEnded')
  assert.ok(ended != null, 'task ended on chain')
  const winners = (ended.args.winners as string[]).map(toAddress).sort()
  assert.deepEqual(winners, commits.map(c => toAddress(String(c.args.miner))).sort(), 'the agreeing miners are paid')
  assert.equal(BigInt(String(ended.args.payoutEach)) * BigInt(k) + BigInt(String(ended.args.refund)) <= BigInt(String(created?.args.escrow)), true)
  // Events come in chain order: created, precommits, commits, end.
  const order = ['TaskCreated', 'TaskPrecommitted', 'TaskCommitted', 'TaskEnded'].map(n => names.indexOf(n))
  assert.deepEqual([...order].sort((a, b) => a - b), order, `trail in protocol order: ${names.join(', ')}`)
}

describe('devnet: 1 oracle + 3 miners as processes on a real chain', {timeout: 300_000}, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cortensor-sim-'))
    engine = await LlamaEngine.load({modelPath: SHARED_MODEL_PATH, threads: 1, contextSize: 512, logger: createSilentLogger()})
    devnet = await startDevnet({
      miners: 3, spareMiners: 2, dir, logLevel: 'warn',
      nodeConfig: {stats: {heartbeatIntervalMs: HEARTBEAT_MS}, oracle: {resultTimeoutMs: RESULT_TIMEOUT_MS}}
    })
    unadmitted = await devnet.startMiner({index: 0, admitted: false})
    const all = new Set(devnet.miners.map(m => toAddress(m.info.address)))
    await until('all admitted miners ready at the oracle', READY_TIMEOUT_MS, async () => {
      const ready = await readyMiners()
      return [...all].every(a => ready.has(a)) ? true : undefined
    })
  })

  after(async () => {
    await devnet?.stop()
    await engine?.dispose()
    if (dir != null) await rm(dir, {recursive: true, force: true})
  })

  it('miners started without the models fetched both over IPFS and verified them', async () => {
    for (const miner of devnet.miners) {
      const modelsDir = join(miner.process.dataDir, 'models')
      const files = (await readdir(modelsDir)).filter(f => f.endsWith('.gguf'))
      assert.equal(files.length, 2, `${miner.name} holds both model files`)
      const copies = await Promise.all(files.map(async f => await sha256File(join(modelsDir, f))))
      assert.deepEqual(copies.map(c => c.sha256).sort(), [STORIES_260K.sha256, STORIES_260K_Q4.sha256].sort(), `${miner.name}'s copies are byte-identical`)
      const status = await (await fetch(`${miner.info.api}/api/v1/status`)).json() as {models: Array<{modelId: string, phase: string, path: string}>}
      assert.deepEqual(status.models.map(m => [m.modelId, m.phase]), devnet.modelIds.map(id => [id, 'ready']))
      for (const m of status.models) assert.ok(m.path.startsWith(modelsDir), `${miner.name} loaded its fetched copy, not the shared file`)
    }
  })

  it('NodeStats on chain shows every miner\'s readiness pings', async () => {
    const provider = createProvider(devnet.anvil.rpcUrl, devnet.anvil.chainId)
    const contracts = connectContracts(devnet.deployment, provider)
    try {
      for (const miner of devnet.miners) {
        const stats = await contracts.nodeStats.getFunction('statsOf')(miner.info.address) as {pingCount: bigint, ready: boolean}
        assert.ok(stats.pingCount >= 1n, `${miner.name} pinged`)
        assert.equal(stats.ready, true)
        for (const id of devnet.modelIds) assert.equal(await contracts.nodeStats.getFunction('isReady')(miner.info.address, BigInt(id)), true, `${miner.name} is ready on chain for model ${id}`)
      }
    } finally {
      provider.destroy()
    }
  })

  it('answers a parallel k=3 task with the text node-llama-cpp gives directly, and settles it on chain', async () => {
    const prompt = 'Once upon a time'
    const {status, json} = await api<Completion>('/api/v1/completions', {prompt, max_tokens: 40, mode: 'parallel', redundancy: 3})
    assert.equal(status, 200, JSON.stringify(json))
    assert.equal(json.answer, await direct(prompt, 40))
    assert.equal(json.agreement.status, 'agreed')
    assert.equal(json.agreement.agreeing.length, 3)
    assert.deepEqual([...json.miners].sort(), devnet.miners.map(m => toAddress(m.info.address)).sort())
    assertTrail(await settled(json.task_id), prompt, json.answer, 3)
  })

  it('answers a competing k=1 task with the direct text, and settles it on chain', async () => {
    const prompt = 'The little dog'
    const {status, json} = await api<Completion>('/api/v1/completions', {prompt, max_tokens: 40, mode: 'competing', redundancy: 1})
    assert.equal(status, 200, JSON.stringify(json))
    assert.equal(json.answer, await direct(prompt, 40))
    assertTrail(await settled(json.task_id), prompt, json.answer, 1)
  })

  it('serves the 4-bit model a request names, on that model, and lists every registered model with its miners', async () => {
    const prompt = 'Lily wanted to play'
    const {status, json} = await api<Completion>('/api/v1/completions', {prompt, max_tokens: 40, mode: 'parallel', redundancy: 2, model: STORIES_260K_Q4.name})
    assert.equal(status, 200, JSON.stringify(json))
    const q4 = await LlamaEngine.load({modelPath: SHARED_Q4_MODEL_PATH, threads: 1, contextSize: 512, logger: createSilentLogger()})
    try {
      assert.equal(json.answer, (await q4.complete({prompt, seed: 42, params: greedy(40)})).text, 'the answer is the Q4 file\'s own greedy text')
    } finally {
      await q4.dispose()
    }
    assert.notEqual(json.answer, await direct(prompt, 40), 'and not the F32 model\'s')
    const record = await settled(json.task_id)
    assert.equal(String(record.trail.find(e => e.name === 'TaskCreated')?.args.modelId), devnet.modelIds[1], 'the task names the 4-bit model on chain')
    assertTrail(record, prompt, json.answer, 2)

    const {json: models} = await api<{data: Array<{id: string, cortensor: {model_id: string, quantization: string, miners: number}}>}>('/v1/models')
    assert.deepEqual(models.data.map(m => [m.id, m.cortensor.model_id, m.cortensor.quantization]), [[STORIES_260K.name, devnet.modelIds[0], 'F32'], [STORIES_260K_Q4.name, devnet.modelIds[1], 'Q4_0']])
    for (const m of models.data) assert.ok(m.cortensor.miners >= 3, `${m.id} is served by every miner`)

    const unknown = await api<{error: {code: string, param: string}}>('/api/v1/completions', {prompt, max_tokens: 4, model: 'no-such-model'})
    assert.equal(unknown.status, 404)
    assert.equal(unknown.json.error.code, 'UNKNOWN_MODEL')
  })

  it('never gives a task to a miner the ACL does not admit', async () => {
    const outsider = toAddress(unadmitted.info.address)
    const status = await (await fetch(`${unadmitted.info.api}/api/v1/status`)).json() as {admitted: boolean}
    assert.equal(status.admitted, false)
    assert.equal((await readyMiners()).has(outsider), false, 'the oracle does not even see its heartbeats')
    // Competing tasks are open to any ready miner: the outsider still gets none.
    for (const prompt of ['A cat', 'A big tree']) {
      const {status: code} = await api<Completion>('/api/v1/completions', {prompt, max_tokens: 16, mode: 'competing', redundancy: 2})
      assert.equal(code, 200)
    }
    const {json} = await api<{tasks: TaskRecord[]}>('/api/v1/tasks')
    assert.ok(json.tasks.length >= 4)
    for (const task of json.tasks) {
      assert.equal(task.assignees.includes(outsider), false, `task ${task.taskId} never assigned to the outsider`)
      assert.equal(task.results.some(r => r.miner === outsider), false)
    }
  })

  it('a miner never loads a model whose bytes do not match the registry\'s sha256, and says so', async () => {
    const provider = createProvider(devnet.anvil.rpcUrl, devnet.anvil.chainId)
    const admin = new TxQueue({wallet: devnetWallet('admin', 0, provider), provider})
    const contracts = connectContracts(devnet.deployment, provider)
    let badModelId: bigint
    try {
      // Same bytes (the oracle seeds them), but the registry claims another digest.
      const good = await contracts.modelRegistry.getFunction('modelOf')(BigInt(devnet.modelId)) as {cid: string, sizeBytes: bigint}
      badModelId = await registerModel(admin, contracts, {name: 'stories260K-tampered', cid: good.cid, sha256: `0x${'ab'.repeat(32)}`, sizeBytes: good.sizeBytes, quantization: STORIES_260K.quantization})
    } finally {
      provider.destroy()
    }
    // The miner writes node.json once its API is up, while its model fetch and check run on: if
    // the check fails first, startMiner rejects naming the exit code, else it resolves and the
    // process exits after. Which one is a race; either way the exit code must be 1.
    const started = devnet.startMiner({index: 4, admitted: true, nodeConfig: {models: [{id: Number(badModelId)}]}})
    const node = await started.catch(() => undefined)
    if (node != null) assert.equal(await node.process.exited, 1, 'the miner stops with a failure exit code')
    else await assert.rejects(started, {message: /^miner-4 exited \(1\) before it was up; see /}, 'the miner stops with a failure exit code')
    const log = await readFile(join(devnet.dir, 'miner-4.log'), 'utf8')
    assert.match(log, /HASH_MISMATCH/)
    assert.match(log, /cortensord: stopped: this miner can serve none of its models: model \d+ unavailable/)
    const modelsDir = join(dir, 'miner-4', 'data', 'models')
    const left = await readdir(modelsDir).catch(() => [] as string[])
    assert.deepEqual(left.filter(f => f.endsWith('.gguf') || f.endsWith('.partial')), [], 'no mismatching file is left to load')
  })

  it('reassigns a parallel task whose miner is killed mid-task, and still answers', async () => {
    const victim = devnet.miners[2] as DevnetNode
    // Frozen first, so it is assigned (its heartbeat is still fresh) but can never answer.
    victim.process.child.kill('SIGSTOP')
    const prompt = 'Lily and Ben went to'
    const pending = api<Completion>('/api/v1/completions', {prompt, max_tokens: 40, mode: 'parallel', redundancy: 3})
    await until('the task to be assigned to the frozen miner', 20_000, async () => {
      const {json} = await api<{tasks: TaskRecord[]}>('/api/v1/tasks')
      return json.tasks.some(t => t.prompt === prompt && t.assignees.includes(toAddress(victim.info.address))) ? true : undefined
    })
    victim.process.kill()
    await victim.process.exited
    const spare = await devnet.startMiner({index: 3, admitted: true})
    const {status, json} = await pending
    assert.equal(status, 200, JSON.stringify(json))
    assert.deepEqual(json.reassignments.map(r => [r.from, r.to]), [[toAddress(victim.info.address), toAddress(spare.info.address)]])
    assert.equal(json.answer, await direct(prompt, 40))
    assert.equal(json.agreement.status, 'agreed')
    const record = await settled(json.task_id)
    assert.ok(record.trail.some(e => e.name === 'MinerReassigned'), 'the reassignment is on chain')
    assertTrail(record, prompt, json.answer, 3)
  })
})
