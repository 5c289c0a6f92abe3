/**
 * Lying miners against a real network (issue 11): 1 oracle that verifies in process, honest and
 * rogue miners as their own OS processes on a real chain. Rogues run the project's own miner
 * with a lying engine (test/support/rogueEngine.ts). For each attack: what the user receives,
 * streamed through the official `openai` client or not (never the lie), and what the chain pays
 * and records (only verified work paid; lies counted; a repeat liar suspended).
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import type {JsonRpcProvider} from 'ethers'
import OpenAI from 'openai'
import type {TaskRecord} from '../../src/actors/oracle/messages.js'
import {connectContracts, type CortensorContracts} from '../../src/chain/contracts.js'
import {createProvider} from '../../src/chain/provider.js'
import {startDevnet, type Devnet, type DevnetNode} from '../../src/devnet/devnet.js'
import {LlamaEngine} from '../../src/inference/llamaEngine.js'
import {toAddress} from '../../src/protocols/address.js'
import {greedy} from '../../src/protocols/messages.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {PROJECT_ROOT, SHARED_MODEL_PATH} from '../../src/util/paths.js'
import type {RogueBehaviour} from '../support/rogueEngine.js'
import {devnetApi} from '../support/devnetApi.js'
import {until} from '../support/until.js'

const ROGUE_MINER = join(PROJECT_ROOT, 'test', 'support', 'rogueMiner.ts')
const MAX_TOKENS = 32
const PROMPT = 'Once upon a time'

let dir: string
let devnet: Devnet
const {api, settled, ready} = devnetApi(() => devnet)
let client: OpenAI
let contracts: CortensorContracts
let provider: JsonRpcProvider
/** The honest answer: the F32 model's greedy continuation, computed here. */
let honest: string

async function rogue (index: number, behaviour: RogueBehaviour): Promise<DevnetNode> {
  return await devnet.startMiner({index, admitted: true, script: [ROGUE_MINER, behaviour]})
}

/** Waits until `node` is the only miner the oracle can pick (the others' last heartbeats aged out). */
async function onlyLive (node: DevnetNode): Promise<void> {
  await until(`only ${node.name} live at the oracle`, 60_000, async () => {
    const {json} = await api('/api/v1/miners')
    const live = (json.miners as Array<{address: string, heartbeatAgeMs: number, freeSlots: number, models: unknown[]}>).filter(m => m.heartbeatAgeMs < 3_000)
    return live.length === 1 && toAddress(live[0]?.address ?? '') === toAddress(node.info.address) && (live[0]?.freeSlots ?? 0) > 0 && (live[0]?.models.length ?? 0) > 0 ? true : undefined
  })
}

async function statsOf (node: DevnetNode): Promise<{agreed: bigint, rejected: bigint}> {
  return await contracts.nodeStats.getFunction('statsOf')(node.info.address) as {agreed: bigint, rejected: bigint}
}

/** Streams a completion through the official client; returns the text the user saw, or the error it met. */
async function streamed (redundancy: number): Promise<{text: string, error?: string}> {
  let text = ''
  try {
    const stream = await client.completions.create({model: 'stories260K', prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0, stream: true, redundancy} as any) as unknown as AsyncIterable<{choices: Array<{text: string}>}>
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? ''
    return {text}
  } catch (err) {
    return {text, error: (err as Error).message}
  }
}

const complete = async (redundancy: number): Promise<{status: number, json: any}> =>
  await api('/api/v1/completions', {prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0, redundancy, mode: 'parallel'})

