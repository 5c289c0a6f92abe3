import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {CONTRACT_NAMES} from '../../src/chain/contractNames.js'
import {createKeystore} from '../../src/runtime/keys.js'
import {PROJECT_ROOT} from '../../src/util/paths.js'

const CLI = join(PROJECT_ROOT, 'src', 'runtime', 'cli.ts')
let dir: string

function cortensord (args: string[], env: Record<string, string> = {}): {code: number | null, stdout: string, stderr: string} {
  const run = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {cwd: PROJECT_ROOT, env: {...process.env, CORTENSORD_KEY_PASSWORD: '', ...env}, encoding: 'utf8', timeout: 60_000})
  return {code: run.status, stdout: run.stdout, stderr: run.stderr}
}

/** Every live process below `pid`, from /proc (Linux): the devnet's anvil, nodes and their helpers. */
async function descendants (pid: number): Promise<number[]> {
  const parents = new Map<number, number>()
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => undefined)
    // Field 4 is the parent pid; the command name before it may contain spaces, hence from ')'.
    const ppid = stat == null ? undefined : Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (ppid != null) parents.set(Number(entry), ppid)
  }
  const below = (p: number): number[] => [...parents].filter(([, parent]) => parent === p).flatMap(([child]) => [child, ...below(child)])
  return below(pid)
}

/** A process that still runs: a zombie (exited, not yet reaped by its new parent) does not count. */
async function alive (pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  return stat != null && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
}

/** The processes of `pids` still running, each with its command line, for the failure message. */
async function stillRunning (pids: number[]): Promise<string[]> {
  const running: string[] = []
  for (const pid of pids) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined)
    if (cmdline != null && await alive(pid)) running.push(`${pid} ${cmdline.replaceAll('\0', ' ')}`)
  }
  return running
}

