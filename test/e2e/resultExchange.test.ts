import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'
import {hexlify, randomBytes} from 'ethers'
import {multiaddr} from '@multiformats/multiaddr'
import {commitmentFor} from '../../src/chain/commitment.js'
import {StaticAccessView} from '../../src/protocols/accessView.js'
import {outputHashOf} from '../../src/protocols/messages.js'
import {addressFromPeerId} from '../../src/protocols/peerAddress.js'
import {openResultStream, serveResults, type MinerResultMessage, type TaskStreamSink} from '../../src/protocols/resultExchange.js'
import {createHost, dialAddresses, type Host} from '../../src/runtime/host.js'
import {createSilentLogger} from '../../src/util/logger.js'

const NETWORK = 'test'
let oracle: Host
let miner: Host
let minerAddress: string
const access = new StaticAccessView()
const opened: Array<{taskId: string, sender: string, tokens: string[], controller: AbortController}> = []
const results: Array<{result: MinerResultMessage, sender: string}> = []
let stop: () => Promise<void>

function resultFor (taskId: string, output: string, minerAddr = minerAddress): MinerResultMessage {
  const salt = hexlify(randomBytes(32))
  const outputHash = outputHashOf(output)
  return {taskId, miner: minerAddr, output, salt, outputHash, commitment: commitmentFor(BigInt(taskId), minerAddr, outputHash, salt), tokens: 3, timings: {promptMs: 1, generateMs: 2}}
}

async function until (what: string, probe: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('result exchange: one private stream per task from miner to oracle', () => {
  before(async () => {
    const logger = createSilentLogger()
    oracle = await createHost({privateKey: randomBytes(32), listen: ['/ip4/127.0.0.1/tcp/0'], logger})
    miner = await createHost({privateKey: randomBytes(32), listen: ['/ip4/127.0.0.1/tcp/0'], logger})
    minerAddress = addressFromPeerId(miner.libp2p.peerId) as string
    await miner.libp2p.dial(multiaddr(dialAddresses(oracle)[0] as string))
    stop = await serveResults({
      libp2p: oracle.libp2p, networkId: NETWORK, access, addressOf: addressFromPeerId, logger,
      onOpen: (taskId, sender): TaskStreamSink => {
        const entry = {taskId, sender, tokens: [] as string[], controller: new AbortController()}
        opened.push(entry)
        return {token: text => entry.tokens.push(text), cancelled: entry.controller.signal}
      },
      onResult: (result, sender) => results.push({result, sender})
    })
  })

  after(async () => {
    await stop()
    await miner.stop()
    await oracle.stop()
  })

  it('refuses a miner the chain has not admitted', async () => {
    const stream = await openResultStream(miner.libp2p, NETWORK, oracle.libp2p.peerId, '1')
    await assert.rejects(stream.finish(resultFor('1', 'hello')))
    assert.equal(opened.length, 0, 'the oracle never heard of the task')
    assert.equal(results.length, 0)
  })

  it('delivers tokens in order, then the result, acknowledged', async () => {
    access.grant(minerAddress, 'miner')
    const stream = await openResultStream(miner.libp2p, NETWORK, oracle.libp2p.peerId, '7')
    for (const text of [', there', ' was', ' a']) stream.token(text)
    await stream.finish(resultFor('7', ', there was a'))
    assert.equal(opened.length, 1)
    assert.deepEqual(opened[0]?.tokens, [', there', ' was', ' a'])
    assert.equal(opened[0]?.sender, minerAddress)
    assert.equal(results.length, 1)
    assert.equal(results[0]?.result.output, ', there was a')
  })

  it('refuses a result that names another miner, and one for another task', async () => {
    const other = hexlify(randomBytes(20))
    const forged = await openResultStream(miner.libp2p, NETWORK, oracle.libp2p.peerId, '8')
    await assert.rejects(forged.finish(resultFor('8', 'x', other)), /names miner/)
    const swapped = await openResultStream(miner.libp2p, NETWORK, oracle.libp2p.peerId, '9')
    await assert.rejects(swapped.finish(resultFor('10', 'x')), /on the stream of task 9/)
    assert.equal(results.length, 1, 'nothing more was accepted')
  })

  it('tells the miner to stop when the oracle hangs up', async () => {
    const stream = await openResultStream(miner.libp2p, NETWORK, oracle.libp2p.peerId, '11')
    await until('the stream to open at the oracle', () => opened.some(o => o.taskId === '11'))
    opened.find(o => o.taskId === '11')?.controller.abort(new Error('client gone'))
    await until('the miner to see the cancellation', () => stream.cancelled.aborted)
  })
})
