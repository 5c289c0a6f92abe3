import {API_LIMIT_DEFAULTS} from '../api/apiLimits.js'
import {hexlify, randomBytes} from 'ethers'
import {createHeliaLight} from 'helia'
import {mkdir, rm, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {join, resolve} from 'node:path'
import {startAnvil, type Anvil} from './anvil.js'
import {writeDeployment, type Deployment} from '../chain/deployment.js'
import {devnetPrivateKey, devnetWallet, fundDevnetAccounts} from './devnetKeys.js'
import {createProvider} from '../chain/provider.js'
import {setupDevnet} from './setupDevnet.js'
import {registerModel} from '../chain/admission.js'
import {resolveModelPath} from '../inference/resolveModelPath.js'
import {HeliaModelStore} from '../model/heliaModelStore.js'
import type {Role} from '../protocols/messages.js'
import {createSilentLogger, type Logger} from '../util/logger.js'
import {PROJECT_ROOT, SHARED_Q4_MODEL_PATH, STORIES_260K, STORIES_260K_Q4} from '../util/paths.js'
import {DEFAULTS} from '../runtime/configDefaults.js'
import {writeKeystore} from '../runtime/keys.js'
import {startNodeProcess, type NodeInfo, type NodeProcess} from './nodeProcess.js'

/** Devnet keystores are encrypted like real ones; the password is no secret (nor are the keys). */
const DEVNET_KEY_PASSWORD = 'cortensor-devnet'

export interface DevnetInit {
  miners: number
  /** Validator nodes to start (default 0); with any, the oracle verifies through them (`oracle.verifier: "validators"`). */
  validators?: number
  /** Folder for chain deployment, keys, node data and logs; wiped first. */
  dir: string
  logLevel: string
  /** Extra config for every node (tests shorten timeouts). */
  nodeConfig?: Record<string, unknown>
  /** Keys of this many more miners are funded and ACL-admitted but not started (spares for tests). */
  spareMiners?: number
  onProgress?: (line: string) => void
  logger?: Logger
  signal?: AbortSignal
}

export interface StartMinerOptions {
  index: number
  /** false: a key the ACL never admitted. */
  admitted: boolean
  /** Overrides of its config. */
  nodeConfig?: Record<string, unknown>
  /** Runs this script (path, then leading arguments) with `--config FILE` instead of `cortensord start`: a test's rogue miner. */
  script?: string[]
}

export interface DevnetNode {
  name: string
  role: Role
  /** The node's config; a restart starts the same file again (same key, ports and data dir). */
  configFile: string
  /** Its loopback ports, fixed for the devnet's life: a restarted node is where it was. */
  ports: {p2p: number, api: number}
  /** Another entry script than `cortensord start` (a test's rogue miner), with its leading arguments; a restart runs it again. */
  script?: string[]
  /** The current OS process; replaced by `restart`. */
  process: NodeProcess
  /** From the current process's node.json; replaced by `restart`. */
  info: NodeInfo
}

export interface Devnet {
  dir: string
  anvil: Anvil
  deployment: Deployment
  /** The F32 model: what a request naming no model runs on. */
  modelId: string
  /** Every registered model: stories260K (F32) then stories260K-Q4_0; every node lists both. */
  modelIds: string[]
  oracle: DevnetNode
  miners: DevnetNode[]
  /** Validator nodes, each holding the model files the oracle seeds. */
  validators: DevnetNode[]
  /** Base URL of the oracle's API. */
  apiUrl: string
  /** Bearer token of the oracle's API (fresh for every devnet). */
  apiToken: string
  /** Starts one more miner: `admitted: false` uses a key the ACL never admitted; `nodeConfig` overrides its config. */
  startMiner: (opts: StartMinerOptions) => Promise<DevnetNode>
  /**
   * Stops `node` (SIGTERM, SIGKILL after `graceMs`; nothing to do if it already exited or was
   * killed) and starts its config file again: same key, data dir, p2p and API ports. Updates
   * `node.process` and `node.info` in place and resolves with `node` once the new process is up.
   */
  restart: (node: DevnetNode, opts?: {graceMs?: number}) => Promise<DevnetNode>
  /** SIGKILLs `node`'s process (a crash: no cleanup runs) and resolves once it has exited. */
  kill: (node: DevnetNode) => Promise<void>
  stop: () => Promise<void>
}

/**
 * One local network on loopback: anvil from its npm package, contracts deployed and wired,
 * 1 oracle + N miners (+ M validators) admitted through ACL and IAM, stories260K and its 4-bit
 * copy registered in the ModelRegistry, then every node started as its own OS process. Only the
 * oracle and the validators have the model files: miners fetch them over IPFS and verify them.
 */
export async function startDevnet (init: DevnetInit): Promise<Devnet> {
  const progress = init.onProgress ?? (() => {})
  const logger = init.logger ?? createSilentLogger()
  const dir = resolve(init.dir)
  await rm(dir, {recursive: true, force: true})
  await mkdir(dir, {recursive: true})
  // Every process ever started (restarts add theirs); stopping an exited one is a no-op.
  const nodes: NodeProcess[] = []
  let anvil: Anvil | undefined
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map(async n => await n.stop()))
    await anvil?.stop()
  }

  try {
    progress('starting the chain (anvil)')
    anvil = await startAnvil({logger, signal: init.signal})
    const provider = createProvider(anvil.rpcUrl, anvil.chainId)

    progress('hashing the models and computing their IPFS CIDs')
    const modelFile = await resolveModelPath({cacheDirectory: join(PROJECT_ROOT, '.data', 'model-cache'), logger})
    const q4File = SHARED_Q4_MODEL_PATH
    const cidStore = createHeliaLight()
    const cids = new HeliaModelStore({host: cidStore, modelDir: join(dir, 'model-cache'), logger})
    const added = await cids.addFile(modelFile)
    const addedQ4 = await cids.addFile(q4File)
    await cidStore.stop()

    const spares = init.spareMiners ?? 0
    const validatorCount = init.validators ?? 0
    progress(`deploying contracts, admitting 1 oracle + ${init.miners + spares} miners${validatorCount > 0 ? ` + ${validatorCount} validators` : ''}, registering ${STORIES_260K.name} and ${STORIES_260K_Q4.name}`)
    const net = await setupDevnet({
      provider, miners: init.miners + spares, validators: validatorCount, logger, signal: init.signal,
      model: {name: STORIES_260K.name, cid: added.cid, sha256: `0x${added.sha256}`, sizeBytes: added.sizeBytes, quantization: STORIES_260K.quantization}
    })
    const q4Id = await registerModel(net.admin.queue, net.contracts, {name: STORIES_260K_Q4.name, cid: addedQ4.cid, sha256: `0x${addedQ4.sha256}`, sizeBytes: addedQ4.sizeBytes, quantization: STORIES_260K_Q4.quantization}, {signal: init.signal})
    const deploymentFile = join(dir, 'deployment.json')
    await writeDeployment(deploymentFile, net.deployment)
    const modelId = String(net.modelId)
    const modelIds = [modelId, String(q4Id)]
    /** Every node lists both models; `files` gives a node its own copies (the oracle and validators seed them). */
    const models = (files: boolean): Array<{id: number, file?: string}> => files
      ? [{id: Number(modelId), file: modelFile}, {id: Number(q4Id), file: q4File}]
      : modelIds.map(id => ({id: Number(id)}))
    // A key the ACL never admitted, funded so it can try (and fail) to register.
    await fundDevnetAccounts(provider, [devnetWallet('miner', UNADMITTED_INDEX_BASE).address])
    provider.destroy()
    progress(`contracts at ${net.deployment.contracts.cognitive} (Cognitive), model ids ${modelId} (${STORIES_260K.name}, cid ${added.cid}) and ${q4Id} (${STORIES_260K_Q4.name}, cid ${addedQ4.cid})`)

    const passwordFile = join(dir, 'devnet-password')
    await writeFile(passwordFile, DEVNET_KEY_PASSWORD, {mode: 0o600})

    /** Every start of a node's config file appends to the same log. */
    const startProcess = (name: string, configFile: string, dataDir: string, script?: string[]): NodeProcess => {
      const proc = startNodeProcess({name, configFile, dataDir, logFile: join(dir, `${name}.log`), script})
      nodes.push(proc)
      return proc
    }

    /** `roleDefaults` sit under the test's `nodeConfig`; `extra` over it. */
    const launch = async (name: string, role: Role, privateKey: string, extra: Record<string, unknown>, roleDefaults: Record<string, unknown> = {}, script?: string[]): Promise<DevnetNode> => {
      const nodeDir = join(dir, name)
      await mkdir(nodeDir, {recursive: true})
      const keystore = join(nodeDir, 'key.json')
      await writeKeystore(keystore, privateKey, DEVNET_KEY_PASSWORD)
      // Many nodes on one host: each gets its own ports, written into its config so that a
      // restart binds the same ones (the defaults are one fixed pair per host).
      const {p2p: p2pPort, api: apiPort} = await allocateNodePorts()
      const config = mergeConfig({
        role, networkId: DEFAULTS.networkId, keystore, keyPasswordFile: passwordFile,
        chain: {rpcUrls: [anvil?.rpcUrl], deploymentFile},
        p2p: {listen: [`/ip4/127.0.0.1/tcp/${p2pPort}`]},
        dataDir: join(nodeDir, 'data'),
        models: models(false),
        api: {host: '127.0.0.1', port: apiPort},
        logLevel: init.logLevel
      }, roleDefaults, init.nodeConfig ?? {}, extra)
      const configFile = join(nodeDir, 'config.json')
      await writeFile(configFile, JSON.stringify(config, null, 2))
      const proc = startProcess(name, configFile, config.dataDir as string, script)
      return {name, role, configFile, ports: {p2p: p2pPort, api: apiPort}, script, process: proc, info: await proc.ready}
    }

    progress('starting the oracle (it seeds the model over IPFS)')
    const apiToken = hexlify(randomBytes(16)).slice(2)
    // One token, the developer's: a per-token share of the API (made for many clients) would only
    // throttle their own load tests and benchmarks, so it is the whole node's here.
    const devnetLimits = {api: {limits: {perTokenConcurrency: API_LIMIT_DEFAULTS.maxConcurrentRequests, perTokenRequestsPerMinute: 1_000_000}}}
    const oracle = await launch('oracle', 'oracle', devnetPrivateKey('oracle', 0), {models: models(true), api: {tokens: [apiToken]}},
      validatorCount > 0 ? {...devnetLimits, oracle: {verifier: 'validators'}} : devnetLimits)
    const bootstrap = oracle.info.addrs.filter(a => a.includes('/ip4/127.0.0.1/'))
    progress(`oracle up: API ${oracle.info.api}, peer ${oracle.info.peerId}`)

    const startMiner = async (opts: StartMinerOptions): Promise<DevnetNode> => {
      const key = opts.admitted ? devnetPrivateKey('miner', opts.index) : devnetPrivateKey('miner', UNADMITTED_INDEX_BASE + opts.index)
      const name = opts.admitted ? `miner-${opts.index}` : `unadmitted-${opts.index}`
      return await launch(name, 'miner', key, mergeConfig({p2p: {bootstrap}}, opts.nodeConfig ?? {}), {}, opts.script)
    }
    progress(`starting ${init.miners} miners (empty model folders: they fetch over IPFS)`)
    const miners = await Promise.all(Array.from({length: init.miners}, async (_, index) => await startMiner({index, admitted: true})))
    if (validatorCount > 0) progress(`starting ${validatorCount} validators (with the model file: they check miners' outputs for the oracle)`)
    const validators = await Promise.all(Array.from({length: validatorCount}, async (_, index) =>
      await launch(`validator-${index}`, 'validator', devnetPrivateKey('validator', index), {p2p: {bootstrap}, models: models(true)})))
    const restart = async (node: DevnetNode, opts: {graceMs?: number} = {}): Promise<DevnetNode> => {
      await node.process.stop(opts.graceMs)
      const proc = startProcess(node.name, node.configFile, node.process.dataDir, node.script)
      node.process = proc
      node.info = await proc.ready
      return node
    }
    const kill = async (node: DevnetNode): Promise<void> => {
      node.process.kill()
      await node.process.exited
    }
    return {dir, anvil, deployment: net.deployment, modelId, modelIds, oracle, miners, validators, apiUrl: oracle.info.api, apiToken, startMiner, restart, kill, stop}
  } catch (err) {
    await stop()
    throw err
  }
}

