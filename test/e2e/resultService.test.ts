import assert from 'node:assert/strict'
import {after, before, beforeEach, describe, it} from 'node:test'
import {hexlify, randomBytes} from 'ethers'
import {multiaddr} from '@multiformats/multiaddr'
import {commitmentFor} from '../../src/chain/commitment.js'
import {StaticAccessView} from '../../src/protocols/accessView.js'
import {toAddress, type Address} from '../../src/protocols/address.js'
import {outputHashOf, type MinerResult} from '../../src/protocols/messages.js'
import {addressFromPeerId} from '../../src/protocols/peerAddress.js'
import {ResultService, type TaskStreamSink} from '../../src/protocols/resultService.js'
import {createHost, dialAddresses, type Host} from '../../src/runtime/host.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {waitFor} from '../support/until.js'

const NETWORK = 'test'
let oracle: Host
let miner: Host
let minerAddress: Address
let oracleResults: ResultService
let minerResults: ResultService
const access = new StaticAccessView()
const opened: Array<{taskId: string, sender: Address, tokens: string[], controller: AbortController}> = []
const results: Array<{result: MinerResult, sender: Address}> = []

function resultFor (taskId: string, output: string, minerAddr = minerAddress): MinerResult {
  const salt = hexlify(randomBytes(32))
  const outputHash = outputHashOf(output)
  return {taskId, miner: minerAddr, output, salt, outputHash, commitment: commitmentFor(BigInt(taskId), minerAddr, outputHash, salt), tokenIds: [1, 2, 3], finishReason: 'length', determinismClass: `${'ab'.repeat(32)}/node-llama-cpp-3.21.1/cpu-linux-x64`, timings: {promptMs: 1, generateMs: 2}}
}

async function open (taskId: string): ReturnType<ResultService['open']> {
  return await minerResults.open(oracle.libp2p.peerId, taskId, {signal: AbortSignal.timeout(10_000)})
}

describe('result service: one private stream per task from miner to oracle', () => {
  before(async () => {
    const logger = createSilentLogger()
    oracle = await createHost({privateKey: randomBytes(32), listen: ['/ip4/127.0.0.1/tcp/0'], logger})
    miner = await createHost({privateKey: randomBytes(32), listen: ['/ip4/127.0.0.1/tcp/0'], logger})
    minerAddress = addressFromPeerId(miner.libp2p.peerId) as Address
    await miner.libp2p.dial(multiaddr(dialAddresses(oracle)[0] as string))
    oracleResults = new ResultService({libp2p: oracle.libp2p, access, logger}, {networkId: NETWORK})
    oracleResults.serve({
      onOpen: (taskId, sender): TaskStreamSink => {
        const entry = {taskId, sender, tokens: [] as string[], controller: new AbortController()}
        opened.push(entry)
        return {token: chunk => entry.tokens.push(chunk.text), cancelled: entry.controller.signal}
      },
      onResult: (result, sender) => results.push({result, sender})
    })
    await oracleResults.start()
    minerResults = new ResultService({libp2p: miner.libp2p, access, logger}, {networkId: NETWORK})
    await minerResults.start()
  })

  // Each case starts from an admitted miner and an oracle that has heard nothing yet.
  beforeEach(() => {
    opened.length = 0
    results.length = 0
    access.grant(minerAddress, 'miner')
  })

  after(async () => {
    await minerResults.stop()
    await oracleResults.stop()
    await miner.stop()
    await oracle.stop()
  })

  it('refuses a miner the chain has not admitted', async () => {
    access.revoke(minerAddress, 'miner')
    const stream = await open('1')
    await assert.rejects(stream.finish(resultFor('1', 'hello')), {code: 'RESULT_UNDELIVERABLE'})
    assert.equal(opened.length, 0, 'the oracle never heard of the task')
    assert.equal(results.length, 0)
  })

  it('delivers tokens in order, then the result, acknowledged', async () => {
    const stream = await open('7')
    for (const [i, text] of [', there', ' was', ' a'].entries()) stream.token({text, tokens: [i + 1]})
    await stream.finish(resultFor('7', ', there was a'))
    assert.equal(opened.length, 1)
    assert.deepEqual(opened[0]?.tokens, [', there', ' was', ' a'])
    assert.equal(opened[0]?.sender, minerAddress)
    assert.equal(results.length, 1)
    assert.equal(results[0]?.result.output, ', there was a')
  })

  it('refuses a result that names another miner, and one for another task', async () => {
    const other = toAddress(hexlify(randomBytes(20)))
    const forged = await open('8')
    await assert.rejects(forged.finish(resultFor('8', 'x', other)), {code: 'RESULT_REFUSED', message: /names miner/})
    const swapped = await open('9')
    await assert.rejects(swapped.finish(resultFor('10', 'x')), {code: 'RESULT_REFUSED', message: /on the stream of task 9/})
    assert.equal(results.length, 0, 'nothing was accepted')
  })

  it('tells the miner to stop when the oracle hangs up', async () => {
    const stream = await open('11')
    await waitFor('the stream to open at the oracle', () => opened.some(o => o.taskId === '11'), {timeoutMs: 5_000, intervalMs: 10})
    opened.find(o => o.taskId === '11')?.controller.abort(new Error('client gone'))
    await waitFor('the miner to see the cancellation', () => stream.cancelled.aborted, {timeoutMs: 5_000, intervalMs: 10})
    assert.equal((stream.cancelled.reason as {code?: string}).code, 'STREAM_CANCELLED')
  })

  it('a stream that breaks (the oracle crashed) is not a cancel: the miner keeps working, and only the delivery fails', async () => {
    const stream = await open('12')
    await waitFor('the stream to open at the oracle', () => opened.some(o => o.taskId === '12'), {timeoutMs: 5_000, intervalMs: 10})
    await miner.libp2p.hangUp(oracle.libp2p.peerId)
    await new Promise(resolve => setTimeout(resolve, 200))
    stream.token({text: 'still working', tokens: [9]})
    assert.equal(stream.cancelled.aborted, false, 'a dropped connection is not the oracle saying stop')
    await assert.rejects(stream.finish(resultFor('12', 'done anyway')), {code: 'RESULT_UNDELIVERABLE'})
    await miner.libp2p.dial(multiaddr(dialAddresses(oracle)[0] as string))
  })

  it('names the protocol from the network id, as every node builds it', () => {
    assert.equal(oracleResults.protocol, `/cortensor/${NETWORK}/result/1.2.0`)
  })
})
