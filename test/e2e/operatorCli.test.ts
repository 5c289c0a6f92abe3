import assert from 'node:assert/strict'
import {spawn, type ChildProcess} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {createServer as createHttpServer} from 'node:http'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {createHeliaLight} from 'helia'
import {HeliaModelStore} from '../../src/model/heliaModelStore.js'
import {explainEarning} from '../../src/operator/earningReport.js'
import {toAddress} from '../../src/protocols/address.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {PROJECT_ROOT, SHARED_Q4_MODEL_PATH} from '../../src/util/paths.js'

/**
 * The operator commands as an operator runs them: each one its own `cortensord` process against
 * a `cortensord chain` process, with a keystore made by `keys new`.
 */

const CLI = join(PROJECT_ROOT, 'src', 'runtime', 'cli.ts')
const MODEL = SHARED_Q4_MODEL_PATH
const PASSWORD = 'operator test password'

interface Run {code: number | null, stdout: string, stderr: string}

/** One CLI run; the environment carries none of the operator's defaults, so each test says what it uses. */
async function cortensord (args: string[]): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: PROJECT_ROOT,
    env: {...process.env, CORTENSORD_KEY_PASSWORD: '', CORTENSORD_RPC_URL: '', CORTENSORD_DEPLOYMENT: '', CORTENSORD_KEYSTORE: ''},
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  clearTimeout(timer)
  return {code, stdout, stderr}
}

/** A known failure: exit 2 and exactly one line on stderr, `cortensord: ...`. */
function assertOneLine (run: Run, pattern: RegExp): void {
  assert.equal(run.code, 2, `exit code\n${run.stdout}${run.stderr}`)
  const lines = run.stderr.trimEnd().split('\n')
  assert.equal(lines.length, 1, `one line on stderr, got:\n${run.stderr}`)
  assert.match(lines[0]!, /^cortensord: /)
  assert.match(lines[0]!, pattern)
}

/** A loopback TCP port nobody listens on (bound by the OS, then released). */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => { resolve() }))
  const {port} = server.address() as {port: number}
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  return port
}

interface ChainProcess {child: ChildProcess, output: () => string, exited: Promise<number | null>}

