/**
 * A network across hosts, set up as an operator would with the CLI: every node in its own
 * network namespace on an isolated bridge (10.77.0.0/24), the chain on one of them, 2 oracles,
 * 3 miners (one behind a NAT router that drops new inbound connections), two models (F32 and
 * Q4_0) published with `model publish` and fetched by the miners over IPFS across hosts.
 * Needs root (CI runs as root); skipped elsewhere with the reason. `KEEP_LAB=1` keeps the
 * nodes' logs and data after a run.
 */
import assert from 'node:assert/strict'
import type {ChildProcess} from 'node:child_process'
import {createWriteStream} from 'node:fs'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {setTimeout as delay} from 'node:timers/promises'
import type {TaskRecord} from '../../src/actors/oracle/messages.js'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import {greedy} from '../../src/protocols/messages.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {PROJECT_ROOT, SHARED_MODEL_PATH, SHARED_Q4_MODEL_PATH, STORIES_260K, STORIES_260K_Q4} from '../../src/util/paths.js'
import {createLab, netnsUnavailable, type Lab} from '../support/netns.js'
import {until} from '../support/until.js'

const CLI = join(PROJECT_ROOT, 'src', 'runtime', 'cli.ts')
const PROBE = join(PROJECT_ROOT, 'test', 'support', 'labProbe.ts')
const PASSWORD = 'lab password'
const TOKEN = 'lab-token'
const PUBLIC = ['chain', 'oracle1', 'oracle2', 'miner1', 'miner2', 'client'] as const
const MINERS = ['miner1', 'miner2', 'miner3'] as const
const P2P_PORT = 4040
const API_PORT = 8040

interface Node {host: string, address: string, peerId: string, dataDir: string, configFile: string, process?: ChildProcess, info?: {addrs: string[], api: string}}

const unavailable = netnsUnavailable()
let lab: Lab
let dir: string
let rpc: string
let deploymentFile: string
const nodes = new Map<string, Node>()
const modelIds: string[] = []
const processes: ChildProcess[] = []

/** A CLI command run to its end, inside `host`'s namespace. */
async function cortensord (host: string, args: string[]): Promise<string> {
  const {stdout} = await lab.execIn(host, process.execPath, ['--import', 'tsx', CLI, ...args], {cwd: PROJECT_ROOT, timeoutMs: 120_000, env: {...process.env, CORTENSORD_KEY_PASSWORD: ''}})
  return stdout
}

/** A long-running CLI command inside `host`'s namespace; its output goes to `<dir>/<name>.log`. */
function launch (host: string, name: string, args: string[]): ChildProcess {
  const child = lab.spawnIn(host, process.execPath, ['--import', 'tsx', CLI, ...args], {cwd: PROJECT_ROOT, env: {...process.env, CORTENSORD_KEY_PASSWORD: ''}})
  const log = createWriteStream(join(dir, `${name}.log`), {flags: 'a'})
  child.stdout?.pipe(log)
  child.stderr?.pipe(log)
  processes.push(child)
  return child
}

/** One JSON answer of `labProbe.ts` run in the client's namespace (the test's own namespace has no route into the lab). */
async function probe<T> (args: string[]): Promise<T> {
  const {stdout} = await lab.execIn('client', process.execPath, ['--import', 'tsx', PROBE, ...args], {cwd: PROJECT_ROOT, timeoutMs: 150_000})
  return JSON.parse(stdout) as T
}

