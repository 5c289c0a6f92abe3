import assert from 'node:assert/strict'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {Interface, type JsonRpcProvider} from 'ethers'
import {startAnvil, type Anvil} from '../../src/devnet/anvil.js'
import {CONTRACT_ABIS} from '../../src/chain/contracts.js'
import {deployNetwork} from '../../src/chain/deployNetwork.js'
import type {Deployment} from '../../src/chain/deployment.js'
import {devnetWallet, fundDevnetAccounts} from '../../src/devnet/devnetKeys.js'
import {createProvider} from '../../src/chain/provider.js'
import {AclRole} from '../../src/chain/enums.js'
import {TxError, TxQueue} from '../../src/chain/txQueue.js'
import {freePort, Relay} from '../support/relay.js'

let anvil: Anvil
let provider: JsonRpcProvider
let dir: string
let deployment: Deployment
const acl = new Interface(CONTRACT_ABIS.acl)

describe('TxQueue against anvil', () => {
  before(async () => {
    anvil = await startAnvil()
    provider = createProvider(anvil.rpcUrl, anvil.chainId)
    dir = await mkdtemp(join(tmpdir(), 'cortensor-txqueue-'))
    const admin = devnetWallet('admin', 0, provider)
    await fundDevnetAccounts(provider, [admin.address, devnetWallet('miner', 0).address, devnetWallet('miner', 1).address])
    deployment = await deployNetwork({queue: new TxQueue({wallet: admin, provider})})
  })

  after(async () => {
    await anvil?.stop()
    await rm(dir, {recursive: true, force: true})
  })

  it('lands 50 back-to-back transactions from one wallet with consecutive nonces and journals each', async () => {
    const journalPath = join(dir, 'burst.jsonl')
    const wallet = devnetWallet('miner', 0, provider)
    const queue = new TxQueue({wallet, provider, journalPath})
    const start = await provider.getTransactionCount(wallet.address, 'latest')
    const receipts = await Promise.all(Array.from({length: 50}, async (_, i) =>
      await queue.send(`transfer ${i}`, () => ({to: devnetWallet('miner', 1).address, value: BigInt(i + 1)}))))
    assert.ok(receipts.every((r) => r.status === 1))
    const nonces = await Promise.all(receipts.map(async (r) => (await provider.getTransaction(r.hash))!.nonce))
    assert.deepEqual(nonces, Array.from({length: 50}, (_, i) => start + i))
    assert.equal(await provider.getTransactionCount(wallet.address, 'latest'), start + 50)

    const lines = (await readFile(journalPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as {label: string, event: string, status?: number})
    for (let i = 0; i < 50; i++) {
      assert.deepEqual(lines.filter((l) => l.label === `transfer ${i}`).map((l) => l.event), ['intent', 'signed', 'sent', 'receipt'])
    }
  })

  it('submits a user send before settlement sends queued earlier, on one nonce sequence', async () => {
    const wallet = devnetWallet('miner', 0, provider)
    const queue = new TxQueue({wallet, provider})
    const start = await provider.getTransactionCount(wallet.address, 'latest')
    const to = devnetWallet('miner', 1).address
    const settlements = Array.from({length: 30}, async (_, i) =>
      await queue.send(`settle ${i}`, () => ({to, value: BigInt(i + 1)}), {lane: 'settlement'}))
    const user = queue.send('user', () => ({to, value: 1000n}), {lane: 'user'})
    const [userReceipt, ...settled] = await Promise.all([user, ...settlements])
    const nonceOf = async (hash: string): Promise<number> => (await provider.getTransaction(hash))!.nonce
    const userNonce = await nonceOf(userReceipt!.hash)
    const settlementNonces = await Promise.all(settled.map(async (r) => await nonceOf(r.hash)))
    assert.ok([userReceipt!, ...settled].every((r) => r.status === 1))
    // Only the settlement send already being submitted may come first.
    assert.ok(settlementNonces.filter((n) => n > userNonce).length >= 25, `user nonce ${userNonce}, settlement nonces ${settlementNonces.join(',')}`)
    // Settlement sends keep their order among themselves.
    assert.deepEqual(settlementNonces, [...settlementNonces].sort((a, b) => a - b))
    assert.deepEqual([userNonce, ...settlementNonces].sort((a, b) => a - b), Array.from({length: 31}, (_, i) => start + i))
    await queue.drained()
    assert.equal(await provider.getTransactionCount(wallet.address, 'latest'), start + 31)
  })

  it('reports a revert with its custom error name, without retrying or consuming a nonce', async () => {
    const journalPath = join(dir, 'revert.jsonl')
    const wallet = devnetWallet('miner', 0, provider)
    const queue = new TxQueue({wallet, provider, journalPath})
    const nonce = await provider.getTransactionCount(wallet.address, 'pending')
    await assert.rejects(
      queue.send('grant as non-admin', () => ({to: deployment.contracts.acl, data: acl.encodeFunctionData('grantRole', [AclRole.Miner, wallet.address])})),
      (err: unknown) => {
        assert.ok(err instanceof TxError)
        assert.equal(err.code, 'TX_REVERTED')
        assert.equal(err.type.errorName, 'NotAdmin')
        assert.deepEqual(err.type.errorArgs, [wallet.address])
        assert.match(err.message, /grant as non-admin reverted: NotAdmin\(0x/)
        return true
      })
    const last = JSON.parse((await readFile(journalPath, 'utf8')).trim().split('\n').at(-1)!) as {event: string, code: string}
    assert.deepEqual([last.event, last.code], ['failed', 'TX_REVERTED'])
    // The next transaction reuses the nonce the revert did not consume.
    const receipt = await queue.send('transfer', () => ({to: wallet.address, value: 1n}))
    assert.equal((await provider.getTransaction(receipt.hash))!.nonce, nonce)
  })

  it('retries while the RPC endpoint refuses connections and lands the transaction once it is back', async () => {
    const relay = new Relay(await freePort(), anvil.port)
    const relayed = createProvider(`http://127.0.0.1:${relay.port}`, anvil.chainId)
    const wallet = devnetWallet('miner', 1, relayed)
    const journalPath = join(dir, 'transient.jsonl')
    const queue = new TxQueue({wallet, provider: relayed, journalPath, retry: {maxAttempts: 20, initialDelayMs: 20, maxDelayMs: 100}})
    // Down from the start: the first attempts are refused; it comes back after 300 ms.
    const sending = queue.send('through a flaky relay', () => ({to: wallet.address, value: 1n}))
    await new Promise((resolve) => setTimeout(resolve, 300))
    await relay.up()
    try {
      const receipt = await sending
      assert.equal(receipt.status, 1)
    } finally {
      await relay.down()
    }
    const events = (await readFile(journalPath, 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as {event: string}).event)
    assert.deepEqual(events, ['intent', 'signed', 'sent', 'receipt'])

    // With a small budget, a dead endpoint ends in TX_RPC_UNAVAILABLE instead of hanging.
    const impatient = new TxQueue({wallet, provider: relayed, retry: {maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 10}})
    await assert.rejects(impatient.send('into the void', () => ({to: wallet.address, value: 1n})),
      (err: unknown) => err instanceof TxError && err.code === 'TX_RPC_UNAVAILABLE')
  })

  it('resyncs its nonce after a transaction sent behind its back', async () => {
    const wallet = devnetWallet('miner', 0, provider)
    const queue = new TxQueue({wallet, provider})
    await queue.send('first', () => ({to: wallet.address, value: 1n}))
    // Another writer of the same key (a second process by mistake) uses the queue's next nonce.
    await (await wallet.sendTransaction({to: wallet.address, value: 1n})).wait()
    const receipt = await queue.send('after the intruder', () => ({to: wallet.address, value: 1n}))
    assert.equal(receipt.status, 1)
  })

  it('after a crash, journals what became of transactions sent but never settled: a receipt, or TX_DROPPED', async () => {
    const journalPath = join(dir, 'crashed.jsonl')
    const wallet = devnetWallet('miner', 0, provider)
    // The last run sent one transaction that was mined and one the node never kept, then died.
    const mined = await (await wallet.sendTransaction({to: wallet.address, value: 1n})).wait()
    const lost = '0x' + 'ee'.repeat(32)
    const from = wallet.address.toLowerCase()
    const sent = (label: string, hash: string, nonce: number): string => JSON.stringify({ts: new Date().toISOString(), from, label, event: 'sent', nonce, hash})
    await writeFile(journalPath, [sent('mined before the crash', mined!.hash, 1), sent('dropped', lost, 2), '{"cut short'].join('\n') + '\n')

    const queue = new TxQueue({wallet, provider, journalPath})
    assert.equal(await queue.recover(), 2)
    const lines = (await readFile(journalPath, 'utf8')).trim().split('\n').slice(3).map((l) => JSON.parse(l) as {label: string, event: string, code?: string})
    assert.deepEqual(lines.map(l => [l.label, l.event, l.code]).sort(), [['dropped', 'failed', 'TX_DROPPED'], ['mined before the crash', 'receipt', undefined]])
    assert.equal(await queue.recover(), 0, 'a second start finds nothing left open')
  })

  it('stops before signing when its signal is aborted', async () => {
    const queue = new TxQueue({wallet: devnetWallet('miner', 0, provider), provider})
    const controller = new AbortController()
    controller.abort(new Error('shutdown'))
    await assert.rejects(queue.send('never', () => ({to: deployment.contracts.acl, value: 0n}), {signal: controller.signal}),
      (err: unknown) => err instanceof TxError && err.code === 'TX_ABORTED')
  })
})