/** Starts `cortensord chain` and resolves once it says it is ready. */
async function startChain (args: string[]): Promise<ChainProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'chain', ...args], {cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe']})
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
  const deadline = Date.now() + 20_000
  while (!output.includes('ready; SIGINT or SIGTERM stops the chain')) {
    if (child.exitCode != null) throw new Error(`chain exited early:\n${output}`)
    if (Date.now() > deadline) throw new Error(`chain not ready after 20 s:\n${output}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return {child, output: () => output, exited}
}

async function stopChain (chain: ChainProcess): Promise<void> {
  chain.child.kill('SIGTERM')
  assert.equal(await chain.exited, 0, chain.output())
  assert.match(chain.output(), /stopped; state written to /)
}

interface Info {
  models: Array<{id: string, name: string, quantization: string, sizeBytes: number, cid: string, sha256: string, active: boolean, registeredAt: number}>
  accounts: Array<{address: string, roles: string[]}>
}

describe('cortensord operator commands', () => {
  let dir: string
  let port: number
  let rpc: string
  let admin: string
  let chain: ChainProcess | undefined
  let signer: string[]
  let deployment: string
  const miner = '0x' + '42'.repeat(20)

  const info = async (): Promise<Info> => {
    const run = await cortensord(['network', 'info', '--json', '--rpc', rpc, '--deployment', deployment])
    assert.equal(run.code, 0, run.stderr)
    return JSON.parse(run.stdout) as Info
  }
  const publishArgs = (): string[] => ['model', 'publish', MODEL, '--name', 'stories260K-Q4_0', '--quantization', 'Q4_0', ...signer, '--deployment', deployment]
  const sha256sum = async (): Promise<string> => createHash('sha256').update(await readFile(MODEL)).digest('hex')
  const account = (i: Info, address: string): Info['accounts'][number] | undefined => i.accounts.find(a => a.address === address.toLowerCase())

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cortensord-operator-'))
    await writeFile(join(dir, 'password'), `${PASSWORD}\n`, {mode: 0o600})
    const created = await cortensord(['keys', 'new', '--out', join(dir, 'admin.json'), '--password-file', join(dir, 'password')])
    assert.equal(created.code, 0, created.stderr)
    admin = /address\s+(0x[0-9a-fA-F]{40})/.exec(created.stdout)![1]!
    port = await freePort()
    rpc = `http://127.0.0.1:${port}`
    signer = ['--rpc', rpc, '--keystore', join(dir, 'admin.json'), '--password-file', join(dir, 'password')]
    deployment = join(dir, 'deployment.json')
  })

  after(async () => {
    if (chain?.child.exitCode == null) chain?.child.kill('SIGTERM')
    await chain?.exited
    await rm(dir, {recursive: true, force: true})
  })

  it('runs a chain, deploys, admits and publishes; network info shows it all', async () => {
    chain = await startChain(['--port', String(port), '--state', join(dir, 'chain', 'state.json'), '--fund', admin])
    assert.match(chain.output(), new RegExp(`rpc\\s+${rpc}`))
    assert.match(chain.output(), /chain id\s+31337/)
    assert.match(chain.output(), new RegExp(`funded\\s+${admin.toLowerCase()}`))

    const deployed = await cortensord(['network', 'deploy', ...signer, '--out', deployment])
    assert.equal(deployed.code, 0, deployed.stderr)
    assert.match(deployed.stdout, /deploy acl\s+tx 0x[0-9a-f]{64} block \d+/)
    assert.match(deployed.stdout, new RegExp(`wrote ${deployment}`))
    const file = JSON.parse(await readFile(deployment, 'utf8')) as {chainId: number, deployer: string}
    assert.deepEqual([file.chainId, file.deployer], [31337, admin.toLowerCase()])
    assertOneLine(await cortensord(['network', 'deploy', ...signer, '--out', deployment]), /already holds the network deployed on chain 31337 .*; refusing to overwrite it/)

    // Listed twice: the second is reported as already admitted, not an error.
    const admitted = await cortensord(['network', 'admit', '--role', 'miner', miner, miner, ...signer, '--deployment', deployment])
    assert.equal(admitted.code, 0, admitted.stderr)
    assert.match(admitted.stdout, /acl\.grantRole\s+tx 0x[0-9a-f]{64} block \d+/)
    assert.match(admitted.stdout, new RegExp(`${miner} admitted as miner\n${miner} is already admitted as miner\n`))

    const published = await cortensord(publishArgs())
    assert.equal(published.code, 0, published.stderr)
    assert.match(published.stdout, /model id\s+1\n/)
    assert.match(published.stdout, new RegExp(`sha256\\s+${await sha256sum()}\\n`))
    // The CID nodes compute: their model store over an in-memory helia, as the devnet seeds it.
    const helia = createHeliaLight()
    const expected = await new HeliaModelStore({host: helia, modelDir: join(dir, 'models'), logger: createSilentLogger()}).addFile(MODEL)
    await helia.stop()
    assert.match(published.stdout, new RegExp(`cid\\s+${expected.cid}\\n`))

    const shown = await info()
    assert.equal(shown.models.length, 1)
    const {registeredAt, ...model} = shown.models[0]!
    assert.ok(registeredAt > 0)
    assert.deepEqual(model, {id: '1', name: 'stories260K-Q4_0', quantization: 'Q4_0', sizeBytes: expected.sizeBytes, cid: expected.cid, sha256: await sha256sum(), active: true})
    assert.deepEqual(account(shown, miner)?.roles, ['miner'])
    assert.deepEqual(account(shown, admin)?.roles, ['admin'])
  })

  it('keeps the model and the grant across a chain restart; revoke removes the grant', async () => {
    assert.ok(chain != null, 'the chain of the previous test')
    await stopChain(chain)
    chain = await startChain(['--port', String(port), '--state', join(dir, 'chain', 'state.json'), '--fund', admin])
    assert.match(chain.output(), /\(loaded; written every 5 s and at stop\)/)
    const table = await cortensord(['network', 'info', '--rpc', rpc, '--deployment', deployment])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /#1 stories260K-Q4_0\s+Q4_0/)
    assert.match(table.stdout, new RegExp(`${miner}\\s+miner\\s+not registered`))
    const republished = await cortensord(publishArgs())
    assert.equal(republished.code, 0, republished.stderr)
    assert.match(republished.stdout, /stories260K-Q4_0 with this sha256 is already registered as model id 1\n/)

    const revoked = await cortensord(['network', 'revoke', miner, admin, ...signer, '--deployment', deployment])
    assert.equal(revoked.code, 0, revoked.stderr)
    assert.match(revoked.stdout, new RegExp(`${miner} no longer miner`))
    assert.match(revoked.stdout, new RegExp(`${admin.toLowerCase()} stays admin: it is the network's last admin`))
    const after = await info()
    assert.deepEqual(account(after, miner)?.roles, [])
    assert.deepEqual(account(after, admin)?.roles, ['admin'])
  })

  it('answers bad input with one line naming what was wrong, exit 2', async () => {
    const network = ['--deployment', deployment]
    const preset = join(PROJECT_ROOT, 'config', 'arbitrum-sepolia.json')
    const wrongChain = join(dir, 'wrong-chain.json')
    await writeFile(wrongChain, JSON.stringify({...JSON.parse(await readFile(deployment, 'utf8')), chainId: 5}))
    const [role, password, unset, unreachable, chainId] = await Promise.all([
      cortensord(['network', 'admit', '--role', 'farmer', miner, ...signer, ...network]),
      cortensord(['network', 'admit', '--role', 'miner', miner, '--rpc', rpc, '--keystore', join(dir, 'admin.json'), '--password-file', join(dir, 'no-such-password'), ...network]),
      cortensord(['network', 'info', '--deployment', preset]),
      cortensord(['network', 'info', '--rpc', `http://127.0.0.1:${await freePort()}`, ...network]),
      cortensord(['network', 'info', '--rpc', rpc, '--deployment', wrongChain])
    ])
    assertOneLine(role, /unknown role "farmer"/)
    assertOneLine(password, new RegExp(`cannot read password file ${join(dir, 'no-such-password')}: no such file`))
    assertOneLine(unset, /arbitrum-sepolia\.json: contracts\.acl is not set: .*cortensord network deploy/)
    assertOneLine(unreachable, /cannot reach the chain RPC at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/)
    assertOneLine(chainId, /wrong chain: .* serves chain id 31337, but .*wrong-chain\.json is for chain id 5/)
    for (const run of [role, password, unset, unreachable, chainId]) assert.doesNotMatch(run.stdout + run.stderr, new RegExp(PASSWORD))
  })

  it('status: 0 when healthy, 1 when not admitted, a model failed or a reason not to earn holds (with its fix), 2 when unreachable', async () => {
    // Stands in for a node's API: the body has the shape of node.ts's `GET /api/v1/status`.
    let body: Record<string, unknown> = {}
    const server = createHttpServer((req, res) => {
      res.writeHead(req.headers.authorization === 'Bearer t0ken' ? 200 : 401, {'content-type': 'application/json'}).end(JSON.stringify(body))
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => { resolve() }))
    const api = `http://127.0.0.1:${(server.address() as {port: number}).port}`
    try {
      const node = {role: 'miner', address: miner, peerId: '16Uiu2HAm', networkId: 'test', chainId: 31337, peers: 2, stats: {heartbeatsSent: 3, chainPings: 1}}
      body = {...node, admitted: true, models: [{modelId: '1', phase: 'ready'}, {modelId: '2', phase: 'fetching', progress: {bytes: 1, total: 4}}]}
      const healthy = await cortensord(['status', '--api', api, '--token', 't0ken'])
      assert.equal(healthy.code, 0, healthy.stderr)
      assert.match(healthy.stdout, /healthy\s+yes/)
      body = {...node, admitted: false, models: [{modelId: '1', phase: 'ready'}, {modelId: '2', phase: 'failed', error: 'sha256 mismatch'}]}
      const sick = await cortensord(['status', '--api', api, '--token', 't0ken', '--json'])
      assert.equal(sick.code, 1, sick.stderr)
      const report = JSON.parse(sick.stdout) as {health: {healthy: boolean, problems: string[]}}
      assert.equal(report.health.healthy, false)
      assert.equal(report.health.problems.length, 2, report.health.problems.join('\n'))
      // Healthy, but a reason it does not earn holds: exit 3, the finding printed with its fix.
      const broke = explainEarning({
        now: Date.now(), role: 'miner', address: toAddress(miner), upSince: 0, heartbeatIntervalMs: 2_000, aclGranted: true, registered: true,
        models: [{modelId: '1', phase: 'ready', served: true}], peers: 2, oracles: [{oracle: toAddress(miner), at: Date.now(), hearsMe: true}],
        chain: {lastOkAt: Date.now(), balanceWei: 0n, maxFeePerGasWei: 10n ** 9n},
        ledger: {totals: {won: 0, lost: 0, expired: 0, rejected: 0, disagreed: 0}, earnedWei: '0', since: Date.parse('2026-11-20T08:30:00Z'), recent: []}
      })
      body = {...node, admitted: true, models: [{modelId: '1', phase: 'ready'}], earning: broke}
      const poor = await cortensord(['status', '--api', api, '--token', 't0ken'])
      assert.equal(poor.code, 3, poor.stderr)
      assert.match(poor.stdout, /healthy\s+yes/)
      assert.match(poor.stdout, /earning\s+no: earned 0 ETH since 2026-11-20 08:30 UTC, balance 0 ETH/)
      assert.match(poor.stdout, /finding NO_GAS: the wallet 0x[0-9a-f]{40} holds 0 ETH/)
      assert.match(poor.stdout, /fix: send at least 0\.0052 ETH to 0x[0-9a-f]{40}/)
    } finally {
      server.close()
    }
    assertOneLine(await cortensord(['status', '--api', `http://127.0.0.1:${await freePort()}`]), /cannot reach the node at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/)
  })
})
