// How fast an oracle gets tasks onto the chain while settlement is running: 200 `end`
// transactions queued, then 200 createTask, from one wallet on anvil. Side by side: createTask on
// the user lane (it goes before queued settlement) and on the same lane as settlement (FIFO, as
// before the lanes). Run: npx tsx test/bench/taskRate.ts
import {keccak256, toUtf8Bytes, type TransactionReceipt} from 'ethers'
import {TASK_MODE_CODE} from '../../src/chain/enums.js'
import {createProvider} from '../../src/chain/provider.js'
import type {TxLane} from '../../src/chain/txQueue.js'
import {startAnvil} from '../../src/devnet/anvil.js'
import {setupDevnet} from '../../src/devnet/setupDevnet.js'

const TASKS = 200
const anvil = await startAnvil()
try {
  const provider = createProvider(anvil.rpcUrl, anvil.chainId)
  const net = await setupDevnet({
    provider, miners: 3,
    model: {name: 'stories260K', cid: 'bafkreiexamplemodelcid', sha256: '0x' + 'ab'.repeat(32), sizeBytes: 1_185_376, quantization: 'F32'}
  })
  const oracle = net.oracles[0]!
  const cognitive = net.contracts.cognitive
  const to = cognitive.target as string
  let round = 0
  const createTask = async (lane: TxLane): Promise<TransactionReceipt> => {
    const now = (await provider.getBlock('latest'))!.timestamp
    const data = cognitive.interface.encodeFunctionData('createTask', [
      keccak256(toUtf8Bytes(`bench/${round++}`)), net.modelId, 'Once upon a time', '0x7b7d', 42n, TASK_MODE_CODE.competing, 1, [], now + 100, now + 200
    ])
    return await oracle.queue.send('createTask', () => ({to, data, value: 10n ** 15n}), {lane})
  }
  const taskIdOf = (receipt: TransactionReceipt): bigint =>
    BigInt(receipt.logs.map(l => cognitive.interface.parseLog(l)).find(e => e?.name === 'TaskCreated')!.args.taskId as bigint)

  const variant = async (createLane: TxLane): Promise<{tasksPerSecond: number, firstMs: number, endsPerSecond: number}> => {
    // Tasks to settle: created, then left to expire (nobody works on them here).
    const toSettle = await Promise.all(Array.from({length: TASKS}, async () => taskIdOf(await createTask('user'))))
    await provider.send('evm_increaseTime', [101])
    await provider.send('evm_mine', [])
    const start = performance.now()
    const ends = toSettle.map(async taskId => await oracle.queue.send('end', () => ({to, data: cognitive.interface.encodeFunctionData('end', [taskId])}), {lane: 'settlement'}))
    let firstMs = 0
    const creates = Array.from({length: TASKS}, async (_, i) => {
      const receipt = await createTask(createLane)
      if (i === 0) firstMs = performance.now() - start
      return receipt
    })
    await Promise.all(creates)
    const createdMs = performance.now() - start
    await Promise.all(ends)
    const endedMs = performance.now() - start
    return {tasksPerSecond: TASKS / (createdMs / 1000), firstMs, endsPerSecond: TASKS / (endedMs / 1000)}
  }

  // Alternating, twice each: the box is shared and noisy.
  const rows: Array<[string, Awaited<ReturnType<typeof variant>>]> = []
  for (let i = 0; i < 2; i++) {
    rows.push(['createTask on the user lane', await variant('user')])
    rows.push(['createTask behind settlement (one FIFO lane)', await variant('settlement')])
  }
  process.stdout.write([
    `${TASKS} \`end\` txs queued, then ${TASKS} createTask, one oracle wallet, anvil automine:`,
    '',
    '| variant | createTask/s (all 200 mined) | first createTask mined after | end/s |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map(([name, r]) => `| ${name} | ${r.tasksPerSecond.toFixed(1)} | ${r.firstMs.toFixed(0)} ms | ${r.endsPerSecond.toFixed(1)} |`)
  ].join('\n') + '\n')
  provider.destroy()
} finally {
  await anvil.stop()
}
