import assert from 'node:assert/strict'
import {createServer, type Server} from 'node:http'
import {Writable} from 'node:stream'
import {after, before, describe, it} from 'node:test'
import {createProvider, RpcEndpoints} from '../../src/chain/provider.js'
import {isTransientRpcError, TxQueue} from '../../src/chain/txQueue.js'
import {startAnvil, type Anvil} from '../../src/devnet/anvil.js'
import {devnetWallet, fundDevnetAccounts} from '../../src/devnet/devnetKeys.js'
import {createRootLogger, type Logger} from '../../src/util/logger.js'
import {freePort, Relay} from '../support/relay.js'

interface LogLine {level: number, msg: string, rpc?: string}

/** A debug-level logger whose JSON lines are kept for the test to read. */
function capturingLogger (): {log: Logger, text: () => string} {
  const raw: string[] = []
  const destination = new Writable({write (chunk: Buffer, _encoding, done) { raw.push(chunk.toString()); done() }})
  const log = createRootLogger({level: 'debug', destination})
  return {log, text: () => raw.join('')}
}

function parsed (text: string): LogLine[] {
  return text.split('\n').filter(line => line !== '').map(line => JSON.parse(line) as LogLine)
}

const WARN = 40
const INFO = 30

let anvil: Anvil
let overloaded: Server
let overloadedUrl: string

