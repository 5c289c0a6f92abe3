import {readFileSync} from 'node:fs'
import {dirname, isAbsolute, resolve} from 'node:path'
import {ROLES, type Role} from '../protocols/messages.js'
import {toModelId, type ModelId} from '../protocols/modelId.js'
import {CortensorError} from '../util/cortensorError.js'

/** Everything one daemon needs; defaults sit next to the options (see `DEFAULTS`). */
export interface NodeConfig {
  role: Role
  /** Part of every gossip topic: nodes of different networks never mix. */
  networkId: string
  /** Encrypted JSON keystore; its password comes from the environment or a file, never the config. */
  keystore: string
  keyPasswordFile?: string
  chain: {
    rpcUrl: string
    /** Written by `devnet`/deploy: chain id, contract addresses, deploy block. */
    deploymentFile: string
    /** Poll interval for logs and receipts; small on loopback, seconds on a public chain. */
    pollingIntervalMs: number
    /** Escrow the oracle puts on each task, in wei. */
    taskEscrowWei: string
  }
  p2p: {
    /** Stable by default (port 4040), so a restarted node is where its peers last saw it; port 0 picks a free one. */
    listen: string[]
    bootstrap: string[]
  }
  /** Blockstore, downloaded models and the tx journal live here. */
  dataDir: string
  model: {
    /** ModelRegistry id of the model this node serves. */
    id: ModelId
    /** A local GGUF the node already has (the oracle seeds it); miners fetch over IPFS. */
    file?: string
  }
  inference: {
    threads: number
    sequences: number
    contextSize: number
  }
  api: {
    host: string
    /** Stable by default (8040), so clients find a restarted node; 0 picks a free port (printed at start-up). */
    port: number
    /** Bearer tokens accepted by the oracle's API; empty = no auth (loopback devnet only). */
    tokens: string[]
  }
  stats: {
    heartbeatIntervalMs: number
    /** NodeStats `ping` is a transaction: slow and configurable. */
    chainPingIntervalMs: number
  }
  oracle: {
    /** How long an assigned miner may take to deliver its result before it is replaced. */
    resultTimeoutMs: number
    /** Chain deadlines, relative to task creation. */
    precommitWindowS: number
    commitWindowS: number
    defaultRedundancy: number
    defaultMaxTokens: number
    /**
     * Who checks miners' outputs before a user sees them: `local` loads the model in this
     * process, `validators` asks validator nodes over the verify stream, `off` trusts the hash
     * majority (a colluding majority or a lone k=1 miner then decides what users see).
     */
    verifier: OracleVerifier
    /** Probability that a k=1 or competing result is audited by re-executing it (in the miner's class). */
    auditRate: number
  }
  logLevel: string
}

export const ORACLE_VERIFIERS = ['local', 'validators', 'off'] as const
export type OracleVerifier = typeof ORACLE_VERIFIERS[number]

export const DEFAULTS = {
  networkId: 'devnet',
  chain: {pollingIntervalMs: 250, taskEscrowWei: '1000000000000000'},
  // Fixed ports: a restarted node keeps its dial address and API URL. Several nodes on one host
  // (the devnet, tests) each set their own ports, or 0 for any free one.
  p2p: {listen: ['/ip4/0.0.0.0/tcp/4040'], bootstrap: [] as string[]},
  inference: {threads: 1, sequences: 2, contextSize: 512},
  api: {host: '127.0.0.1', port: 8040, tokens: [] as string[]},
  stats: {heartbeatIntervalMs: 2_000, chainPingIntervalMs: 60_000},
  oracle: {resultTimeoutMs: 8_000, precommitWindowS: 120, commitWindowS: 240, defaultRedundancy: 1, defaultMaxTokens: 64, verifier: 'local', auditRate: 0.1},
  logLevel: 'info'
} as const

export class ConfigError extends CortensorError<{code: 'CONFIG_INVALID', field: string} | {code: 'CONFIG_UNREADABLE', file: string}> {}

