import assert from 'node:assert/strict'
import {after, before, beforeEach, describe, it} from 'node:test'
import {hexlify, keccak256, randomBytes, toUtf8Bytes, type JsonRpcProvider, type LogDescription, type TransactionReceipt} from 'ethers'
import {grantRole, registerNode, revokeRole} from '../../src/chain/admission.js'
import {startAnvil, type Anvil} from '../../src/devnet/anvil.js'
import {outputHash, taskCommitment, taskIdFor} from '../../src/chain/commitment.js'
import type {ContractName} from '../../src/chain/contractNames.js'
import {devnetWallet, fundDevnetAccounts} from '../../src/devnet/devnetKeys.js'
import {createProvider} from '../../src/chain/provider.js'
import {AclRole, Counter, SlotState, TASK_MODE_CODE, TaskState} from '../../src/chain/enums.js'
import {setupDevnet, type Devnet} from '../../src/devnet/setupDevnet.js'
import {TxError, TxQueue} from '../../src/chain/txQueue.js'
import {toAddress, type Address} from '../../src/protocols/address.js'
import type {TaskMode} from '../../src/protocols/messages.js'

const MODEL = {name: 'stories260K', cid: 'bafkreiexamplemodelcid', sha256: '0x' + 'ab'.repeat(32), sizeBytes: 1_185_376, quantization: 'F32'}
const INPUT = 'Once upon a time'
const PARAMS = toUtf8Bytes(JSON.stringify({temperature: 0, maxTokens: 32}))

let anvil: Anvil
let provider: JsonRpcProvider
let net: Devnet
let outsider: TxQueue
let snapshot: string
/** Gas paid per address since the test started, to check balances to the wei. */
let fees: Map<Address, bigint>

type Sender = TxQueue | {queue: TxQueue}
const queueOf = (s: Sender): TxQueue => s instanceof TxQueue ? s : s.queue
const miner = (i: number): Devnet['miners'][number] => net.miners[i]!
const addr = (i: number): string => miner(i).wallet.address
const oracle = (): Devnet['oracles'][number] => net.oracles[0]!

async function send (from: Sender, key: ContractName, fn: string, args: unknown[], value?: bigint): Promise<TransactionReceipt> {
  const queue = queueOf(from)
  const contract = net.contracts[key]
  const to = await contract.getAddress()
  const receipt = await queue.send(`${key}.${fn}`, () => ({to, data: contract.interface.encodeFunctionData(fn, args), value}))
  fees.set(queue.address, (fees.get(queue.address) ?? 0n) + receipt.fee)
  return receipt
}

async function reverts (promise: Promise<unknown>, errorName: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof TxError, `expected a TxError, got ${String(err)}`)
    assert.equal(err.code, 'TX_REVERTED')
    assert.equal(err.type.errorName, errorName, err.message)
    return true
  })
}

function events (receipt: TransactionReceipt, key: ContractName, name: string): LogDescription[] {
  const contract = net.contracts[key]
  const target = contract.target as string
  return receipt.logs
    .filter((log) => toAddress(log.address) === toAddress(target))
    .map((log) => contract.interface.parseLog(log))
    .filter((e): e is LogDescription => e !== null && e.name === name)
}

const saltOf = (taskId: bigint, i: number): string => keccak256(toUtf8Bytes(`salt/${taskId}/${i}`))

async function createTask (mode: TaskMode, k: number, assignees: number[], escrow: bigint, deadlines?: {precommit: number, commit: number}): Promise<{taskId: bigint, receipt: TransactionReceipt}> {
  const now = (await provider.getBlock('latest'))!.timestamp
  const receipt = await send(oracle(), 'cognitive', 'createTask', [
    hexlify(randomBytes(32)), net.modelId, INPUT, PARAMS, 42n, TASK_MODE_CODE[mode], k, assignees.map(addr),
    now + (deadlines?.precommit ?? 600), now + (deadlines?.commit ?? 1200)
  ], escrow)
  return {taskId: events(receipt, 'cognitive', 'TaskCreated')[0]!.args.taskId as bigint, receipt}
}

const precommit = async (taskId: bigint, i: number, output: string): Promise<TransactionReceipt> =>
  await send(miner(i), 'cognitive', 'precommit', [taskId, taskCommitment(taskId, addr(i), output, saltOf(taskId, i))])
const commit = async (taskId: bigint, i: number, output: string): Promise<TransactionReceipt> =>
  await send(miner(i), 'cognitive', 'commit', [taskId, output, saltOf(taskId, i)])
/** Every listed miner precommits, then reveals, `outputs[i]` for miner i: the task ends Committed. */
async function revealAll (taskId: bigint, outputs: string[]): Promise<void> {
  for (const [i, output] of outputs.entries()) await precommit(taskId, i, output)
  for (const [i, output] of outputs.entries()) await commit(taskId, i, output)
}
const settle = async (taskId: bigint, acceptedOutputs: string[], rejectedOutputs: string[], from: Sender = oracle()): Promise<TransactionReceipt> =>
  await send(from, 'cognitive', 'settle', [taskId, acceptedOutputs.map(outputHash), rejectedOutputs.map(outputHash)])