describe('trust: users see only verified text, only verified work is paid', {timeout: 600_000}, () => {
  let honestMiner: DevnetNode
  let liars: DevnetNode[]
  let gpu: DevnetNode | undefined

  before(async () => {
    const engine = await LlamaEngine.load({modelPath: SHARED_MODEL_PATH, threads: 1, logger: createSilentLogger()})
    honest = (await engine.complete({prompt: PROMPT, seed: 0, params: greedy(MAX_TOKENS)})).text
    await engine.dispose()
    dir = await mkdtemp(join(tmpdir(), 'cortensor-trust-'))
    devnet = await startDevnet({
      miners: 1, spareMiners: 8, dir, logLevel: 'warn',
      nodeConfig: {inference: {sequences: 1}, stats: {heartbeatIntervalMs: 1_000}, oracle: {precommitWindowS: 20, commitWindowS: 40, auditRate: 1}}
    })
    client = new OpenAI({apiKey: devnet.apiToken, baseURL: `${devnet.apiUrl}/v1`, maxRetries: 0})
    provider = createProvider(devnet.anvil.rpcUrl, devnet.deployment.chainId)
    contracts = connectContracts(devnet.deployment, provider)
    honestMiner = devnet.miners[0] as DevnetNode
    // Two colluders: the invented lie is seeded by the prompt, so both hand in the same one.
    liars = [await rogue(1, 'invented'), await rogue(2, 'invented')]
    await ready([honestMiner, ...liars])
  })

  after(async () => {
    provider?.destroy()
    await devnet?.stop()
    if (dir != null && process.env.KEEP_DEVNET !== '1') await rm(dir, {recursive: true, force: true})
  })

  it('two colluding liars of k=3: the stream shows only the honest text; the honest miner is paid, the liars recorded', async () => {
    const seen = await streamed(3)
    assert.equal(seen.error, undefined)
    assert.equal(seen.text, honest, 'the user saw exactly the verified answer')
    const {json: tasks} = await api('/api/v1/tasks')
    const record = await settled((tasks.tasks as TaskRecord[])[0]?.taskId ?? '')
    assert.deepEqual(record.agreement?.agreeing, [toAddress(honestMiner.info.address)])
    assert.deepEqual(new Set(record.agreement?.rejected), new Set(liars.map(l => toAddress(l.info.address))))
    const ended = record.trail.find(e => e.name === 'TaskEnded')
    assert.deepEqual((ended?.args.winners as string[]).map(toAddress), [toAddress(honestMiner.info.address)])
    assert.equal(record.trail.filter(e => e.name === 'OutputRejected').length, 2)
    for (const liar of liars) assert.equal((await statsOf(liar)).rejected, 1n)
  })

  it('a lone liar (k=1) never reaches the user, streamed or not, and is suspended after its third proven lie', async () => {
    await devnet.kill(honestMiner)
    await devnet.kill(liars[1] as DevnetNode)
    const liar = liars[0] as DevnetNode
    await onlyLive(liar)
    const plain = await complete(1)
    assert.equal(plain.status, 502)
    assert.equal(plain.json.error?.code, 'RESULT_REJECTED')
    const seen = await streamed(1)
    assert.equal(seen.text, '', 'no streamed piece of the lie reached the user')
    assert.match(seen.error ?? '', /RESULT_REJECTED|no miner's output passed verification/)
    await until('the liar suspended on chain', 120_000, async () => (await contracts.nodeStats.getFunction('isSuspended')(liar.info.address) as boolean) ? true : undefined)
    assert.equal((await statsOf(liar)).rejected, 3n)
    // The oracle reads suspensions every 10 s (at once when the chain refuses one): then the liar gets no more work at all.
    const refused = await until('the oracle to stop picking the suspended liar', 30_000, async () => {
      const r = await complete(1)
      return r.json.error?.code === 'NO_MINER_READY' ? r : undefined
    })
    assert.equal(refused.status, 503)
    await devnet.kill(liar)
  })

  for (const [index, behaviour] of [[4, 'edited'], [5, 'replay'], [6, 'swapped'], [7, 'streamDiffers']] as const) {
    it(`a lone ${behaviour} miner (k=1): the user never gets its output, streamed or not; the chain records it`, async () => {
      const liar = await rogue(index, behaviour)
      await onlyLive(liar)
      const plain = await complete(1)
      assert.equal(plain.status, 502, JSON.stringify(plain.json))
      assert.equal(plain.json.error?.code, 'RESULT_REJECTED')
      const seen = await streamed(1)
      assert.match(seen.error ?? '', /RESULT_REJECTED|no miner's output passed verification/)
      // What was streamed, if anything, passed the verifier: a prefix of the honest answer (a
      // miner that streams honest tokens and reveals a lie shows the user only the honest part).
      assert.ok(honest.startsWith(seen.text), `the user saw ${JSON.stringify(seen.text)}`)
      await until(`${behaviour}: both outputs recorded as rejected on chain`, 90_000, async () => (await statsOf(liar)).rejected === 2n ? true : undefined)
      assert.equal((await statsOf(liar)).agreed, 0n)
      await devnet.kill(liar)
    })
  }

  it('an honest miner of another hardware class (Q4 declared as a GPU class) is accepted and paid next to the verifier\'s class', async () => {
    gpu = await rogue(3, 'gpuHonest')
    await devnet.restart(honestMiner)
    await ready([honestMiner, gpu])
    const {status, json} = await complete(2)
    assert.equal(status, 200)
    const record = await settled(json.task_id)
    assert.equal(json.answer, honest, `the verifier's own class gives the answer: ${JSON.stringify(record.results)}`)
    assert.deepEqual(new Set(record.agreement?.agreeing), new Set([toAddress(honestMiner.info.address), toAddress(gpu.info.address)]))
    assert.deepEqual(record.agreement?.rejected, [])
    const ended = record.trail.find(e => e.name === 'TaskEnded')
    assert.equal((ended?.args.winners as string[]).length, 2, 'both verified outputs paid, though their hashes differ')
  })
  it('a lazy competitor (competing k=1) that answers at once with invented text never wins: the user gets the honest text, the lazy one is not paid', async () => {
    // Two competitors, so the oracle (which hears up to 2k of them) hears both, whoever is first.
    if (gpu != null) await devnet.kill(gpu)
    const lazy = await rogue(8, 'invented')
    await ready([lazy, honestMiner])
    // A competitor takes a slot only once its NodeStats ping says it is ready (a restarted one pings again).
    for (const node of [lazy, honestMiner]) {
      await until(`${node.name} ready on chain`, 60_000, async () => (await contracts.nodeStats.getFunction('isReady')(node.info.address, BigInt(devnet.modelId)) as boolean) ? true : undefined)
    }
    const {status, json} = await api('/api/v1/completions', {prompt: PROMPT, max_tokens: MAX_TOKENS, temperature: 0, redundancy: 1, mode: 'competing'})
    assert.equal(status, 200, JSON.stringify(json))
    assert.equal(json.answer, honest)
    const record = await settled(json.task_id)
    const lazyAddress = toAddress(lazy.info.address)
    const lazyResult = record.results.find(r => r.miner === lazyAddress)
    if (lazyResult != null) assert.equal(lazyResult.verdict?.accepted, false, 'the lazy output was checked and refused')
    const ended = record.trail.find(e => e.name === 'TaskEnded')
    assert.ok(!(ended?.args.winners as string[] ?? []).map(toAddress).includes(lazyAddress), 'the lazy miner was not paid')
  })
})
