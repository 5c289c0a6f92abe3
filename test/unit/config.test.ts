import assert from 'node:assert/strict'
import {mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {buildConfig, ConfigError, fromDottedEntries, readConfigFile} from '../../src/runtime/config.js'
import {PROJECT_ROOT} from '../../src/util/paths.js'

const minimal = {role: 'miner', keystore: '/k.json', dataDir: '/d', chain: {rpcUrl: 'http://127.0.0.1:8545', deploymentFile: '/dep.json'}, model: {id: 1}}

describe('config', () => {
  it('fills defaults and lets env and flags override the file, field by field', () => {
    const config = buildConfig([minimal, fromDottedEntries({'api.port': '9000'}), fromDottedEntries({'inference.threads': '2', 'p2p.bootstrap': '/ip4/1.2.3.4/tcp/1/p2p/x,/ip4/5.6.7.8/tcp/2/p2p/y'})])
    assert.equal(config.api.port, 9000)
    assert.equal(config.inference.threads, 2)
    assert.equal(config.inference.sequences, 2, 'default kept')
    assert.deepEqual(config.p2p.bootstrap, ['/ip4/1.2.3.4/tcp/1/p2p/x', '/ip4/5.6.7.8/tcp/2/p2p/y'])
    assert.equal(config.networkId, 'devnet')
  })

  it('defaults to stable ports, so a restarted node keeps its dial address and API URL', () => {
    const config = buildConfig([minimal])
    assert.deepEqual(config.p2p.listen, ['/ip4/0.0.0.0/tcp/4040'])
    assert.equal(config.api.host, '127.0.0.1')
    assert.equal(config.api.port, 8040)
    // Building again (a restart) gives the same ports: nothing in the defaults is picked at random.
    assert.deepEqual(buildConfig([minimal]).p2p.listen, config.p2p.listen)
  })

  it('still takes port 0 (any free port) for the API and p2p', () => {
    const config = buildConfig([minimal, fromDottedEntries({'api.port': '0', 'p2p.listen': '/ip4/127.0.0.1/tcp/0'})])
    assert.equal(config.api.port, 0)
    assert.deepEqual(config.p2p.listen, ['/ip4/127.0.0.1/tcp/0'])
  })

  it('rejects an API port out of range, naming the field', () => {
    assert.throws(() => buildConfig([minimal, {api: {port: 65_536}}]), (err: ConfigError) => err.code === 'CONFIG_INVALID' && /"api.port" must be an integer in \[0, 65535\], got 65536/.test(err.message))
  })

  it('does not share the defaults between configs (a devnet node\'s ports never leak into DEFAULTS)', () => {
    const first = buildConfig([minimal])
    first.p2p.listen.push('/ip4/127.0.0.1/tcp/1')
    assert.deepEqual(buildConfig([minimal]).p2p.listen, ['/ip4/0.0.0.0/tcp/4040'])
  })

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['role', {role: 'watcher'}, /"role" must be "oracle" or "miner" or "validator", got "watcher"/],
    ['threads', {inference: {threads: 0}}, /"inference.threads" must be an integer in \[1, 256\], got 0/],
    ['rpc url', {chain: {rpcUrl: 'localhost:8545'}}, /"chain.rpcUrl" must be an http\(s\) or ws\(s\) URL/],
    ['bootstrap', {p2p: {bootstrap: ['1.2.3.4:4001']}}, /"p2p.bootstrap" multiaddr must start with "\/"/],
    ['missing keystore', {keystore: undefined}, /"keystore" must be a non-empty string, got nothing/],
    ['escrow', {chain: {taskEscrowWei: '1e18'}}, /"chain.taskEscrowWei" must be a decimal amount of wei/]
  ]
  for (const [name, patch, message] of bad) {
    it(`rejects a bad ${name} with an error naming the field`, () => {
      const layer = structuredClone(minimal) as Record<string, unknown>
      for (const [k, v] of Object.entries(patch)) {
        if (v === undefined) delete layer[k]
        else layer[k] = typeof v === 'object' && !Array.isArray(v) ? {...(layer[k] as object), ...v} : v
      }
      assert.throws(() => buildConfig([layer]), (err: ConfigError) => err.code === 'CONFIG_INVALID' && message.test(err.message))
    })
  }

  it('reads the example configs, resolving their paths against the file', () => {
    for (const role of ['miner', 'oracle']) {
      const file = join(PROJECT_ROOT, 'config', `${role}.example.json`)
      const config = buildConfig([readConfigFile(file)])
      assert.equal(config.role, role)
      assert.ok(config.keystore.startsWith(PROJECT_ROOT), 'relative paths are resolved against the config file')
    }
  })

  it('names the file when it is not JSON', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'cfg-')), 'bad.json')
    await writeFile(file, '{role: miner}')
    assert.throws(() => readConfigFile(file), (err: ConfigError) => err.code === 'CONFIG_UNREADABLE' && err.message.includes(file))
  })
})
