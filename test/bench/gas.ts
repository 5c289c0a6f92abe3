// Gas per contract operation and per task, on anvil. Run: npx tsx test/bench/gas.ts
import {keccak256, toUtf8Bytes, type TransactionReceipt} from 'ethers'
import {grantRole, registerNode} from '../../src/chain/admission.js'
import {startAnvil} from '../../src/devnet/anvil.js'
import {taskCommitment} from '../../src/chain/commitment.js'
import type {ContractName} from '../../src/chain/contractNames.js'
import {devnetWallet, fundDevnetAccounts} from '../../src/devnet/devnetKeys.js'
import {createProvider} from '../../src/chain/provider.js'
import {AclRole, TASK_MODE_CODE} from '../../src/chain/enums.js'
import type {TaskMode} from '../../src/protocols/messages.js'
import {setupDevnet, type DevnetAccount} from '../../src/devnet/setupDevnet.js'
import {TxQueue} from '../../src/chain/txQueue.js'

const anvil = await startAnvil()
try {
  const provider = createProvider(anvil.rpcUrl, anvil.chainId)
  const net = await setupDevnet({
    provider,
    miners: 3,
    model: {name: 'stories260K', cid: 'bafkreiexamplemodelcid', sha256: '0x' + 'ab'.repeat(32), sizeBytes: 1_185_376, quantization: 'F32'}
  })
  const oracle = net.oracles[0]!
  const gas = new Map<string, bigint[]>()
  const record = (op: string, receipt: TransactionReceipt): TransactionReceipt => {
    gas.set(op, [...gas.get(op) ?? [], receipt.gasUsed])
    return receipt
  }
  const send = async (from: DevnetAccount, key: ContractName, fn: string, args: unknown[], value?: bigint): Promise<TransactionReceipt> => {
    const contract = net.contracts[key]
    const to = contract.target as string
    return await from.queue.send(fn, () => ({to, data: contract.interface.encodeFunctionData(fn, args), value}))
  }

  // Admission of one more miner, measured here because setupDevnet does not expose receipts.
  const wallet = devnetWallet('miner', 50, provider)
  await fundDevnetAccounts(provider, [wallet.address])
  const newcomer = new TxQueue({wallet, provider})
  record('acl.grantRole', await grantRole(net.admin.queue, net.contracts, AclRole.Miner, wallet.address))
  record('iam.register (39-byte peer id)', await registerNode(newcomer, net.contracts, net.miners[0]!.peerId.map((b) => b ^ 1), 'miner', '{"name":"miner-50"}'))

  for (const miner of net.miners) record('nodeStats.ping (first)', await send(miner, 'nodeStats', 'ping', [[net.modelId], true]))
  for (const miner of net.miners) record('nodeStats.ping', await send(miner, 'nodeStats', 'ping', [[net.modelId], true]))

  // `settle` with no rejection: the verified path, the one output hash accepted.
  const runTask = async (mode: TaskMode, k: number, round: number, close: 'end' | 'settle'): Promise<bigint> => {
    const miners = net.miners.slice(0, k)
    const now = (await provider.getBlock('latest'))!.timestamp
    const created = await send(oracle, 'cognitive', 'createTask', [
      keccak256(toUtf8Bytes(`request/${round}/${mode}/${k}/${close}`)), net.modelId, 'Once upon a time there was a little robot who', '0x' + Buffer.from(JSON.stringify({temperature: 0, maxTokens: 64})).toString('hex'),
      42n, TASK_MODE_CODE[mode], k, mode === 'parallel' ? miners.map((m) => m.wallet.address) : [], now + 600, now + 1200
    ], 10n ** 15n)
    record(`createTask ${mode} k=${k}`, created)
    const taskId = BigInt(created.logs.map((l) => net.contracts.cognitive.interface.parseLog(l)).find((e) => e?.name === 'TaskCreated')!.args.taskId as bigint)
    let total = created.gasUsed
    const output = 'Once upon a time there was a little robot who loved to sing. One day it met a bird.'
    const salt = (i: number): string => keccak256(toUtf8Bytes(`salt/${round}/${i}`))
    for (const [i, m] of miners.entries()) {
      const r = await send(m, 'cognitive', 'precommit', [taskId, taskCommitment(taskId, m.wallet.address, output, salt(i))])
      total += record(`precommit ${mode}${mode === 'competing' ? ' (takes a slot)' : ''}`, r).gasUsed
    }
    for (const [i, m] of miners.entries()) {
      total += record('commit (84-byte output)', await send(m, 'cognitive', 'commit', [taskId, output, salt(i)])).gasUsed
    }
    total += record(`${close} k=${k}`, await send(oracle, 'cognitive', close, close === 'end' ? [taskId] : [taskId, [keccak256(toUtf8Bytes(output))], []])).gasUsed
    return total
  }

  const totals: Array<[string, bigint]> = []
  for (const [mode, k, close] of [['parallel', 1, 'end'], ['parallel', 3, 'end'], ['competing', 1, 'end'], ['competing', 3, 'end'], ['parallel', 3, 'settle']] as const) {
    // Round 0 pays first-touch storage (zero → nonzero counters); round 1 is the steady state.
    await runTask(mode, k, 0, close)
    totals.push([`${mode} k=${k}, ${close}`, await runTask(mode, k, 1, close)])
  }

  const mean = (values: bigint[]): bigint => values.reduce((a, b) => a + b) / BigInt(values.length)
  const lines = [
    '| operation | gas (mean) | samples |',
    '| --- | ---: | ---: |',
    ...[...gas.entries()].map(([op, values]) => `| ${op} | ${mean(values).toLocaleString('en-US')} | ${values.length} |`),
    '',
    '| task, steady state (createTask + k precommit + k commit + end or settle) | total gas |',
    '| --- | ---: |',
    ...totals.map(([name, total]) => `| ${name} | ${total.toLocaleString('en-US')} |`)
  ]
  process.stdout.write(lines.join('\n') + '\n')
} finally {
  await anvil.stop()
}
