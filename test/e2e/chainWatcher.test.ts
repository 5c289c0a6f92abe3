import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'
import {hexlify, randomBytes, toUtf8Bytes, type JsonRpcProvider} from 'ethers'
import {ActorSystem, type ActorDefinition, type ActorRef, type RestartPolicy} from '../../src/actors/actorSystem.js'
import {chainActor} from '../../src/actors/chain/chainActor.js'
import {ChainClient} from '../../src/actors/chain/chainClient.js'
import type {ChainEventsMessage, ChainMessage} from '../../src/actors/chain/messages.js'
import {taskIdFor} from '../../src/chain/commitment.js'
import {TASK_MODE_CODE, TaskState} from '../../src/chain/enums.js'
import {createProvider} from '../../src/chain/provider.js'
import type {TaskEvent, WatchedEvent} from '../../src/chain/taskEvents.js'
import {startAnvil, type Anvil} from '../../src/devnet/anvil.js'
import {setupDevnet, type Devnet} from '../../src/devnet/setupDevnet.js'
import {toAddress} from '../../src/protocols/address.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {freePort, Relay} from '../support/relay.js'
import {waitFor} from '../support/until.js'

const MODEL = {name: 'stories260K', cid: 'bafkreiexamplemodelcid', sha256: '0x' + 'ab'.repeat(32), sizeBytes: 1_185_376, quantization: 'F32'}
const POLL_MS = 50
/** Restarts quickly, and often enough to outlast the outage below. */
const POLICY: RestartPolicy = {strategy: 'restart', maxRestarts: 10, withinMs: 60_000, backoffMs: {initial: 50, max: 200}}

let anvil: Anvil
let provider: JsonRpcProvider
let net: Devnet
let relay: Relay
let system: ActorSystem
let chain: ActorRef<ChainMessage>
let client: ChainClient
let connects = 0
const fatal: Error[] = []
const deliveries: ChainEventsMessage[] = []
const received = (): WatchedEvent[] => deliveries.flatMap((d) => d.events)
const ofTask = (taskId: string): TaskEvent[] => received().map((w) => w.event).filter((e) => e.taskId === taskId)

/** Collects every delivery, in arrival order. */
const collector: ActorDefinition<null, ChainEventsMessage> = {
  name: 'collector',
  init: async () => null,
  receive: (state, msg) => { deliveries.push(msg); return state }
}