/** Starts `cortensord devnet --miners 1` and resolves once it says the network is ready. */
async function startDevnetProcess (dataDir: string): Promise<{pid: number, output: () => string, exited: Promise<number | null>}> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'devnet', '--miners', '1', '--dir', dataDir], {cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe']})
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
  while (!output.includes('press Ctrl-C to stop')) {
    if (child.exitCode != null) throw new Error(`devnet exited early:\n${output}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  return {pid: child.pid!, output: () => output, exited}
}

/** A loopback TCP port nobody listens on (bound by the OS, then released). */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => { resolve() }))
  const {port} = server.address() as {port: number}
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  return port
}

/** Resolves once `test` holds, polling every 100 ms; rejects naming `what` after `ms`. */
async function waitFor (test: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what()}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

async function waitUntilGone (pids: number[], ms: number): Promise<string[]> {
  const deadline = Date.now() + ms
  while ((await stillRunning(pids)).length > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 200))
  return await stillRunning(pids)
}

/**
 * A miner's config whose chain is a closed port (with credentials in its URL, as public RPC URLs
 * carry them: they must not be logged) and a deployment file that names contracts nobody serves.
 */
async function noChainNode (nodeDir: string): Promise<string> {
  await mkdir(nodeDir, {recursive: true})
  await createKeystore(join(nodeDir, 'key.json'), 'pw')
  const address = (n: number): string => `0x${n.toString(16).padStart(2, '0').repeat(20)}`
  await writeFile(join(nodeDir, 'deployment.json'), JSON.stringify({
    chainId: 31337, contracts: Object.fromEntries(CONTRACT_NAMES.map((name, i) => [name, address(i + 1)])), deployBlock: 0, deployer: address(0x99)
  }))
  const rpcUrl = `http://user:s3cret@127.0.0.1:${await closedPort()}/v2/apikey123`
  await writeFile(join(nodeDir, 'config.json'), JSON.stringify({
    role: 'miner', keystore: 'key.json', dataDir: 'data', chain: {rpcUrls: [rpcUrl], deploymentFile: 'deployment.json'}, models: [{id: 1}],
    p2p: {listen: ['/ip4/127.0.0.1/tcp/0']}, api: {port: 0}
  }))
  return join(nodeDir, 'config.json')
}

describe('cortensord CLI', () => {
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'cortensord-cli-')) })
  after(async () => { await rm(dir, {recursive: true, force: true}) })

  it('creates a keystore and shows the same address and peer id again, never the key', async () => {
    const file = join(dir, 'key.json')
    const created = cortensord(['keys', 'new', '--out', file], {CORTENSORD_KEY_PASSWORD: 'correct horse'})
    assert.equal(created.code, 0, created.stderr)
    const address = /address\s+(0x[0-9a-fA-F]{40})/.exec(created.stdout)?.[1]
    const peerId = /peer id\s+(16Uiu2\w+)/.exec(created.stdout)?.[1]
    assert.ok(address != null && peerId != null, created.stdout)
    const shown = cortensord(['keys', 'show', file], {CORTENSORD_KEY_PASSWORD: 'correct horse'})
    assert.equal(shown.code, 0, shown.stderr)
    assert.ok(shown.stdout.includes(address) && shown.stdout.includes(peerId))
    assert.doesNotMatch(created.stdout + shown.stdout, /privateKey|[0-9a-f]{64}/i, 'no key material printed')
  })

  it('refuses to overwrite a keystore, and names a wrong password', async () => {
    const file = join(dir, 'key.json')
    const again = cortensord(['keys', 'new', '--out', file], {CORTENSORD_KEY_PASSWORD: 'x'})
    assert.equal(again.code, 2)
    assert.match(again.stderr, /already exists; refusing to overwrite/)
    const wrong = cortensord(['keys', 'show', file], {CORTENSORD_KEY_PASSWORD: 'wrong'})
    assert.equal(wrong.code, 2)
    assert.match(wrong.stderr, /wrong password for keystore/)
    const none = cortensord(['keys', 'show', file])
    assert.equal(none.code, 2)
    assert.match(none.stderr, /no key password: set CORTENSORD_KEY_PASSWORD or pass a password file/)
  })

  it('rejects a bad config with the field it belongs to, before touching the network', async () => {
    const config = join(dir, 'config.json')
    await writeFile(config, JSON.stringify({role: 'watcher', keystore: 'k.json', dataDir: 'd', chain: {rpcUrls: ['http://127.0.0.1:1'], deploymentFile: 'x.json'}, models: [{id: 1}]}))
    const bad = cortensord(['start', '--config', config], {CORTENSORD_KEY_PASSWORD: 'x'})
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /config field "role" must be "oracle" or "miner" or "validator", got "watcher"/)
    const flag = cortensord(['start', '--config', config, '--role', 'miner', '--threads', 'many'], {CORTENSORD_KEY_PASSWORD: 'x'})
    assert.equal(flag.code, 2)
    assert.match(flag.stderr, /config field "inference.threads" must be an integer/)
    const unknown = cortensord(['start', '--colour', 'blue'])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /Unknown option '--colour'/)
  })

  it('takes the log format from a flag or CORTENSORD_LOG_FORMAT, and names a bad one', async () => {
    const config = join(dir, 'config-log.json')
    await writeFile(config, JSON.stringify({role: 'miner', keystore: 'k.json', dataDir: 'd', chain: {rpcUrls: ['http://127.0.0.1:1'], deploymentFile: 'x.json'}, models: [{id: 1}]}))
    const flag = cortensord(['start', '--config', config, '--log-format', 'yaml'], {CORTENSORD_KEY_PASSWORD: 'x'})
    assert.equal(flag.code, 2)
    assert.equal(flag.stderr, 'cortensord: config field "logFormat" must be "auto" or "json" or "pretty", got "yaml"\n')
    const env = cortensord(['start', '--config', config], {CORTENSORD_KEY_PASSWORD: 'x', CORTENSORD_LOG_FORMAT: 'text'})
    assert.equal(env.code, 2)
    assert.match(env.stderr, /config field "logFormat" must be "auto" or "json" or "pretty", got "text"/)
    const devnet = cortensord(['devnet', '--log-level', 'verbose'])
    assert.equal(devnet.code, 2)
    assert.equal(devnet.stderr, 'cortensord: --log-level (or CORTENSORD_LOG_LEVEL) must be fatal, error, warn, info, debug, trace, silent; got "verbose"\n')
  })

  it('lists its commands', () => {
    const help = cortensord(['help'])
    assert.equal(help.code, 0)
    for (const command of ['start', 'devnet', 'keys new', 'keys show']) assert.ok(help.stdout.includes(command), command)
  })

  it('start: a chain unreachable at start is said once, and SIGINT still stops the node with exit 0', {timeout: 90_000}, async () => {
    const config = await noChainNode(join(dir, 'no-chain'))
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'start', '--config', config], {
      cwd: PROJECT_ROOT, env: {...process.env, CORTENSORD_KEY_PASSWORD: 'pw', CORTENSORD_LOG_LEVEL: 'info'}, stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
    try {
      const unreachable = (): string[] => output.split('\n').filter(line => line.includes('unreachable'))
      // Starting takes a few seconds on a loaded box (tsx, libp2p); the first failure is immediate.
      await waitFor(() => unreachable().length > 0 || child.exitCode != null, 45_000, () => `no "unreachable" line:\n${output}`)
      // Several retries (every 2 s) later, still the one line.
      await new Promise(resolve => setTimeout(resolve, 6_000))
      const lines = unreachable()
      assert.equal(lines.length, 1, `exactly one "unreachable" line expected:\n${output}`)
      const line = JSON.parse(lines[0] as string) as {level: number, msg: string}
      assert.equal(line.level, 40, 'said at warn')
      assert.match(line.msg, /chain at http:\/\/127\.0\.0\.1:\d+ is unreachable; the node waits for it \(retrying every 2 s\)/)
      assert.doesNotMatch(output, /last known state/, 'there is no known state to keep')
      assert.doesNotMatch(output, /s3cret|apikey123/, 'no credentials in the log')
      const stopAt = Date.now()
      child.kill('SIGINT')
      const code = await Promise.race([exited, new Promise<string>(resolve => setTimeout(() => { resolve('still running after 10 s') }, 10_000))])
      assert.equal(code, 0, output)
      assert.ok(Date.now() - stopAt < 10_000)
    } finally {
      if (child.exitCode == null) child.kill('SIGKILL')
    }
  })

  // `script` (util-linux) runs the node on a pseudo-terminal, as an operator's shell does.
  const noPty = spawnSync('script', ['--version']).status === 0 ? false : 'needs util-linux script for a pseudo-terminal'
  it('start: on a terminal the log is lines a person reads, and Ctrl-C stops the node with exit 0', {timeout: 90_000, skip: noPty}, async () => {
    const config = await noChainNode(join(dir, 'no-chain-tty'))
    // `exec`: `script` runs the command through $SHELL, and a dash (CI has no SHELL, so /bin/sh)
    // stays as the node's parent and dies of the same Ctrl-C: its 130, not the node's exit, came back.
    // SHELL is set so the test runs the same under any login shell.
    const command = `exec ${[process.execPath, '--import', 'tsx', CLI, 'start', '--config', config].map(arg => `'${arg.replaceAll("'", "'\\''")}'`).join(' ')}`
    const child = spawn('script', ['--quiet', '--return', '--flush', '--command', command, '/dev/null'], {
      cwd: PROJECT_ROOT, env: {...process.env, SHELL: '/bin/sh', CORTENSORD_KEY_PASSWORD: 'pw', CORTENSORD_LOG_LEVEL: 'info', NO_COLOR: '1'}, stdio: ['pipe', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
    try {
      await waitFor(() => /unreachable/.test(output) || child.exitCode != null, 45_000, () => `no "unreachable" line:\n${output}`)
      const lines = output.split(/\r?\n/).filter(line => line.trim() !== '')
      for (const line of lines) assert.doesNotMatch(line, /^\s*\{/, `a JSON line on a terminal:\n${output}`)
      assert.ok(lines.some(line => /^\[\d{2}:\d{2}:\d{2}\.\d{3}\] WARN: .*chain at http:\/\/127\.0\.0\.1:\d+ is unreachable/.test(line)), output)
      assert.doesNotMatch(output, /s3cret|apikey123/, 'no credentials in the log')
      // Ctrl-C at the terminal: the pseudo-terminal sends SIGINT to the node.
      child.stdin.write('\x03')
      const code = await Promise.race([exited, new Promise<string>(resolve => setTimeout(() => { resolve('still running after 10 s') }, 10_000))])
      assert.equal(code, 0, output)
    } finally {
      if (child.exitCode == null) child.kill('SIGKILL')
    }
  })

  // Bounded: a devnet that never becomes ready or never stops must fail the test, not hang CI.
  it('devnet: Ctrl-C stops every process it started and exits 130', {timeout: 120_000}, async () => {
    const devnet = await startDevnetProcess(join(dir, 'devnet-int'))
    const started = await descendants(devnet.pid)
    assert.ok(started.length >= 3, `anvil, oracle and miner expected, found ${started.length} processes`)
    process.kill(devnet.pid, 'SIGINT')
    assert.equal(await devnet.exited, 130)
    assert.match(devnet.output(), /all processes stopped/)
    assert.deepEqual(await stillRunning(started), [], 'processes left behind')
  })

  it('devnet: a devnet killed outright (SIGKILL) still leaves no process behind', {timeout: 120_000}, async () => {
    const devnet = await startDevnetProcess(join(dir, 'devnet-kill'))
    const started = await descendants(devnet.pid)
    assert.ok(started.length >= 3, `anvil, oracle and miner expected, found ${started.length} processes`)
    process.kill(devnet.pid, 'SIGKILL')
    await devnet.exited
    // The nodes shut down cleanly (they may still be settling), anvil gets its parent-death signal.
    assert.deepEqual(await waitUntilGone(started, 15_000), [], 'processes left behind')
  })
})