const ZERO_HASH = '0x' + '00'.repeat(32)
const stateOf = async (taskId: bigint): Promise<number> => Number((await net.contracts.cognitive.taskOf(taskId)).state)
const stats = async (i: number): Promise<Record<string, bigint>> => {
  const s = await net.contracts.nodeStats.statsOf(addr(i))
  return {assigned: s.assigned, precommitted: s.precommitted, committed: s.committed, agreed: s.agreed, disagreed: s.disagreed, expired: s.expired, rejected: s.rejected}
}
const balance = async (address: string): Promise<bigint> => await provider.getBalance(address)
const stateChanges = (receipt: TransactionReceipt): number[] => events(receipt, 'cognitive', 'TaskStateChanged').map((e) => Number(e.args.state))

describe('contracts (ACL, IAM, NodeStats, ModelRegistry, Cognitive) on anvil', () => {
  before(async () => {
    anvil = await startAnvil()
    provider = createProvider(anvil.rpcUrl, anvil.chainId)
    net = await setupDevnet({provider, miners: 5, model: MODEL})
    const outsiderWallet = devnetWallet('miner', 99, provider)
    await fundDevnetAccounts(provider, [outsiderWallet.address])
    outsider = new TxQueue({wallet: outsiderWallet, provider})
    snapshot = await provider.send('evm_snapshot', [])
  })

  after(async () => {
    await anvil?.stop()
  })

  beforeEach(async () => {
    await provider.send('evm_revert', [snapshot])
    snapshot = await provider.send('evm_snapshot', [])
    for (const queue of [net.admin.queue, oracle().queue, ...net.miners.map((m) => m.queue), outsider]) queue.forgetNonce()
    fees = new Map()
  })

  it('parallel task goes Assigned → Precommitted → Committed → Ended and pays the majority exactly the escrow', async () => {
    const escrow = 10n ** 15n + 1n
    const before = await Promise.all([0, 1, 2].map(async (i) => await balance(addr(i))))
    const {taskId, receipt} = await createTask('parallel', 3, [0, 1, 2], escrow)
    const created = events(receipt, 'cognitive', 'TaskCreated')[0]!.args
    assert.equal(created.input, INPUT)
    assert.equal(created.params, '0x' + Buffer.from(PARAMS).toString('hex'))
    assert.equal(created.escrow, escrow)
    assert.deepEqual(events(receipt, 'cognitive', 'MinerAssigned').map((e) => e.args.miner), [0, 1, 2].map(addr))
    assert.deepEqual(stateChanges(receipt), [TaskState.Assigned])
    assert.deepEqual([...await net.contracts.cognitive.minersOf(taskId)], [0, 1, 2].map(addr))

    await precommit(taskId, 0, 'A')
    await precommit(taskId, 1, 'A')
    assert.equal(await stateOf(taskId), TaskState.Assigned)
    assert.deepEqual(stateChanges(await precommit(taskId, 2, 'B')), [TaskState.Precommitted])

    const reveal = await commit(taskId, 0, 'A')
    const committed = events(reveal, 'cognitive', 'TaskCommitted')[0]!.args
    assert.equal(committed.output, 'A')
    assert.equal(committed.outputHash, outputHash('A'))
    await commit(taskId, 1, 'A')
    assert.equal(await stateOf(taskId), TaskState.Precommitted)
    assert.deepEqual(stateChanges(await commit(taskId, 2, 'B')), [TaskState.Committed])

    const ended = await send(oracle(), 'cognitive', 'end', [taskId])
    const end = events(ended, 'cognitive', 'TaskEnded')[0]!.args
    assert.equal(await stateOf(taskId), TaskState.Ended)
    assert.equal(end.winningOutputHash, outputHash('A'))
    assert.deepEqual([...end.winners], [addr(0), addr(1)])
    const each = escrow / 2n
    assert.equal(end.payoutEach, each)
    const payouts = [each + escrow % 2n, each, 0n]
    assert.equal(payouts.reduce((a, b) => a + b), escrow)
    for (const i of [0, 1, 2]) {
      assert.equal(await balance(addr(i)), before[i]! + payouts[i]! - (fees.get(toAddress(addr(i))) ?? 0n), `miner ${i} balance`)
    }
    assert.equal(await balance(net.deployment.contracts.cognitive), 0n)
    assert.deepEqual(await stats(0), {assigned: 1n, precommitted: 1n, committed: 1n, agreed: 1n, disagreed: 0n, expired: 0n, rejected: 0n})
    assert.deepEqual(await stats(2), {assigned: 1n, precommitted: 1n, committed: 1n, agreed: 0n, disagreed: 1n, expired: 0n, rejected: 0n})
    await reverts(send(oracle(), 'cognitive', 'end', [taskId]), 'WrongState')
  })

  it('competing task: the first three ready miners take the slots, an unready one is refused and a fourth gets SlotsFull', async () => {
    const escrow = 3n * 10n ** 15n + 2n
    for (const i of [0, 1, 2]) await send(miner(i), 'nodeStats', 'ping', [[net.modelId], true])
    await send(miner(3), 'nodeStats', 'ping', [[net.modelId], false])
    const {taskId, receipt} = await createTask('competing', 3, [], escrow)
    assert.deepEqual(stateChanges(receipt), [TaskState.Created])
    await reverts(precommit(taskId, 3, 'X'), 'MinerNotReady')

    const first = await precommit(taskId, 0, 'same')
    assert.equal(events(first, 'cognitive', 'MinerAssigned')[0]!.args.miner, addr(0))
    await precommit(taskId, 1, 'same')
    assert.equal(await stateOf(taskId), TaskState.Created)
    assert.deepEqual(stateChanges(await precommit(taskId, 2, 'same')), [TaskState.Assigned, TaskState.Precommitted])
    await send(miner(3), 'nodeStats', 'ping', [[net.modelId], true])
    assert.equal(await net.contracts.nodeStats.isReady(addr(3), net.modelId), true)
    await reverts(precommit(taskId, 3, 'X'), 'SlotsFull')

    for (const i of [0, 1, 2]) await commit(taskId, i, 'same')
    assert.equal(await stateOf(taskId), TaskState.Committed)
    await reverts(send(miner(0), 'cognitive', 'end', [taskId]), 'NotTaskOracle')
    const before = await Promise.all([0, 1, 2].map(async (i) => await balance(addr(i))))
    const end = events(await send(oracle(), 'cognitive', 'end', [taskId]), 'cognitive', 'TaskEnded')[0]!.args
    assert.deepEqual([...end.winners], [0, 1, 2].map(addr))
    const payouts = [end.payoutEach + 2n, end.payoutEach, end.payoutEach] as bigint[]
    assert.equal(payouts.reduce((a, b) => a + b), escrow)
    for (const i of [0, 1, 2]) assert.equal(await balance(addr(i)), before[i]! + payouts[i]!)
    assert.equal(await balance(net.deployment.contracts.cognitive), 0n)
  })

  it('a stale ready ping does not let a miner take a competing slot', async () => {
    await send(miner(0), 'nodeStats', 'ping', [[net.modelId], true])
    await provider.send('evm_increaseTime', [601])
    await provider.send('evm_mine', [])
    assert.equal(await net.contracts.nodeStats.isReady(addr(0), net.modelId), false)
    const {taskId} = await createTask('competing', 1, [], 0n)
    await reverts(precommit(taskId, 0, 'A'), 'MinerNotReady')
  })

  it('parallel task refuses non-assigned, early, mismatched and repeated calls', async () => {
    const {taskId} = await createTask('parallel', 3, [0, 1, 2], 1000n)
    await reverts(precommit(taskId, 3, 'A'), 'NotAssigned')
    await precommit(taskId, 0, 'A')
    await reverts(precommit(taskId, 0, 'A'), 'AlreadyPrecommitted')
    await reverts(commit(taskId, 0, 'A'), 'WrongState')
    await reverts(send(miner(1), 'cognitive', 'precommit', [taskId, '0x' + '00'.repeat(32)]), 'ZeroCommitment')
    await precommit(taskId, 1, 'A')
    await precommit(taskId, 2, 'A')
    await reverts(precommit(taskId, 2, 'A'), 'AlreadyPrecommitted')
    await reverts(commit(taskId, 0, 'B'), 'CommitmentMismatch')
    await reverts(send(miner(0), 'cognitive', 'commit', [taskId, 'A', saltOf(taskId, 1)]), 'CommitmentMismatch')
    await reverts(commit(taskId, 3, 'A'), 'NotAssigned')
    await commit(taskId, 0, 'A')
    await reverts(commit(taskId, 0, 'A'), 'AlreadyCommitted')
    await reverts(send(oracle(), 'cognitive', 'end', [taskId]), 'DeadlineNotPassed')
    await reverts(send(miner(0), 'cognitive', 'end', [999n]), 'UnknownTask')
  })

  it('createTask checks the oracle, the model, k, assignees and deadlines', async () => {
    const now = (await provider.getBlock('latest'))!.timestamp
    const args = (over: Partial<Record<'requestId' | 'modelId' | 'mode' | 'k' | 'assignees' | 'pre' | 'com', unknown>>): unknown[] => [
      over.requestId ?? hexlify(randomBytes(32)), over.modelId ?? net.modelId, INPUT, PARAMS, 1n, over.mode ?? TASK_MODE_CODE.parallel, over.k ?? 2,
      over.assignees ?? [addr(0), addr(1)], over.pre ?? now + 600, over.com ?? now + 1200
    ]
    await reverts(send(miner(0), 'cognitive', 'createTask', args({})), 'NotOracle')
    await reverts(send(oracle(), 'cognitive', 'createTask', args({modelId: 7n})), 'UnknownModel')
    await reverts(send(oracle(), 'cognitive', 'createTask', args({k: 0, assignees: []})), 'InvalidK')
    await reverts(send(oracle(), 'cognitive', 'createTask', args({k: 17})), 'InvalidK')
    await reverts(send(oracle(), 'cognitive', 'createTask', args({k: 3})), 'WrongAssigneeCount')
    await reverts(send(oracle(), 'cognitive', 'createTask', args({mode: TASK_MODE_CODE.competing})), 'WrongAssigneeCount')
    await reverts(send(oracle(), 'cognitive', 'createTask', args({assignees: [addr(0), addr(0)]})), 'DuplicateMiner')
    await reverts(send(oracle(), 'cognitive', 'createTask', args({assignees: [addr(0), oracle().wallet.address]})), 'NotActiveMiner')
    await reverts(send(oracle(), 'cognitive', 'createTask', args({pre: now + 600, com: now + 600})), 'InvalidDeadlines')
    const requestId = hexlify(randomBytes(32))
    const first = await send(oracle(), 'cognitive', 'createTask', args({requestId}))
    const taskId = events(first, 'cognitive', 'TaskCreated')[0]!.args.taskId as bigint
    assert.equal(taskId, taskIdFor(oracle().wallet.address, requestId), 'the oracle knows the id before the block')
    await reverts(send(oracle(), 'cognitive', 'createTask', args({requestId})), 'TaskExists')
    await send(net.admin, 'modelRegistry', 'setModelActive', [net.modelId, false])
    await reverts(send(oracle(), 'cognitive', 'createTask', args({})), 'InactiveModel')
  })

  it('a task nobody precommits expires after its precommit deadline: anyone closes it, the oracle is refunded, assignees are recorded expired', async () => {
    const escrow = 5n * 10n ** 14n
    const {taskId} = await createTask('parallel', 3, [0, 1, 2], escrow, {precommit: 100, commit: 200})
    await reverts(send(outsider, 'cognitive', 'end', [taskId]), 'NotTaskOracle')
    await reverts(send(oracle(), 'cognitive', 'end', [taskId]), 'DeadlineNotPassed')
    await provider.send('evm_increaseTime', [101])
    await provider.send('evm_mine', [])
    await reverts(precommit(taskId, 1, 'A'), 'DeadlinePassed')
    // The oracle's grace: only it may close the task for 60 s past the deadline.
    await reverts(send(outsider, 'cognitive', 'end', [taskId]), 'DeadlineNotPassed')
    await provider.send('evm_increaseTime', [60])
    await provider.send('evm_mine', [])

    const oracleBefore = await balance(oracle().wallet.address)
    const receipt = await send(outsider, 'cognitive', 'end', [taskId])
    assert.equal(events(receipt, 'cognitive', 'TaskExpired')[0]!.args.refund, escrow)
    assert.equal(await stateOf(taskId), TaskState.Expired)
    assert.equal(await balance(oracle().wallet.address), oracleBefore + escrow)
    for (const i of [0, 1, 2]) assert.equal((await stats(i)).expired, 1n)
  })

  it('a miner that precommitted is paid though another never did: it reveals once the precommit deadline passed', async () => {
    const escrow = 600n
    const {taskId} = await createTask('parallel', 3, [0, 1, 2], escrow, {precommit: 100, commit: 200})
    await precommit(taskId, 0, 'A')
    await precommit(taskId, 1, 'A')
    // Before the precommit deadline a reveal could be copied by the miner still to precommit.
    await reverts(commit(taskId, 0, 'A'), 'WrongState')
    await provider.send('evm_increaseTime', [101])
    await provider.send('evm_mine', [])
    // Past it, only the precommitted slots may reveal, and nobody may close the task before they could.
    await reverts(send(outsider, 'cognitive', 'end', [taskId]), 'NotTaskOracle')
    await reverts(send(oracle(), 'cognitive', 'end', [taskId]), 'DeadlineNotPassed')
    await reverts(commit(taskId, 2, 'A'), 'WrongState')
    await commit(taskId, 0, 'A')
    assert.deepEqual(stateChanges(await commit(taskId, 1, 'A')), [TaskState.Committed], 'every precommitted slot revealed')
    const end = events(await send(oracle(), 'cognitive', 'end', [taskId]), 'cognitive', 'TaskEnded')[0]!.args
    assert.deepEqual([...end.winners], [addr(0), addr(1)])
    assert.equal(end.payoutEach, 300n)
    assert.equal((await stats(0)).agreed, 1n)
    assert.equal((await stats(2)).expired, 1n)
  })

  it('after the commit deadline the majority of the reveals is paid and silent miners are expired', async () => {
    const {taskId} = await createTask('parallel', 3, [0, 1, 2], 900n, {precommit: 100, commit: 200})
    for (const i of [0, 1, 2]) await precommit(taskId, i, 'A')
    await commit(taskId, 0, 'A')
    await commit(taskId, 1, 'A')
    await provider.send('evm_increaseTime', [201])
    await provider.send('evm_mine', [])
    await reverts(commit(taskId, 2, 'A'), 'DeadlinePassed')
    await provider.send('evm_increaseTime', [60])
    await provider.send('evm_mine', [])
    const end = events(await send(miner(0), 'cognitive', 'end', [taskId]), 'cognitive', 'TaskEnded')[0]!.args
    assert.deepEqual([...end.winners], [addr(0), addr(1)])
    assert.equal(end.payoutEach, 450n)
    assert.equal(await stateOf(taskId), TaskState.Ended)
    assert.equal((await stats(2)).expired, 1n)
    assert.equal((await stats(1)).agreed, 1n)
  })

  it('without a strict majority the oracle is refunded and every revealer is recorded as disagreed', async () => {
    const escrow = 7777n
    const {taskId} = await createTask('parallel', 3, [0, 1, 2], escrow)
    const outputs = ['A', 'B', 'C']
    for (const i of [0, 1, 2]) await precommit(taskId, i, outputs[i]!)
    for (const i of [0, 1, 2]) await commit(taskId, i, outputs[i]!)
    const oracleBefore = await balance(oracle().wallet.address)
    const receipt = await send(oracle(), 'cognitive', 'end', [taskId])
    const end = events(receipt, 'cognitive', 'TaskEnded')[0]!.args
    assert.deepEqual([...end.winners], [])
    assert.equal(end.refund, escrow)
    assert.equal(await balance(oracle().wallet.address), oracleBefore + escrow - receipt.fee)
    for (const i of [0, 1, 2]) assert.equal((await stats(i)).disagreed, 1n)
  })

  it('reassign replaces a miner that has not revealed, and is refused to others, to members and once reveals started', async () => {
    const {taskId} = await createTask('parallel', 3, [0, 1, 2], 3000n)
    for (const i of [0, 1, 2]) await precommit(taskId, i, 'A')
    assert.equal(await stateOf(taskId), TaskState.Precommitted)
    await reverts(send(miner(1), 'cognitive', 'reassign', [taskId, addr(0), addr(3)]), 'NotTaskOracle')
    await reverts(send(oracle(), 'cognitive', 'reassign', [taskId, addr(0), addr(1)]), 'AlreadyInTask')
    await reverts(send(oracle(), 'cognitive', 'reassign', [taskId, addr(3), addr(4)]), 'NotAssigned')
    await reverts(send(oracle(), 'cognitive', 'reassign', [taskId, addr(0), oracle().wallet.address]), 'NotActiveMiner')

    const receipt = await send(oracle(), 'cognitive', 'reassign', [taskId, addr(0), addr(3)])
    const moved = events(receipt, 'cognitive', 'MinerReassigned')[0]!.args
    assert.deepEqual([moved.from, moved.to, moved.slot], [addr(0), addr(3), 0n])
    assert.deepEqual(stateChanges(receipt), [TaskState.Assigned])
    assert.equal(Number((await net.contracts.cognitive.slotOf(taskId, addr(0))).state), SlotState.Empty)
    assert.equal(Number((await net.contracts.cognitive.slotOf(taskId, addr(3))).state), SlotState.Assigned)
    assert.equal((await stats(0)).expired, 1n)
    assert.equal((await stats(3)).assigned, 1n)
    await reverts(precommit(taskId, 0, 'A'), 'NotAssigned')

    await precommit(taskId, 3, 'A')
    await commit(taskId, 1, 'A')
    await reverts(send(oracle(), 'cognitive', 'reassign', [taskId, addr(2), addr(4)]), 'RevealsStarted')
    await commit(taskId, 2, 'A')
    await commit(taskId, 3, 'A')
    const end = events(await send(oracle(), 'cognitive', 'end', [taskId]), 'cognitive', 'TaskEnded')[0]!.args
    assert.deepEqual([...end.winners], [addr(3), addr(1), addr(2)])
  })

  it('settle pays every accepted miner though their outputs differ, and leaves the rejected one unpaid and recorded', async () => {
    const escrow = 10n ** 15n + 1n
    const before = await Promise.all([0, 1, 2].map(async (i) => await balance(addr(i))))
    const {taskId} = await createTask('parallel', 3, [0, 1, 2], escrow)
    // Two honest miners on different hardware write different text; the third invented its answer.
    await revealAll(taskId, ['A on a GPU', 'A on a CPU', 'invented'])

    const receipt = await settle(taskId, ['A on a GPU', 'A on a CPU'], ['invented'])
    assert.deepEqual(stateChanges(receipt), [TaskState.Ended])
    const end = events(receipt, 'cognitive', 'TaskEnded')[0]!.args
    assert.deepEqual([...end.winners], [addr(0), addr(1)])
    assert.equal(end.winningOutputHash, outputHash('A on a GPU'))
    assert.equal(end.payoutEach, escrow / 2n)
    assert.equal(end.refund, 0n)
    const rejected = events(receipt, 'cognitive', 'OutputRejected').map((e) => [e.args.taskId, e.args.miner, e.args.outputHash])
    assert.deepEqual(rejected, [[taskId, addr(2), outputHash('invented')]])
    const payouts = [escrow / 2n + escrow % 2n, escrow / 2n, 0n]
    for (const i of [0, 1, 2]) {
      assert.equal(await balance(addr(i)), before[i]! + payouts[i]! - (fees.get(toAddress(addr(i))) ?? 0n), `miner ${i} balance`)
    }
    assert.equal(await balance(net.deployment.contracts.cognitive), 0n)
    for (const i of [0, 1]) assert.deepEqual([(await stats(i)).agreed, (await stats(i)).rejected], [1n, 0n], `miner ${i} accepted`)
    assert.deepEqual(await stats(2), {assigned: 1n, precommitted: 1n, committed: 1n, agreed: 0n, disagreed: 0n, expired: 0n, rejected: 1n})
    await reverts(settle(taskId, [], []), 'WrongState')
    await reverts(send(oracle(), 'cognitive', 'end', [taskId]), 'WrongState')
  })

  it('settle refunds the oracle when it rejects every output, each rejection named by OutputRejected', async () => {
    const escrow = 7777n
    const {taskId} = await createTask('parallel', 3, [0, 1, 2], escrow)
    await revealAll(taskId, ['swapped model', 'swapped model', 'edited'])
    const oracleBefore = await balance(oracle().wallet.address)
    const receipt = await settle(taskId, [], ['edited', 'swapped model'])
    const end = events(receipt, 'cognitive', 'TaskEnded')[0]!.args
    assert.deepEqual([...end.winners], [])
    assert.equal(end.winningOutputHash, ZERO_HASH)
    assert.equal(end.refund, escrow)
    assert.equal(await balance(oracle().wallet.address), oracleBefore + escrow - receipt.fee)
    assert.deepEqual(events(receipt, 'cognitive', 'OutputRejected').map((e) => e.args.miner), [0, 1, 2].map(addr))
    for (const i of [0, 1, 2]) assert.equal((await stats(i)).rejected, 1n)
  })

  it('only the task\'s oracle settles, and only once the task is Committed or its deadline passed', async () => {
    const escrow = 900n
    const {taskId} = await createTask('parallel', 3, [0, 1, 2], escrow, {precommit: 100, commit: 200})
    await reverts(settle(taskId, [], []), 'DeadlineNotPassed')
    const outputs = ['A', 'B', 'C']
    for (const i of [0, 1, 2]) await precommit(taskId, i, outputs[i]!)
    await commit(taskId, 0, 'A')
    await commit(taskId, 1, 'B')
    await reverts(settle(taskId, [], []), 'DeadlineNotPassed')
    await provider.send('evm_increaseTime', [201])
    await provider.send('evm_mine', [])
    // Past the deadline anyone may `end`, but only the oracle that verified the outputs may settle.
    await reverts(settle(taskId, [], [], outsider), 'NotTaskOracle')
    await reverts(settle(taskId, [], [], miner(0)), 'NotTaskOracle')
    await reverts(settle(taskId, ['A', 'B'], ['C', 'D']), 'TooManyHashes')
    // Within the oracle's grace nobody else may close it: it is verifying.
    await reverts(send(outsider, 'cognitive', 'end', [taskId]), 'DeadlineNotPassed')

    const end = events(await settle(taskId, ['A', 'B'], []), 'cognitive', 'TaskEnded')[0]!.args
    assert.deepEqual([...end.winners], [addr(0), addr(1)], 'both reveals paid though they differ')
    assert.equal(end.payoutEach, 450n)
    assert.equal(await stateOf(taskId), TaskState.Ended)
    assert.equal((await stats(2)).expired, 1n)
    await reverts(settle(taskId, [], []), 'WrongState')
  })

  it('settle leaves a reveal the oracle could not check unpaid, without a fault', async () => {
    const {taskId} = await createTask('parallel', 2, [0, 1], 1000n)
    await revealAll(taskId, ['verified', 'never seen by the oracle'])
    const end = events(await settle(taskId, ['verified'], []), 'cognitive', 'TaskEnded')[0]!.args
    assert.deepEqual([...end.winners], [addr(0)])
    assert.equal(end.payoutEach, 1000n)
    assert.deepEqual([(await stats(1)).disagreed, (await stats(1)).rejected], [1n, 0n])
  })

  it('a miner with faultLimit rejected outputs takes no new work until an admin reinstates it', async () => {
    const rejectedTask = async (): Promise<void> => {
      const {taskId} = await createTask('parallel', 1, [0], 100n)
      await revealAll(taskId, ['invented'])
      await settle(taskId, [], ['invented'])
    }
    assert.equal(await net.contracts.nodeStats.faultLimit(), 3n)
    await rejectedTask()
    await rejectedTask()
    assert.equal(await net.contracts.nodeStats.isSuspended(addr(0)), false, 'below the limit')
    await rejectedTask()
    assert.equal(await net.contracts.nodeStats.isSuspended(addr(0)), true)

    await reverts(createTask('parallel', 2, [1, 0], 100n), 'MinerSuspended')
    const {taskId: parallelId} = await createTask('parallel', 1, [1], 100n)
    await reverts(send(oracle(), 'cognitive', 'reassign', [parallelId, addr(1), addr(0)]), 'MinerSuspended')
    await send(miner(0), 'nodeStats', 'ping', [[net.modelId], true])
    const {taskId: competingId} = await createTask('competing', 1, [], 100n)
    await reverts(precommit(competingId, 0, 'A'), 'MinerSuspended')

    await reverts(send(miner(0), 'nodeStats', 'reinstate', [addr(0)]), 'NotAdmin')
    await reverts(send(miner(0), 'nodeStats', 'setFaultLimit', [0]), 'NotAdmin')
    const limit = await send(net.admin, 'nodeStats', 'setFaultLimit', [4])
    assert.equal(events(limit, 'nodeStats', 'FaultLimitSet')[0]!.args.faultLimit, 4n)
    assert.equal(await net.contracts.nodeStats.isSuspended(addr(0)), false, 'a higher limit lifts the suspension')
    await send(net.admin, 'nodeStats', 'setFaultLimit', [3])
    assert.equal(await net.contracts.nodeStats.isSuspended(addr(0)), true)

    const reinstated = events(await send(net.admin, 'nodeStats', 'reinstate', [addr(0)]), 'nodeStats', 'Reinstated')[0]!.args
    assert.deepEqual([reinstated.node, reinstated.by], [addr(0), net.admin.wallet.address])
    assert.equal((await stats(0)).rejected, 0n)
    assert.equal(await net.contracts.nodeStats.isSuspended(addr(0)), false)
    await reverts(send(net.admin, 'nodeStats', 'reinstate', [addr(0)]), 'NothingToReinstate')
    await precommit(competingId, 0, 'A')
    await send(oracle(), 'cognitive', 'reassign', [parallelId, addr(1), addr(0)])
    await createTask('parallel', 2, [1, 0], 100n)
  })

  it('with faultLimit 0 rejections never suspend', async () => {
    await send(net.admin, 'nodeStats', 'setFaultLimit', [0])
    for (let round = 0; round < 3; round++) {
      const {taskId} = await createTask('parallel', 1, [0], 100n)
      await revealAll(taskId, ['invented'])
      await settle(taskId, [], ['invented'])
    }
    assert.equal((await stats(0)).rejected, 3n)
    assert.equal(await net.contracts.nodeStats.isSuspended(addr(0)), false)
    await createTask('parallel', 1, [0], 100n)
  })

  it('an address the ACL does not allow cannot register, and the admin alone grants roles', async () => {
    await reverts(registerNode(outsider, net.contracts, '0x0102', 'miner', '{}'), 'NotAllowedByAcl')
    await reverts(grantRole(outsider, net.contracts, AclRole.Miner, outsider.address), 'NotAdmin')
    await grantRole(net.admin.queue, net.contracts, AclRole.Miner, outsider.address)
    await reverts(grantRole(net.admin.queue, net.contracts, AclRole.Miner, outsider.address), 'RoleAlreadyGranted')
    await reverts(registerNode(outsider, net.contracts, '0x0102', 'oracle', '{}'), 'NotAllowedByAcl')
    await reverts(registerNode(outsider, net.contracts, miner(0).peerId, 'miner', '{}'), 'PeerIdTaken')
    await registerNode(outsider, net.contracts, '0x0102', 'miner', '{"name":"late"}')
    assert.equal(await net.contracts.iam.isActive(outsider.address, AclRole.Miner), true)
    assert.equal(toAddress(await net.contracts.iam.addressOfPeer('0x0102')), outsider.address)
    await reverts(registerNode(outsider, net.contracts, '0x0103', 'miner', '{}'), 'AlreadyRegistered')
    await reverts(revokeRole(net.admin.queue, net.contracts, AclRole.Admin, net.admin.wallet.address), 'LastAdmin')
  })

  it('a node registers as Validator once the ACL grants it the role, and holds no miner slot', async () => {
    await reverts(registerNode(outsider, net.contracts, '0x0102', 'validator', '{}'), 'NotAllowedByAcl')
    await grantRole(net.admin.queue, net.contracts, AclRole.Validator, outsider.address)
    const receipt = await registerNode(outsider, net.contracts, '0x0102', 'validator', '{"name":"validator-1"}')
    assert.equal(Number(events(receipt, 'iam', 'NodeRegistered')[0]!.args.role), AclRole.Validator)
    assert.equal(await net.contracts.iam.isActive(outsider.address, AclRole.Validator), true)
    assert.equal(Number(await net.contracts.iam.activeRoleOf(outsider.address)), AclRole.Validator)
    const now = (await provider.getBlock('latest'))!.timestamp
    await reverts(send(oracle(), 'cognitive', 'createTask', [
      hexlify(randomBytes(32)), net.modelId, INPUT, PARAMS, 1n, TASK_MODE_CODE.parallel, 1, [outsider.address], now + 600, now + 1200
    ]), 'NotActiveMiner')
    await reverts(send(net.admin, 'iam', 'register', ['0x0103', AclRole.Admin, '{}']), 'InvalidRole')
  })

  it('revoking the ACL role makes isActive false and shuts the node out of pings and tasks', async () => {
    assert.equal(await net.contracts.iam.isActive(addr(0), AclRole.Miner), true)
    await revokeRole(net.admin.queue, net.contracts, AclRole.Miner, addr(0))
    assert.equal(await net.contracts.iam.isActive(addr(0), AclRole.Miner), false)
    assert.equal(Number(await net.contracts.iam.activeRoleOf(addr(0))), AclRole.None)
    await reverts(send(miner(0), 'nodeStats', 'ping', [[net.modelId], true]), 'NotActiveNode')
    await reverts(createTask('parallel', 1, [0], 0n), 'NotActiveMiner')
  })

  it('a node deactivates itself or is deactivated by an admin, frees its peer id and may register again', async () => {
    await reverts(send(miner(1), 'iam', 'deactivate', [addr(0)]), 'NotSelfOrAdmin')
    await send(miner(0), 'iam', 'deactivate', [addr(0)])
    assert.equal(await net.contracts.iam.isActive(addr(0), AclRole.Miner), false)
    assert.equal(await net.contracts.iam.addressOfPeer(miner(0).peerId), '0x0000000000000000000000000000000000000000')
    await reverts(send(miner(0), 'iam', 'updateMetadata', ['{}']), 'NotRegistered')
    await registerNode(miner(0).queue, net.contracts, miner(0).peerId, 'miner', '{"name":"back"}')
    assert.equal((await net.contracts.iam.nodeOf(addr(0))).metadata, '{"name":"back"}')
    await send(net.admin, 'iam', 'deactivate', [addr(0)])
    assert.equal((await net.contracts.iam.nodeOf(addr(0))).active, false)
  })

  it('only Cognitive changes NodeStats counters, and only active nodes ping', async () => {
    await reverts(send(net.admin, 'nodeStats', 'increment', [addr(0), Counter.Agreed]), 'OnlyCognitive')
    await reverts(send(miner(0), 'nodeStats', 'increment', [addr(0), Counter.Agreed]), 'OnlyCognitive')
    await reverts(send(net.admin, 'nodeStats', 'setCognitive', [outsider.address]), 'CognitiveAlreadySet')
    await reverts(send(miner(0), 'nodeStats', 'setReadyWindow', [0]), 'NotAdmin')
    await reverts(send(outsider, 'nodeStats', 'ping', [[net.modelId], true]), 'NotActiveNode')
    const receipt = await send(miner(0), 'nodeStats', 'ping', [[net.modelId], true])
    assert.equal(events(receipt, 'nodeStats', 'Pinged')[0]!.args.pingCount, 1n)
    const s = await net.contracts.nodeStats.statsOf(addr(0))
    assert.equal(s.ready, true)
    assert.deepEqual([...await net.contracts.nodeStats.readyModelsOf(addr(0))], [net.modelId])
  })

  it('a node serving several models is ready for each model its last ping listed, and no other', async () => {
    await send(miner(1), 'nodeStats', 'ping', [[net.modelId, 7n], true])
    assert.equal(await net.contracts.nodeStats.isReady(addr(1), net.modelId), true)
    assert.equal(await net.contracts.nodeStats.isReady(addr(1), 7n), true)
    assert.equal(await net.contracts.nodeStats.isReady(addr(1), 8n), false)
    await send(miner(1), 'nodeStats', 'ping', [[7n], true])
    assert.equal(await net.contracts.nodeStats.isReady(addr(1), net.modelId), false, 'a model dropped from the list is no longer ready')
    await send(miner(1), 'nodeStats', 'ping', [[7n], false])
    assert.equal(await net.contracts.nodeStats.isReady(addr(1), 7n), false, 'not ready at all')
    await reverts(send(miner(1), 'nodeStats', 'ping', [Array.from({length: 33}, (_, i) => BigInt(i + 1)), true]), 'TooManyModels')
    await send(miner(1), 'nodeStats', 'ping', [[net.modelId], true])
  })

  it('the model registry is admin-managed and numbers models from 1', async () => {
    assert.equal(net.modelId, 1n)
    const model = await net.contracts.modelRegistry.modelOf(1n)
    assert.deepEqual([model.name, model.cid, model.sha256Digest, model.sizeBytes, model.quantization, model.active],
      [MODEL.name, MODEL.cid, MODEL.sha256, BigInt(MODEL.sizeBytes), MODEL.quantization, true])
    await reverts(send(miner(0), 'modelRegistry', 'registerModel', ['x', 'y', MODEL.sha256, 1n, 'Q4']), 'NotAdmin')
    await reverts(send(net.admin, 'modelRegistry', 'registerModel', ['', 'y', MODEL.sha256, 1n, 'Q4']), 'InvalidModel')
    await reverts(send(net.admin, 'modelRegistry', 'updateModel', [5n, 'x', 'y', MODEL.sha256, 1n, 'Q4']), 'UnknownModel')
    await send(net.admin, 'modelRegistry', 'updateModel', [1n, 'renamed', MODEL.cid, MODEL.sha256, 2n, 'Q4_0'])
    assert.equal((await net.contracts.modelRegistry.modelOf(1n)).name, 'renamed')
    await reverts(send(net.admin, 'modelRegistry', 'setModelActive', [1n, true]), 'ActivationUnchanged')
  })
})