describe('chain.rpcUrls failover against anvil', () => {
  before(async () => {
    anvil = await startAnvil()
    // An endpoint that answers every call with 503, as an overloaded public RPC does.
    overloaded = createServer((_req, res) => { res.writeHead(503).end('overloaded') })
    await new Promise<void>(resolve => overloaded.listen(0, '127.0.0.1', resolve))
    overloadedUrl = `http://127.0.0.1:${(overloaded.address() as {port: number}).port}`
    await fundDevnetAccounts(createProvider(anvil.rpcUrl, anvil.chainId), [devnetWallet('miner', 0).address])
  })

  after(async () => {
    await anvil?.stop()
    overloaded?.closeAllConnections()
    await new Promise<void>(resolve => overloaded == null ? resolve() : overloaded.close(() => resolve()))
  })

  it('two providers of one node asking for the head at the same moment cost one eth_blockNumber', async () => {
    let asked = 0
    const counting = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk: Buffer) => { body += chunk.toString() })
      req.on('end', () => {
        const calls = [JSON.parse(body)].flat() as Array<{id: number, method: string}>
        asked += calls.filter(c => c.method === 'eth_blockNumber').length
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(calls.map(c => ({jsonrpc: '2.0', id: c.id, result: '0x2a'}))))
      })
    })
    await new Promise<void>(resolve => counting.listen(0, '127.0.0.1', resolve))
    try {
      const endpoints = new RpcEndpoints(`http://127.0.0.1:${(counting.address() as {port: number}).port}`)
      const [a, b] = [createProvider(endpoints, 31337, {pollingIntervalMs: 1_000}), createProvider(endpoints, 31337, {pollingIntervalMs: 1_000})]
      assert.deepEqual(await Promise.all([a.getBlockNumber(), b.getBlockNumber(), a.getBlockNumber()]), [42, 42, 42])
      assert.equal(asked, 1)
      a.destroy()
      b.destroy()
    } finally {
      await new Promise<void>(resolve => counting.close(() => resolve()))
    }
  })

  it('reads and sends a transaction through the live URL when the ones before it refuse or fail with 5xx, naming each dead URL once without credentials', async () => {
    const {log, text} = capturingLogger()
    const refused = `http://user:s3cret@127.0.0.1:${await freePort()}/v2/apikey123`
    const endpoints = new RpcEndpoints([refused, overloadedUrl, anvil.rpcUrl], log)
    const provider = createProvider(endpoints, anvil.chainId)

    assert.ok(await provider.getBlockNumber() >= 0)
    const queue = new TxQueue({wallet: devnetWallet('miner', 0), provider})
    const receipt = await queue.send('transfer', () => ({to: devnetWallet('miner', 1).address, value: 1n}))
    assert.equal(receipt.status, 1)
    assert.equal(endpoints.urls[endpoints.current], anvil.rpcUrl)

    // The chain actor's provider, rebuilt after a crash, starts where the node already is.
    const rebuilt = createProvider(endpoints, anvil.chainId)
    assert.equal(await rebuilt.getBlockNumber(), receipt.blockNumber)
    assert.equal(rebuilt._getConnection().url, anvil.rpcUrl, 'log lines of the chain watcher name the URL in use')

    const warnings = parsed(text()).filter(line => line.level === WARN)
    const refusedForLogs = refused.replace('user:s3cret@', '').replace('/v2/apikey123', '')
    assert.deepEqual(warnings.map(line => line.msg), [
      `chain at ${refusedForLogs} is unreachable; switching to ${overloadedUrl}`,
      `chain at ${overloadedUrl} is unreachable; switching to ${anvil.rpcUrl}`
    ])
    assert.doesNotMatch(text(), /s3cret|apikey123/, 'no credentials in the log')
    provider.destroy()
    rebuilt.destroy()
  })

  it('moves to the next URL when the one in use goes down, in order, wrapping around', async () => {
    const {log, text} = capturingLogger()
    const relays = [new Relay(await freePort(), anvil.port), new Relay(await freePort(), anvil.port)]
    await Promise.all(relays.map(async relay => { await relay.up() }))
    const urls = relays.map(relay => `http://127.0.0.1:${relay.port}`)
    const endpoints = new RpcEndpoints(urls, log)
    const provider = createProvider(endpoints, anvil.chainId)
    const queue = new TxQueue({wallet: devnetWallet('miner', 0), provider})
    const send = async (label: string): Promise<void> => {
      assert.equal((await queue.send(label, () => ({to: devnetWallet('miner', 1).address, value: 1n}))).status, 1)
    }
    try {
      await send('through the first')
      assert.equal(endpoints.current, 0)

      await relays[0]!.down()
      await send('through the second')
      assert.equal(endpoints.current, 1)

      await relays[0]!.up()
      await relays[1]!.down()
      await send('back through the first')
      assert.equal(endpoints.current, 0)

      const lines = parsed(text())
      assert.deepEqual(lines.filter(line => line.level === WARN).map(line => line.msg), [
        `chain at ${urls[0]} is unreachable; switching to ${urls[1]}`,
        `chain at ${urls[1]} is unreachable; switching to ${urls[0]}`
      ])
      assert.ok(lines.some(line => line.level === INFO && line.msg === `chain at ${urls[0]} answers again`), text())
    } finally {
      provider.destroy()
      await Promise.all(relays.map(async relay => { await relay.down() }))
    }
  })

  it('with every URL down, fails with the transport error (which the callers retry) and says each outage once', async () => {
    const {log, text} = capturingLogger()
    const urls = [`http://127.0.0.1:${await freePort()}`, overloadedUrl]
    const provider = createProvider(new RpcEndpoints(urls, log), anvil.chainId)
    for (let i = 0; i < 3; i++) {
      await assert.rejects(provider.getBlockNumber(), (err: unknown) => isTransientRpcError(err))
    }
    assert.equal(parsed(text()).filter(line => line.level === WARN).length, 2, text())
    provider.destroy()
  })

  it('with one URL, leaves the outage to its callers (the access cache says it once)', async () => {
    const {log, text} = capturingLogger()
    const provider = createProvider(new RpcEndpoints(`http://127.0.0.1:${await freePort()}`, log), anvil.chainId)
    await assert.rejects(provider.getBlockNumber(), (err: unknown) => isTransientRpcError(err))
    assert.equal(text(), '')
    provider.destroy()
  })
})