/** Environment variables the CLI maps onto config fields (the CLI is the only reader of env). */
export const ENV_FIELDS: Record<string, string> = {
  CORTENSORD_ROLE: 'role',
  CORTENSORD_NETWORK_ID: 'networkId',
  CORTENSORD_KEYSTORE: 'keystore',
  CORTENSORD_RPC_URL: 'chain.rpcUrl',
  CORTENSORD_DEPLOYMENT: 'chain.deploymentFile',
  CORTENSORD_DATA_DIR: 'dataDir',
  CORTENSORD_API_PORT: 'api.port',
  CORTENSORD_LOG_LEVEL: 'logLevel'
}

type Json = Record<string, unknown>

/** Reads a JSON config file; relative paths inside it are taken relative to the file. */
export function readConfigFile (file: string): Json {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError({code: 'CONFIG_UNREADABLE', file}, `cannot read config file ${file}: ${(err as Error).message}`, {cause: err})
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ConfigError({code: 'CONFIG_UNREADABLE', file}, `config file ${file} is not valid JSON: ${(err as Error).message}`, {cause: err})
  }
  if (typeof json !== 'object' || json == null || Array.isArray(json)) {
    throw new ConfigError({code: 'CONFIG_UNREADABLE', file}, `config file ${file} must hold a JSON object`)
  }
  const base = dirname(resolve(file))
  const obj = json as Json
  for (const path of ['keystore', 'keyPasswordFile', 'dataDir', 'chain.deploymentFile', 'model.file']) {
    const value = getPath(obj, path)
    if (typeof value === 'string' && !isAbsolute(value)) setPath(obj, path, resolve(base, value))
  }
  return obj
}

/** Layers: defaults < file < env < flags. Each layer is a partial object of dotted fields. */
export function buildConfig (layers: Json[]): NodeConfig {
  const merged: Json = structuredClone(DEFAULTS) as unknown as Json
  for (const layer of layers) deepMerge(merged, layer)
  return validateConfig(merged)
}