async function api<T> (oracle: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{status: number, json: T}> {
  const url = `http://${lab.host(oracle).ip}:${API_PORT}${path}`
  return await probe(['http', method, url, TOKEN, ...(body == null ? [] : [JSON.stringify(body)])])
}

async function settled (oracle: string, taskId: string): Promise<TaskRecord> {
  return await until(`task ${taskId} settled by ${oracle}`, 120_000, async () => {
    const {json} = await api<TaskRecord>(oracle, 'GET', `/api/v1/tasks/${taskId}`)
    return json.phase === 'ended' || json.phase === 'expired' ? json : undefined
  })
}

async function direct (modelPath: string, prompt: string, maxTokens: number): Promise<string> {
  const engine = await LlamaEngine.load({modelPath, threads: 1, contextSize: 512, logger: createSilentLogger()})
  try {
    return (await engine.complete({prompt, seed: 42, params: greedy(maxTokens)})).text
  } finally {
    await engine.dispose()
  }
}

function nodeConfig (node: Node, role: 'oracle' | 'miner', extra: Record<string, unknown>): Record<string, unknown> {
  return {
    role, networkId: 'lab', keystore: join(dir, `${node.host}.key.json`), keyPasswordFile: join(dir, 'password'),
    chain: {rpcUrls: [rpc], deploymentFile, pollingIntervalMs: 250},
    p2p: {listen: [`/ip4/0.0.0.0/tcp/${P2P_PORT}`]},
    dataDir: node.dataDir,
    inference: {threads: 1, sequences: 1, contextSize: 512},
    api: {host: '0.0.0.0', port: API_PORT, tokens: [TOKEN]},
    stats: {heartbeatIntervalMs: 1_000, chainPingIntervalMs: 60_000},
    logLevel: 'info',
    ...extra
  }
}

/** Starts `node` with its config file and waits for its node.json (what an operator's supervisor reads). */
async function start (node: Node): Promise<void> {
  await rm(join(node.dataDir, 'node.json'), {force: true})
  node.process = launch(node.host, node.host, ['start', '--config', node.configFile])
  const exited = new Promise<never>((_resolve, reject) => node.process?.once('exit', code => { reject(new Error(`${node.host} exited (${code}) before it was up; see ${dir}/${node.host}.log`)) }))
  node.info = await Promise.race([exited, until(`${node.host} up`, 90_000, async () => {
    const text = await readFile(join(node.dataDir, 'node.json'), 'utf8').catch(() => undefined)
    return text == null ? undefined : JSON.parse(text) as {addrs: string[], api: string}
  })])
}

function dialAddress (node: Node): string {
  return `/ip4/${lab.host(node.host).ip}/tcp/${P2P_PORT}/p2p/${node.peerId}`
}

describe('a network across hosts: CLI set-up, 2 oracles, 3 miners (one behind NAT), two models', {skip: unavailable ?? false, timeout: 900_000}, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cortensor-lab-'))
    lab = await createLab({id: `cx${process.pid % 10_000}`, net: 77, public: [...PUBLIC], natted: ['miner3']})
    await writeFile(join(dir, 'password'), PASSWORD, {mode: 0o600})

    // Keys: one per host, as each operator makes its own.
    for (const host of ['admin', 'oracle1', 'oracle2', ...MINERS]) {
      const out = await cortensord('client', ['keys', 'new', '--out', join(dir, `${host}.key.json`), '--password-file', join(dir, 'password')])
      const address = /address\s+(0x[0-9a-fA-F]{40})/.exec(out)?.[1]
      const peerId = /peer id\s+(\S+)/.exec(out)?.[1]
      assert.ok(address != null && peerId != null, `keys new printed an address and a peer id:\n${out}`)
      if (host !== 'admin') nodes.set(host, {host, address, peerId, dataDir: join(dir, host), configFile: join(dir, `${host}.json`)})
      else nodes.set('admin', {host: 'client', address, peerId, dataDir: '', configFile: ''})
    }
    const all = [...nodes.values()].map(n => n.address)

    // The chain, on its own host, reachable from the others, its state on disk.
    rpc = `http://${lab.host('chain').ip}:8545`
    const chain = launch('chain', 'chain', ['chain', '--host', lab.host('chain').ip, '--port', '8545', '--state', join(dir, 'chain-state.json'), '--fund', all.join(',')])
    const chainExited = new Promise<never>((_resolve, reject) => chain.once('exit', code => { reject(new Error(`the chain exited (${code}); see ${dir}/chain.log`)) }))
    await Promise.race([chainExited, until('the chain answers from another host', 60_000, async () =>
      await probe<{status: number}>(['http', 'POST', rpc, '-', JSON.stringify({jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: []})]).then(r => r.status === 200 ? true : undefined, () => undefined))])

    // Deploy, admit, publish: the admin's commands, from the client host.
    deploymentFile = join(dir, 'deployment.json')
    const admin = ['--rpc', rpc, '--keystore', join(dir, 'admin.key.json'), '--password-file', join(dir, 'password')]
    await cortensord('client', ['network', 'deploy', ...admin, '--out', deploymentFile])
    await cortensord('client', ['network', 'admit', '--role', 'oracle', nodes.get('oracle1')!.address, nodes.get('oracle2')!.address, '--deployment', deploymentFile, ...admin])
    await cortensord('client', ['network', 'admit', '--role', 'miner', ...MINERS.map(m => nodes.get(m)!.address), '--deployment', deploymentFile, ...admin])
    for (const [file, name, quantization] of [[SHARED_MODEL_PATH, STORIES_260K.name, 'F32'], [SHARED_Q4_MODEL_PATH, STORIES_260K_Q4.name, 'Q4_0']] as const) {
      const out = await cortensord('client', ['model', 'publish', file, '--name', name, '--quantization', quantization, '--deployment', deploymentFile, ...admin])
      const id = /model id\s+(\d+)/.exec(out)?.[1]
      assert.ok(id != null, `model publish printed the model id:\n${out}`)
      modelIds.push(id)
    }

    // Oracles hold both files (they seed them and check miners' outputs); miners list the ids only.
    const withFiles = [{id: Number(modelIds[0]), file: SHARED_MODEL_PATH}, {id: Number(modelIds[1]), file: SHARED_Q4_MODEL_PATH}]
    const oracle1 = nodes.get('oracle1')!
    const oracle2 = nodes.get('oracle2')!
    await writeFile(oracle1.configFile, JSON.stringify(nodeConfig(oracle1, 'oracle', {models: withFiles})))
    // Oracle 2 uses short chain windows, so that a task it leaves open passes its deadline soon,
    // and a slower heartbeat (miners count as live for 3 of its intervals: 9 s), so that miners
    // frozen by a test still count as live while it asks oracle 2 for a task.
    await writeFile(oracle2.configFile, JSON.stringify(nodeConfig(oracle2, 'oracle', {
      models: withFiles, p2p: {listen: [`/ip4/0.0.0.0/tcp/${P2P_PORT}`], bootstrap: [dialAddress(oracle1)]},
      oracle: {precommitWindowS: 5, commitWindowS: 10}, stats: {heartbeatIntervalMs: 3_000, chainPingIntervalMs: 60_000}
    })))
    await start(oracle1)
    await start(oracle2)
    for (const m of MINERS) {
      const miner = nodes.get(m)!
      await writeFile(miner.configFile, JSON.stringify(nodeConfig(miner, 'miner', {
        models: modelIds.map(id => ({id: Number(id)})),
        p2p: {listen: [`/ip4/0.0.0.0/tcp/${P2P_PORT}`], bootstrap: [dialAddress(oracle1), dialAddress(oracle2)]}
      })))
    }
    await Promise.all(MINERS.map(async m => { await start(nodes.get(m)!) }))
    for (const oracle of ['oracle1', 'oracle2']) {
      await until(`3 miners serving both models at ${oracle}`, 180_000, async () => {
        const {json} = await api<{miners: Array<{address: string, heartbeatAgeMs: number, models: Array<{id: string}>}>}>(oracle, 'GET', '/api/v1/miners')
        const serving = json.miners.filter(m => m.heartbeatAgeMs < 3_000 && modelIds.every(id => m.models.some(s => s.id === id)))
        return serving.length === 3 ? true : undefined
      })
    }
  })

  after(async () => {
    for (const child of processes) if (child.exitCode == null && child.signalCode == null) child.kill('SIGCONT')
    await Promise.all(processes.filter(c => c.exitCode == null && c.signalCode == null).map(async child => {
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([exited, delay(12_000).then(() => child.kill('SIGKILL'))])
    }))
    await lab?.destroy()
    if (dir != null && process.env.KEEP_LAB !== '1') await rm(dir, {recursive: true, force: true})
  })

  it('nodes announce their lab addresses, never loopback, and their API at a reachable URL', () => {
    for (const name of ['oracle1', 'oracle2', 'miner1', 'miner2']) {
      const node = nodes.get(name)!
      assert.ok(node.info != null)
      assert.ok(node.info.addrs.length > 0)
      for (const addr of node.info.addrs) assert.ok(addr.startsWith(`/ip4/${lab.host(name).ip}/tcp/${P2P_PORT}`), `${name} announces ${addr}`)
      assert.equal(node.info.api, `http://${lab.host(name).ip}:${API_PORT}`)
    }
    for (const addr of nodes.get('miner3')!.info!.addrs) assert.ok(!addr.includes('/ip4/127.'), `the NATed miner announces ${addr}`)
  })

  it('`cortensord status` on another host reports each node healthy with both models ready', async () => {
    for (const name of ['oracle1', 'miner1', 'miner3']) {
      // The NATed miner's API is reachable only from its own host.
      const [from, api] = name === 'miner3' ? ['miner3', `http://127.0.0.1:${API_PORT}`] : ['client', nodes.get(name)!.info!.api]
      const out = await cortensord(from, ['status', '--api', api, '--token', TOKEN, '--json'])
      const report = JSON.parse(out) as {health: {healthy: boolean, problems: string[]}, models: Array<{modelId: string, phase: string}>}
      assert.equal(report.health.healthy, true, `${name}: ${report.health.problems.join('; ')}`)
      assert.deepEqual(report.models.map(m => [m.modelId, m.phase]), modelIds.map(id => [id, 'ready']))
    }
  })

  it('oracle 1 answers a parallel k=3 task from miners on three hosts, one behind NAT, and settles it on chain', async () => {
    const prompt = 'Once upon a time'
    const {status, json} = await api<{task_id: string, answer: string, miners: string[], agreement: {status: string}}>('oracle1', 'POST', '/api/v1/completions', {prompt, max_tokens: 32, mode: 'parallel', redundancy: 3})
    assert.equal(status, 200, JSON.stringify(json))
    assert.equal(json.answer, await direct(SHARED_MODEL_PATH, prompt, 32))
    assert.equal(json.agreement.status, 'agreed')
    assert.deepEqual([...json.miners].sort(), MINERS.map(m => nodes.get(m)!.address.toLowerCase()).sort(), 'the NATed miner took part')
    const record = await settled('oracle1', json.task_id)
    assert.equal(record.phase, 'ended')
    assert.deepEqual(record.trail.filter(e => e.name === 'TaskCommitted').length, 3)
  })

  it('oracle 2 answers a competing task on the 4-bit model named in the request', async () => {
    const prompt = 'The little dog'
    const {status, json} = await api<{task_id: string, answer: string}>('oracle2', 'POST', '/v1/completions', {prompt, max_tokens: 32, model: STORIES_260K_Q4.name, mode: 'competing', redundancy: 2})
    assert.equal(status, 200, JSON.stringify(json))
    const answer = (json as unknown as {choices: Array<{text: string}>, cortensor: {task_id: string}})
    assert.equal(answer.choices[0]?.text, await direct(SHARED_Q4_MODEL_PATH, prompt, 32))
    const record = await settled('oracle2', answer.cortensor.task_id)
    assert.equal(record.phase, 'ended')
    assert.equal(String(record.trail.find(e => e.name === 'TaskCreated')?.args.modelId), modelIds[1])
  })

  it('when oracle 2 dies with a task open, oracle 1 closes the task on chain', async () => {
    const oracle2 = nodes.get('oracle2')!
    const tasksOf2 = async (): Promise<Array<{taskId: string, state: string}>> => await probe(['tasks', rpc, deploymentFile, oracle2.address])
    const before = new Set((await tasksOf2()).map(t => t.taskId))
    await until('a free miner at oracle 2', 30_000, async () => {
      const {json} = await api<{miners: Array<{heartbeatAgeMs: number, freeSlots: number}>}>('oracle2', 'GET', '/api/v1/miners')
      return json.miners.some(m => m.heartbeatAgeMs < 2_000 && m.freeSlots > 0) ? true : undefined
    })
    // Miners frozen: the task oracle 2 creates cannot finish before oracle 2 dies.
    const miners = MINERS.map(m => nodes.get(m)!.process!)
    for (const miner of miners) miner.kill('SIGSTOP')
    const asking = lab.spawnIn('client', process.execPath, ['--import', 'tsx', PROBE, 'http', 'POST', `http://${lab.host('oracle2').ip}:${API_PORT}/api/v1/completions`, TOKEN, JSON.stringify({prompt: 'A cat', max_tokens: 16, mode: 'parallel', redundancy: 1})], {cwd: PROJECT_ROOT})
    let open: {taskId: string, state: string}
    try {
      open = await until('oracle 2 creates a task on chain', 30_000, async () => (await tasksOf2()).find(t => !before.has(t.taskId)))
      oracle2.process!.kill('SIGKILL')
    } finally {
      for (const miner of miners) miner.kill('SIGCONT')
      asking.kill('SIGKILL')
    }
    // Past its deadline and the sweepers' grace for another oracle's task (75 s).
    const closed = await until(`task ${open.taskId} closed on chain by oracle 1`, 200_000, async () => {
      const task = (await tasksOf2()).find(t => t.taskId === open.taskId)
      return task?.state === 'Ended' || task?.state === 'Expired' ? task : undefined
    })
    assert.ok(closed.state === 'Ended' || closed.state === 'Expired')
  })
})
