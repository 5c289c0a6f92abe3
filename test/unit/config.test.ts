import assert from 'node:assert/strict'
import {mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {API_LIMIT_DEFAULTS} from '../../src/api/apiLimits.js'
import {buildConfig, ENV_FIELDS, fromDottedEntries, MAX_RPC_URLS, readConfigFile} from '../../src/runtime/config.js'
import {ConfigError} from '../../src/runtime/configError.js'
import {PROJECT_ROOT} from '../../src/util/paths.js'

const minimal = {role: 'miner', keystore: '/k.json', dataDir: '/d', chain: {rpcUrls: ['http://127.0.0.1:8545'], deploymentFile: '/dep.json'}, models: [{id: 1}]}

/** Asserts that building `layers` fails with CONFIG_INVALID on `field`, in one line matching `message`. */
function rejects (layers: Array<Record<string, unknown>>, field: string, message: RegExp): void {
  assert.throws(() => buildConfig(layers), (err: ConfigError) => {
    assert.ok(err instanceof ConfigError, String(err))
    assert.equal(err.code, 'CONFIG_INVALID')
    assert.equal(err.type.code === 'CONFIG_INVALID' ? err.type.field : undefined, field)
    assert.match(err.message, message)
    assert.doesNotMatch(err.message, /\n/, 'one line')
    return true
  })
}

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
    ['rpc url', {chain: {rpcUrls: ['localhost:8545']}}, /"chain.rpcUrls\[0\]" must be an http\(s\) URL/],
    ['bootstrap', {p2p: {bootstrap: ['1.2.3.4:4001']}}, /"p2p.bootstrap\[0\]" must be a multiaddr \(starting with "\/"\), got "1.2.3.4:4001"/],
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

  describe('unknown fields', () => {
    const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
      ['a near miss in a section', {p2p: {bootstrapp: ['/ip4/1.2.3.4/tcp/1']}}, 'p2p.bootstrapp', /^config field "p2p.bootstrapp" is not a config field; did you mean "p2p.bootstrap"\?$/],
      ['two letters swapped', {api: {hots: '0.0.0.0'}}, 'api.hots', /is not a config field; did you mean "api.host"\?$/],
      ['the old single RPC URL field', {chain: {rpcUrl: 'http://127.0.0.1:8545'}}, 'chain.rpcUrl', /did you mean "chain.rpcUrls"\?$/],
      ['a section field at the top', {bootstrap: []}, 'bootstrap', /did you mean "p2p.bootstrap"\?$/],
      ['a field in the wrong case', {inference: {Threads: 2}}, 'inference.Threads', /did you mean "inference.threads"\?$/],
      ['a name like nothing known', {colour: 'blue'}, 'colour', /^config field "colour" is not a config field$/],
      ['a field under a value', {oracle: {verifier: 'off', auditRate: 0, extra: {x: 1}}}, 'oracle.extra', /is not a config field$/],
      ['the old single model', {model: {id: 1}}, 'model', /did you mean "models"\?$/]
    ]
    for (const [name, layer, field, message] of cases) {
      it(`rejects ${name}, naming the full dotted field`, () => { rejects([minimal, layer], field, message) })
    }

    it('rejects a section given as a value', () => {
      rejects([minimal, {p2p: '/ip4/1.2.3.4/tcp/1'}], 'p2p', /^config field "p2p" must be an object \{listen, announce, bootstrap\}, got "\/ip4/)
    })

    it('rejects unknown fields of a model entry', () => {
      rejects([{...minimal, models: [{id: 1, fiel: '/m.gguf'}]}], 'models[0].fiel', /^config field "models\[0\].fiel" is not a config field; did you mean "models\[0\].file"\?$/)
    })

    it('rejects them from the environment and flags too, and a `__proto__` key in a file', () => {
      rejects([minimal, fromDottedEntries({'api.hots': '0.0.0.0'})], 'api.hots', /did you mean "api.host"/)
      rejects([minimal, JSON.parse('{"__proto__": {"role": "oracle"}}') as Record<string, unknown>], '__proto__', /is not a config field/)
    })

    it('maps every environment variable onto a known field', () => {
      for (const field of Object.values(ENV_FIELDS)) {
        // The value may be bad for the field; the field itself must be known.
        try {
          buildConfig([minimal, fromDottedEntries({[field]: '1'})])
        } catch (err) {
          assert.doesNotMatch((err as Error).message, /is not a config field/, field)
        }
      }
      assert.equal(ENV_FIELDS.CORTENSORD_RPC_URL, 'chain.rpcUrls')
      assert.equal(ENV_FIELDS.CORTENSORD_ANNOUNCE, 'p2p.announce')
    })
  })

  describe('chain.rpcUrls', () => {
    it('takes a list, a single string (a one-element list) and a comma list (env, --rpc)', () => {
      assert.deepEqual(buildConfig([minimal, {chain: {rpcUrls: ['https://a.example/rpc', 'http://b.example:8545']}}]).chain.rpcUrls, ['https://a.example/rpc', 'http://b.example:8545'])
      assert.deepEqual(buildConfig([minimal, {chain: {rpcUrls: 'https://a.example/v2/key'}}]).chain.rpcUrls, ['https://a.example/v2/key'])
      assert.deepEqual(buildConfig([minimal, fromDottedEntries({'chain.rpcUrls': 'https://a.example, http://b.example:8545'})]).chain.rpcUrls, ['https://a.example', 'http://b.example:8545'])
    })

    it(`takes 1 to ${MAX_RPC_URLS} URLs`, () => {
      const urls = (n: number): string[] => Array.from({length: n}, (_, i) => `https://rpc${i}.example`)
      assert.equal(buildConfig([minimal, {chain: {rpcUrls: urls(MAX_RPC_URLS)}}]).chain.rpcUrls.length, MAX_RPC_URLS)
      rejects([minimal, {chain: {rpcUrls: urls(MAX_RPC_URLS + 1)}}], 'chain.rpcUrls', /must be a list of 1 to 20 http\(s\) RPC URLs, got a list of 21$/)
      rejects([minimal, {chain: {rpcUrls: []}}], 'chain.rpcUrls', /must be a list of 1 to 20 http\(s\) RPC URLs, got a list of 0$/)
      rejects([minimal, fromDottedEntries({'chain.rpcUrls': ' , '})], 'chain.rpcUrls', /got a list of 0$/)
    })

    it('names the bad URL by its index; WebSocket URLs are refused (the provider polls over HTTP)', () => {
      rejects([minimal, {chain: {rpcUrls: ['https://a.example', 'wss://b.example']}}], 'chain.rpcUrls[1]', /"chain.rpcUrls\[1\]" must be an http\(s\) URL \(WebSocket endpoints are not supported\), got "wss:\/\/b.example"/)
      rejects([minimal, {chain: {rpcUrls: ['http://']}}], 'chain.rpcUrls[0]', /must be an http\(s\) URL/)
      rejects([minimal, {chain: {rpcUrls: [8545]}}], 'chain.rpcUrls[0]', /"chain.rpcUrls\[0\]" must be an http\(s\) URL \(WebSocket endpoints are not supported\), got 8545$/)
    })
  })

  describe('p2p.announce', () => {
    it('is empty by default and takes a comma list from the environment', () => {
      assert.deepEqual(buildConfig([minimal]).p2p.announce, [])
      const config = buildConfig([minimal, fromDottedEntries({'p2p.announce': '/ip4/203.0.113.7/tcp/4040,/dns4/node.example.com/tcp/4040'})])
      assert.deepEqual(config.p2p.announce, ['/ip4/203.0.113.7/tcp/4040', '/dns4/node.example.com/tcp/4040'])
    })

    it('refuses a wildcard address and what is no multiaddr', () => {
      rejects([minimal, {p2p: {announce: ['/ip4/0.0.0.0/tcp/4040']}}], 'p2p.announce[0]', /"p2p.announce\[0\]" is "\/ip4\/0.0.0.0\/tcp\/4040", which no peer can dial/)
      rejects([minimal, {p2p: {announce: ['/ip4/203.0.113.7/tcp/4040', '/ip6/::/tcp/4040']}}], 'p2p.announce[1]', /which no peer can dial/)
      rejects([minimal, {p2p: {announce: ['/ip4/203.0.113/tcp/4040']}}], 'p2p.announce[0]', /is not a multiaddr: "\/ip4\/203.0.113\/tcp\/4040"/)
      rejects([minimal, {p2p: {announce: ['203.0.113.7:4040']}}], 'p2p.announce[0]', /must be a multiaddr \(starting with "\/"\)/)
    })
  })

  it('refuses an oracle API open beyond loopback without a bearer token (every request spends escrow)', () => {
    const oracle = {...minimal, role: 'oracle'}
    rejects([oracle, {api: {host: '0.0.0.0'}}], 'api.tokens', /must list at least one bearer token when the oracle's API listens beyond loopback \(api\.host "0\.0\.0\.0"\)/)
    assert.equal(buildConfig([oracle, {api: {host: '0.0.0.0', tokens: ['t']}}]).api.host, '0.0.0.0')
    rejects([oracle, {api: {host: '0.0.0.0', tokens: ['t', '']}}], 'api.tokens[1]', /"api.tokens\[1\]" must be a non-empty bearer token, got ""$/)
    assert.deepEqual(buildConfig([oracle]).api.tokens, [], 'loopback without tokens stays possible (a devnet, a local client)')
    assert.equal(buildConfig([minimal, {api: {host: '0.0.0.0'}}]).api.host, '0.0.0.0', 'a miner\'s API spends nothing')
  })

  it('takes models as a list of {id, file} or a comma list of ID[=FILE], each id once', () => {
    assert.deepEqual(buildConfig([minimal, fromDottedEntries({models: '1,2=/m/q4.gguf'})]).models, [{id: '1'}, {id: '2', file: '/m/q4.gguf'}])
    rejects([minimal, {models: [{id: 1}, {id: '1'}]}], 'models', /"models" lists model 1 twice$/)
    rejects([minimal, {models: []}], 'models', /must be a list of 1 to 32 registry models this node serves, e\.g\. \[\{"id": 1\}\] or "1,2=\/path\/model\.gguf", got a list of 0$/)
    rejects([minimal, {models: [{id: 0}]}], 'models[0].id', /"models\[0\].id" must be a registry model id \(a positive integer\), got 0$/)
    rejects([minimal, {models: Array.from({length: 33}, (_, i) => ({id: i + 1}))}], 'models', /got a list of 33$/)
    rejects([minimal, {models: [{id: 1e30}]}], 'models[0].id', /must be a registry model id \(a positive integer\), got 1e\+30$/)
    rejects([minimal, {models: [5]}], 'models[0]', /"models\[0\]" must be \{"id": N, "file"\?: PATH\}, got 5$/)
    rejects([minimal, {inference: {memoryBudgetMiB: -1}}], 'inference.memoryBudgetMiB', /must be a number of MiB >= 0/)
  })

  describe('api.limits', () => {
    it('keeps the API\'s defaults for the limits a config leaves out', () => {
      const limits = buildConfig([minimal, {api: {limits: {perTokenConcurrency: 4, requestTimeoutMs: 20_000}}}]).api.limits
      assert.deepEqual(limits, {...API_LIMIT_DEFAULTS, perTokenConcurrency: 4, requestTimeoutMs: 20_000})
      assert.deepEqual(buildConfig([minimal]).api.limits, API_LIMIT_DEFAULTS)
    })

    it('takes each as a positive integer, from a file or as text', () => {
      assert.equal(buildConfig([minimal, fromDottedEntries({'api.limits.perTokenRequestsPerMinute': '60'})]).api.limits.perTokenRequestsPerMinute, 60)
      rejects([minimal, {api: {limits: {perTokenConcurrency: 0}}}], 'api.limits.perTokenConcurrency', /^config field "api.limits.perTokenConcurrency" must be a positive integer \(at most 2147483647\), got 0$/)
      rejects([minimal, {api: {limits: {requestTimeoutMs: 2.5}}}], 'api.limits.requestTimeoutMs', /must be a positive integer/)
      rejects([minimal, {api: {limits: {perTokenConcurency: 4}}}], 'api.limits.perTokenConcurency', /is not a config field; did you mean "api.limits.perTokenConcurrency"\?$/)
    })

    it('refuses headers that may take longer than the whole request (Node would refuse to start the server)', () => {
      rejects([minimal, {api: {limits: {requestTimeoutMs: 5_000, headersTimeoutMs: 6_000}}}], 'api.limits.headersTimeoutMs', /must be at most api.limits.requestTimeoutMs \(5000\), got 6000 \(its default is 10000: lower both together\)$/)
      rejects([minimal, {api: {limits: {requestTimeoutMs: 5_000}}}], 'api.limits.headersTimeoutMs', /got 10000 \(its default is 10000: lower both together\)$/)
    })
  })

  it('takes the log format and level from the closed sets the logger knows', () => {
    assert.equal(buildConfig([minimal]).logFormat, 'auto')
    assert.equal(buildConfig([minimal, fromDottedEntries({[ENV_FIELDS.CORTENSORD_LOG_FORMAT as string]: 'pretty'})]).logFormat, 'pretty')
    rejects([minimal, {logFormat: 'yaml'}], 'logFormat', /^config field "logFormat" must be "auto" or "json" or "pretty", got "yaml"$/)
    rejects([minimal, {logLevel: 'verbose'}], 'logLevel', /must be "fatal" or "error" or "warn" or "info" or "debug" or "trace" or "silent", got "verbose"$/)
  })

  it('leaves the layers it was given as they were', () => {
    const file = structuredClone(minimal)
    const config = buildConfig([file, fromDottedEntries({models: '1,2'})])
    config.chain.rpcUrls.push('http://other.example')
    assert.deepEqual(file, minimal)
  })

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
