import {hexlify, randomBytes} from 'ethers'
import {createHeliaLight} from 'helia'
import {mkdir, rm, writeFile} from 'node:fs/promises'
import {join, resolve} from 'node:path'
import {startAnvil, type Anvil} from './anvil.js'
import {writeDeployment, type Deployment} from '../chain/deployment.js'
import {devnetPrivateKey, devnetWallet, fundDevnetAccounts} from './devnetKeys.js'
import {createProvider} from '../chain/provider.js'
import {setupDevnet} from './setupDevnet.js'
import {resolveModelPath} from '../inference/resolveModelPath.js'
import {HeliaModelStore} from '../model/heliaModelStore.js'
import type {Role} from '../protocols/messages.js'
import {createSilentLogger, type Logger} from '../util/logger.js'
import {PROJECT_ROOT, STORIES_260K} from '../util/paths.js'
import {DEFAULTS} from '../runtime/config.js'
import {writeKeystore} from '../runtime/keys.js'
import {startNodeProcess, type NodeInfo, type NodeProcess} from './nodeProcess.js'

/** Devnet keystores are encrypted like real ones; the password is no secret (nor are the keys). */
const DEVNET_KEY_PASSWORD = 'cortensor-devnet'

export interface DevnetInit {
  miners: number
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

export interface DevnetNode {
  name: string
  role: Role
  process: NodeProcess
  info: NodeInfo
}

export interface Devnet {
  dir: string
  anvil: Anvil
  deployment: Deployment
  modelId: string
  oracle: DevnetNode
  miners: DevnetNode[]
  /** Base URL of the oracle's API. */
  apiUrl: string
  /** Bearer token of the oracle's API (fresh for every devnet). */
  apiToken: string
  /** Starts one more miner: `admitted: false` uses a key the ACL never admitted; `nodeConfig` overrides its config. */
  startMiner: (opts: {index: number, admitted: boolean, nodeConfig?: Record<string, unknown>}) => Promise<DevnetNode>
  stop: () => Promise<void>
}

/**
 * One local network on loopback: anvil from its npm package, contracts deployed and wired,
 * 1 oracle + N miners admitted through ACL and IAM, stories260K registered in the
 * ModelRegistry, then every node started as its own OS process. Only the oracle has the
 * model file: miners fetch it over IPFS and verify it before loading it.
 */
export async function startDevnet (init: DevnetInit): Promise<Devnet> {
  const progress = init.onProgress ?? (() => {})
  const logger = init.logger ?? createSilentLogger()
  const dir = resolve(init.dir)
  await rm(dir, {recursive: true, force: true})
  await mkdir(dir, {recursive: true})
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

    progress('hashing the model and computing its IPFS CID')
    const modelFile = await resolveModelPath({cacheDirectory: join(PROJECT_ROOT, '.data', 'model-cache'), logger})
    const cidStore = createHeliaLight()
    const added = await new HeliaModelStore({host: cidStore, modelDir: join(dir, 'model-cache'), logger}).addFile(modelFile)
    await cidStore.stop()

    const spares = init.spareMiners ?? 0
    progress(`deploying contracts, admitting 1 oracle + ${init.miners + spares} miners, registering ${STORIES_260K.name}`)
    const net = await setupDevnet({
      provider, miners: init.miners + spares, logger, signal: init.signal,
      model: {name: STORIES_260K.name, cid: added.cid, sha256: `0x${added.sha256}`, sizeBytes: added.sizeBytes, quantization: STORIES_260K.quantization}
    })
    const deploymentFile = join(dir, 'deployment.json')
    await writeDeployment(deploymentFile, net.deployment)
    const modelId = String(net.modelId)
    // A key the ACL never admitted, funded so it can try (and fail) to register.
    await fundDevnetAccounts(provider, [devnetWallet('miner', UNADMITTED_INDEX_BASE).address])
    provider.destroy()
    progress(`contracts at ${net.deployment.contracts.cognitive} (Cognitive), model id ${modelId}, cid ${added.cid}`)

    const passwordFile = join(dir, 'devnet-password')
    await writeFile(passwordFile, DEVNET_KEY_PASSWORD, {mode: 0o600})

    const launch = async (name: string, role: Role, privateKey: string, extra: Record<string, unknown>): Promise<DevnetNode> => {
      const nodeDir = join(dir, name)
      await mkdir(nodeDir, {recursive: true})
      const keystore = join(nodeDir, 'key.json')
      await writeKeystore(keystore, privateKey, DEVNET_KEY_PASSWORD)
      const config = {
        role, networkId: DEFAULTS.networkId, keystore, keyPasswordFile: passwordFile,
        chain: {rpcUrl: anvil?.rpcUrl, deploymentFile},
        dataDir: join(nodeDir, 'data'),
        model: {id: Number(modelId)},
        logLevel: init.logLevel,
        ...init.nodeConfig,
        ...extra
      }
      const configFile = join(nodeDir, 'config.json')
      await writeFile(configFile, JSON.stringify(config, null, 2))
      const proc = startNodeProcess({name, configFile, dataDir: config.dataDir, logFile: join(dir, `${name}.log`)})
      nodes.push(proc)
      const info = await proc.ready
      return {name, role, process: proc, info}
    }

    progress('starting the oracle (it seeds the model over IPFS)')
    const apiToken = hexlify(randomBytes(16)).slice(2)
    const oracle = await launch('oracle', 'oracle', devnetPrivateKey('oracle', 0), {model: {id: Number(modelId), file: modelFile}, api: {tokens: [apiToken]}})
    const bootstrap = oracle.info.addrs.filter(a => a.includes('/ip4/127.0.0.1/'))
    progress(`oracle up: API ${oracle.info.api}, peer ${oracle.info.peerId}`)

    const startMiner = async (opts: {index: number, admitted: boolean, nodeConfig?: Record<string, unknown>}): Promise<DevnetNode> => {
      const key = opts.admitted ? devnetPrivateKey('miner', opts.index) : devnetPrivateKey('miner', UNADMITTED_INDEX_BASE + opts.index)
      const name = opts.admitted ? `miner-${opts.index}` : `unadmitted-${opts.index}`
      return await launch(name, 'miner', key, {p2p: {bootstrap}, ...opts.nodeConfig})
    }
    progress(`starting ${init.miners} miners (empty model folders: they fetch over IPFS)`)
    const miners = await Promise.all(Array.from({length: init.miners}, async (_, index) => await startMiner({index, admitted: true})))
    return {dir, anvil, deployment: net.deployment, modelId, oracle, miners, apiUrl: oracle.info.api, apiToken, startMiner, stop}
  } catch (err) {
    await stop()
    throw err
  }
}

/** Devnet key indexes from here on are never granted a role. */
const UNADMITTED_INDEX_BASE = 1_000

export function defaultDevnetDir (): string {
  return join(PROJECT_ROOT, '.devnet')
}