function validateConfig (c: Json): NodeConfig {
  const str = (path: string): string => {
    const v = getPath(c, path)
    if (typeof v !== 'string' || v.length === 0) fail(path, `must be a non-empty string, got ${show(v)}`)
    return v as string
  }
  const oneOf = <T extends string>(path: string, allowed: readonly T[]): T => {
    const v = str(path)
    if (!(allowed as readonly string[]).includes(v)) fail(path, `must be ${allowed.map(a => `"${a}"`).join(', ')}; got ${show(v)}`)
    return v as T
  }
  const optStr = (path: string): string | undefined => getPath(c, path) == null ? undefined : str(path)
  const int = (path: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    let v = getPath(c, path)
    if (typeof v === 'string' && /^-?\d+$/.test(v)) v = Number(v)
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(path, `must be an integer in [${min}, ${max}], got ${show(v)}`)
    return v as number
  }
  const strList = (path: string): string[] => {
    let v = getPath(c, path)
    if (typeof v === 'string') v = v.split(',').map(s => s.trim()).filter(s => s.length > 0)
    if (!Array.isArray(v) || v.some(x => typeof x !== 'string')) fail(path, `must be a list of strings, got ${show(v)}`)
    return v as string[]
  }
  const ratio = (path: string): number => {
    let v = getPath(c, path)
    if (typeof v === 'string' && v.trim() !== '') v = Number(v)
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) fail(path, `must be a number in [0, 1], got ${show(v)}`)
    return v as number
  }
  const role = str('role') as Role
  if (!ROLES.includes(role)) fail('role', `must be ${ROLES.map(r => `"${r}"`).join(' or ')}, got ${show(role)}`)
  const networkId = str('networkId')
  if (!/^[a-z0-9-]{1,32}$/.test(networkId)) fail('networkId', `must be 1-32 of [a-z0-9-], got ${show(networkId)}`)
  const escrow = str('chain.taskEscrowWei')
  if (!/^\d+$/.test(escrow)) fail('chain.taskEscrowWei', `must be a decimal amount of wei, got ${show(escrow)}`)
  const rpcUrl = str('chain.rpcUrl')
  if (!/^(https?|wss?):\/\//.test(rpcUrl)) fail('chain.rpcUrl', `must be an http(s) or ws(s) URL, got ${show(rpcUrl)}`)
  const listen = strList('p2p.listen')
  const bootstrap = strList('p2p.bootstrap')
  for (const [path, list] of [['p2p.listen', listen], ['p2p.bootstrap', bootstrap]] as const) {
    for (const addr of list) if (!addr.startsWith('/')) fail(path, `multiaddr must start with "/", got ${show(addr)}`)
  }
  return {
    role,
    networkId,
    keystore: str('keystore'),
    keyPasswordFile: optStr('keyPasswordFile'),
    chain: {
      rpcUrl,
      deploymentFile: str('chain.deploymentFile'),
      pollingIntervalMs: int('chain.pollingIntervalMs', 10, 60_000),
      taskEscrowWei: escrow
    },
    p2p: {listen, bootstrap},
    dataDir: str('dataDir'),
    model: {id: toModelId(int('model.id', 1)), file: optStr('model.file')},
    inference: {
      threads: int('inference.threads', 1, 256),
      sequences: int('inference.sequences', 1, 64),
      contextSize: int('inference.contextSize', 32, 1_048_576)
    },
    api: {host: str('api.host'), port: int('api.port', 0, 65_535), tokens: strList('api.tokens')},
    stats: {
      heartbeatIntervalMs: int('stats.heartbeatIntervalMs', 100, 600_000),
      chainPingIntervalMs: int('stats.chainPingIntervalMs', 1_000, 86_400_000)
    },
    oracle: {
      resultTimeoutMs: int('oracle.resultTimeoutMs', 100, 3_600_000),
      precommitWindowS: int('oracle.precommitWindowS', 5, 86_400),
      commitWindowS: int('oracle.commitWindowS', 10, 172_800),
      defaultRedundancy: int('oracle.defaultRedundancy', 1, 16),
      defaultMaxTokens: int('oracle.defaultMaxTokens', 1, 4096),
      verifier: oneOf('oracle.verifier', ORACLE_VERIFIERS),
      auditRate: ratio('oracle.auditRate')
    },
    logLevel: str('logLevel')
  }
}

/** Turns `{'chain.rpcUrl': x}` style entries into nested objects. */
export function fromDottedEntries (entries: Record<string, unknown>): Json {
  const out: Json = {}
  for (const [path, value] of Object.entries(entries)) if (value !== undefined) setPath(out, path, value)
  return out
}

function fail (field: string, why: string): never {
  throw new ConfigError({code: 'CONFIG_INVALID', field}, `config field "${field}" ${why}`)
}

function show (v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v)
}

function getPath (obj: Json, path: string): unknown {
  let cur: unknown = obj
  for (const key of path.split('.')) {
    if (typeof cur !== 'object' || cur == null) return undefined
    cur = (cur as Json)[key]
  }
  return cur
}

function setPath (obj: Json, path: string, value: unknown): void {
  const keys = path.split('.')
  let cur = obj
  for (const key of keys.slice(0, -1)) {
    if (typeof cur[key] !== 'object' || cur[key] == null) cur[key] = {}
    cur = cur[key] as Json
  }
  cur[keys[keys.length - 1] as string] = value
}

function deepMerge (target: Json, source: Json): void {
  for (const [key, value] of Object.entries(source)) {
    if (value === undefined) continue
    const existing = target[key]
    if (typeof value === 'object' && value != null && !Array.isArray(value) && typeof existing === 'object' && existing != null && !Array.isArray(existing)) {
      deepMerge(existing as Json, value as Json)
    } else {
      target[key] = value
    }
  }
}