describe('chain watcher (chain actor) against anvil', () => {
  before(async () => {
    anvil = await startAnvil()
    provider = createProvider(anvil.rpcUrl, anvil.chainId)
    net = await setupDevnet({provider, oracles: 2, miners: 2, model: MODEL})
    relay = new Relay(await freePort(), anvil.port)
    await relay.up()
    system = new ActorSystem(createSilentLogger(), (error) => { fatal.push(error) })
    chain = system.spawn(chainActor({
      system,
      deployment: net.deployment,
      pollingIntervalMs: POLL_MS,
      connect: () => {
        connects++
        const p = createProvider(`http://127.0.0.1:${relay.port}`, anvil.chainId)
        return {provider: p, wallet: net.oracles[0]!.wallet.connect(p)}
      }
    }), POLICY)
    client = new ChainClient(system, chain)
    client.subscribe(system.spawn(collector, POLICY))
  })

  after(async () => {
    await system?.stop(['collector', 'chain'])
    await relay?.down()
    await anvil?.stop()
  })

  it('delivers a task created through a typed send as TaskCreated, then its assignments and state, once each', async () => {
    const now = (await provider.getBlock('latest'))!.timestamp
    const requestId = hexlify(randomBytes(32))
    const miners = net.miners.map((m) => toAddress(m.wallet.address))
    const reply = await client.send({
      label: 'createTask',
      call: {
        contract: 'cognitive',
        functionName: 'createTask',
        args: [requestId, net.modelId!, 'Once upon a time', hexlify(toUtf8Bytes('{}')), 42n, TASK_MODE_CODE.parallel, 2, miners, BigInt(now + 600), BigInt(now + 1200)]
      },
      value: 1000n,
      lane: 'user'
    })
    assert.equal(reply.type, 'Mined', JSON.stringify(reply, (_k, v: unknown) => typeof v === 'bigint' ? String(v) : v))
    const taskId = taskIdFor(net.oracles[0]!.wallet.address, requestId).toString()

    await waitFor('the task events', () => ofTask(taskId).length >= 4)
    assert.deepEqual(ofTask(taskId), [
      {type: 'TaskCreated', taskId, oracle: toAddress(net.oracles[0]!.wallet.address), modelId: net.modelId!.toString(), mode: 'parallel', k: 2, input: 'Once upon a time', params: '0x7b7d', seed: 42, precommitDeadline: now + 600, commitDeadline: now + 1200, escrow: '1000'},
      {type: 'MinerAssigned', taskId, miner: miners[0], slot: 0},
      {type: 'MinerAssigned', taskId, miner: miners[1], slot: 1},
      {type: 'TaskStateChanged', taskId, state: TaskState.Assigned}
    ])

    // Reads come back in the ABI's types: no casts.
    const task = await client.read({contract: 'cognitive', functionName: 'taskOf', args: [BigInt(taskId)]})
    assert.equal(task.type, 'Value')
    if (task.type === 'Value') {
      assert.equal(task.value.state, TaskState.Assigned)
      assert.equal(task.value.k, 2)
      assert.equal(task.value.oracle, toAddress(net.oracles[0]!.wallet.address))
      assert.equal(task.value.escrow, 1000n)
    }
    const assigned = await client.read({contract: 'cognitive', functionName: 'minersOf', args: [BigInt(taskId)]})
    assert.deepEqual(assigned, {type: 'Value', value: miners})
    assert.deepEqual(await client.read({contract: 'cognitive', functionName: 'taskCount', args: []}), {type: 'Value', value: 1n})
  })

  it('crashes after failed polls, resumes where it stopped after the restart, and delivers nothing twice', async () => {
    const before = deliveries.length
    await relay.down()
    // Created while the watcher cannot see the chain (another oracle, straight to anvil).
    const now = (await provider.getBlock('latest'))!.timestamp
    const requestId = hexlify(randomBytes(32))
    const cognitive = net.contracts.cognitive
    await net.oracles[1]!.queue.send('createTask during outage', async () => ({
      to: await cognitive.getAddress(),
      value: 1n,
      data: cognitive.interface.encodeFunctionData('createTask', [requestId, net.modelId, 'x', '0x', 1n, TASK_MODE_CODE.competing, 1, [], now + 600, now + 1200])
    }))
    const taskId = taskIdFor(net.oracles[1]!.wallet.address, requestId).toString()
    // Five failed polls crash the actor; the supervisor rebuilds its provider (connect again).
    await waitFor('the chain actor to restart', () => connects >= 2)
    assert.equal(deliveries.length, before, 'nothing delivered while the RPC is down')
    await relay.up()

    await waitFor('the task created during the outage', () => ofTask(taskId).length >= 2)
    assert.deepEqual(ofTask(taskId).map((e) => e.type), ['TaskCreated', 'TaskStateChanged'])
    assert.deepEqual(fatal, [])

    // Exactly once, in block order: the checkpoints rise, and each delivery holds only blocks
    // after the previous checkpoint.
    let checkpoint = net.deployment.deployBlock - 1
    for (const delivery of deliveries) {
      assert.ok(delivery.toBlock > checkpoint, `checkpoint ${delivery.toBlock} after ${checkpoint}`)
      for (const w of delivery.events) assert.ok(w.blockNumber > checkpoint && w.blockNumber <= delivery.toBlock)
      checkpoint = delivery.toBlock
    }
    const keys = received().map((w) => `${w.blockNumber}/${w.logIndex}`)
    assert.equal(new Set(keys).size, keys.length, 'no event delivered twice')
    assert.equal(received().filter((w) => w.event.type === 'TaskCreated').length, 2)
  })
})