async function allocateNodePorts (): Promise<{p2p: number, api: number}> {
  const [p2p, api] = await allocatePorts(2)
  if (p2p == null || api == null) throw new Error('allocatePorts returned fewer ports than asked')
  return {p2p, api}
}

/**
 * `count` distinct free loopback TCP ports: each bound with port 0 (the OS picks), read, and
 * released only once all are read, so one call never returns the same port twice. Ports this
 * devnet handed out before are skipped as well.
 */
async function allocatePorts (count: number): Promise<number[]> {
  const servers = []
  const ports: number[] = []
  try {
    while (ports.length < count) {
      const server = createServer()
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, '127.0.0.1', () => { resolve() })
      })
      const address = server.address()
      if (address == null || typeof address === 'string') throw new Error('a TCP server without a port')
      if (!handedOut.has(address.port)) ports.push(address.port)
    }
  } finally {
    await Promise.all(servers.map(async server => await new Promise<void>(resolve => server.close(() => { resolve() }))))
  }
  for (const port of ports) handedOut.add(port)
  return ports
}

/** Ports `allocatePorts` returned in this process: two devnets of one test run never share one. */
const handedOut = new Set<number>()

/** Later layers win, field by field (objects merge, everything else is replaced). */
function mergeConfig (...layers: Array<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      const existing = out[key]
      out[key] = isPlainObject(value) && isPlainObject(existing) ? mergeConfig(existing, value) : value
    }
  }
  return out
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value != null && !Array.isArray(value)
}

/** Devnet key indexes from here on are never granted a role. */
const UNADMITTED_INDEX_BASE = 1_000

export function defaultDevnetDir (): string {
  return join(PROJECT_ROOT, '.devnet')
}
