import {readFileSync} from 'node:fs'
import {dirname, isAbsolute, resolve} from 'node:path'
import {multiaddr} from '@multiformats/multiaddr'
import {MAX_MODELS_PER_NODE, ROLES, type Role} from '../protocols/messages.js'
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
    /**
     * JSON-RPC endpoints of one chain, in order of preference: the node uses one at a time and
     * moves to the next (wrapping around) when it fails at the HTTP level.
     */
    rpcUrls: string[]
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
    /**
     * The multiaddrs peers are told to dial (identify, heartbeats, node.json), e.g. a NAT's
     * public address; empty = this host's own listen addresses, without loopback ones unless
     * the node has nothing else.
     */
    announce: string[]
    bootstrap: string[]
  }
  /** Blockstore, downloaded models and the tx journal live here. */
  dataDir: string
  /**
   * The registry's models this node serves (miners, validators) or seeds and verifies
   * (oracles), in order of preference: the first is loaded first, and is an oracle's default.
   */
  models: ModelEntry[]
  inference: {
    threads: number
    sequences: number
    contextSize: number
    /**
     * Memory the loaded models may take together, in MiB (their file sizes as the registry
     * records them); a miner loads a listed model on demand and unloads the least recently
     * used idle one to make room. 0 = half of this host's memory.
     */
    memoryBudgetMiB: number
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

/** One served model: its ModelRegistry id, and a local GGUF the node already has (seeded; the others are fetched over IPFS). */
export interface ModelEntry {
  id: ModelId
  file?: string
}

/** Most RPC URLs one node lists, as many as the reference node takes. */
export const MAX_RPC_URLS = 20

export const ORACLE_VERIFIERS = ['local', 'validators', 'off'] as const
export type OracleVerifier = typeof ORACLE_VERIFIERS[number]

export const DEFAULTS = {
  networkId: 'devnet',
  chain: {pollingIntervalMs: 250, taskEscrowWei: '1000000000000000'},
  // Fixed ports: a restarted node keeps its dial address and API URL. Several nodes on one host
  // (the devnet, tests) each set their own ports, or 0 for any free one.
  p2p: {listen: ['/ip4/0.0.0.0/tcp/4040'], announce: [] as string[], bootstrap: [] as string[]},
  inference: {threads: 1, sequences: 2, contextSize: 512, memoryBudgetMiB: 0},
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
  CORTENSORD_RPC_URL: 'chain.rpcUrls',
  CORTENSORD_ANNOUNCE: 'p2p.announce',
  CORTENSORD_DEPLOYMENT: 'chain.deploymentFile',
  CORTENSORD_DATA_DIR: 'dataDir',
  CORTENSORD_MODELS: 'models',
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
    // V8 quotes the text around the fault, line breaks included: the message stays one line.
    throw new ConfigError({code: 'CONFIG_UNREADABLE', file}, `config file ${file} is not valid JSON: ${(err as Error).message.replace(/\s*\n\s*/g, ' ')}`, {cause: err})
  }
  if (typeof json !== 'object' || json == null || Array.isArray(json)) {
    throw new ConfigError({code: 'CONFIG_UNREADABLE', file}, `config file ${file} must hold a JSON object`)
  }
  const base = dirname(resolve(file))
  const obj = json as Json
  for (const path of ['keystore', 'keyPasswordFile', 'dataDir', 'chain.deploymentFile']) {
    const value = getPath(obj, path)
    if (typeof value === 'string' && !isAbsolute(value)) setPath(obj, path, resolve(base, value))
  }
  if (Array.isArray(obj.models)) {
    for (const entry of obj.models as unknown[]) {
      const e = entry as Json
      if (typeof e === 'object' && e != null && typeof e.file === 'string' && !isAbsolute(e.file)) e.file = resolve(base, e.file)
    }
  }
  return obj
}

/** Layers: defaults < file < env < flags. Each layer is a partial object of dotted fields. */
export function buildConfig (layers: Json[]): NodeConfig {
  const merged: Json = structuredClone(DEFAULTS) as unknown as Json
  // Each layer on its own, before merging: a misspelt field would otherwise be carried along
  // unread, and the default it meant to override would silently stay.
  for (const layer of layers) rejectUnknownFields(layer, CONFIG_FIELDS)
  for (const layer of layers) deepMerge(merged, layer)
  return validateConfig(merged)
}

/** The fields of `T` as a tree: `true` for a field that holds a value, a subtree for a section. */
type FieldTree<T> = {[K in keyof T]-?: T[K] extends readonly unknown[] ? true : T[K] extends object ? FieldTree<T[K]> : true}
interface Fields {[field: string]: true | Fields}

/**
 * Every field a config may set, for the unknown-field check. Typed against `NodeConfig`: a field
 * added there and not here (or the reverse) does not compile. `models` entries are checked by
 * `modelList`.
 */
const CONFIG_FIELDS: FieldTree<NodeConfig> = {
  role: true,
  networkId: true,
  keystore: true,
  keyPasswordFile: true,
  chain: {rpcUrls: true, deploymentFile: true, pollingIntervalMs: true, taskEscrowWei: true},
  p2p: {listen: true, announce: true, bootstrap: true},
  dataDir: true,
  models: true,
  inference: {threads: true, sequences: true, contextSize: true, memoryBudgetMiB: true},
  api: {host: true, port: true, tokens: true},
  stats: {heartbeatIntervalMs: true, chainPingIntervalMs: true},
  oracle: {resultTimeoutMs: true, precommitWindowS: true, commitWindowS: true, defaultRedundancy: true, defaultMaxTokens: true, verifier: true, auditRate: true},
  logLevel: true
}

/** Fails on the first field of `layer` that `fields` does not know, naming its full dotted path. */
function rejectUnknownFields (layer: Json, fields: Fields, prefix = ''): void {
  for (const [key, value] of Object.entries(layer)) {
    const path = prefix + key
    const known = Object.hasOwn(fields, key) ? fields[key] : undefined
    if (known === undefined) {
      const near = nearestField(path)
      fail(path, `is not a config field${near === undefined ? '' : `; did you mean "${near}"?`}`)
    }
    if (known === true || value === undefined) continue
    if (typeof value !== 'object' || value == null || Array.isArray(value)) fail(path, `must be an object with the fields ${Object.keys(known).join(', ')}; got ${show(value)}`)
    rejectUnknownFields(value as Json, known, `${path}.`)
  }
}

/** Every dotted field path of `CONFIG_FIELDS`, sections included. */
const FIELD_PATHS: string[] = (function paths (fields: Fields, prefix: string): string[] {
  return Object.entries(fields).flatMap(([key, sub]) => [prefix + key, ...(sub === true ? [] : paths(sub, `${prefix}${key}.`))])
})(CONFIG_FIELDS, '')

/**
 * The known field an unknown `path` most likely meant: a near miss beside it (`p2p.bootstrapp`,
 * `api.hots`, the old `chain.rpcUrl`), or the same name in another section (`bootstrap` at the
 * top for `p2p.bootstrap`).
 */
function nearestField (path: string): string | undefined {
  const at = path.lastIndexOf('.')
  const parent = path.slice(0, at + 1)
  const name = path.slice(at + 1).toLowerCase()
  let best: string | undefined
  let bestDistance = Math.max(1, Math.floor(name.length / 3)) + 1
  for (const known of FIELD_PATHS) {
    const knownName = known.slice(known.lastIndexOf('.') + 1).toLowerCase()
    const sibling = known.startsWith(parent) && !known.slice(parent.length).includes('.')
    const distance = sibling ? editDistance(name, knownName) : (name === knownName ? 0 : Infinity)
    if (distance < bestDistance) {
      best = known
      bestDistance = distance
    }
  }
  return best
}

/** Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`. */
function editDistance (a: string, b: string): number {
  let before: number[] = []
  let previous = Array.from({length: b.length + 1}, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1)
      current.push(d)
    }
    before = previous
    previous = current
  }
  return previous[b.length]!
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
  const budget = (path: string): number => {
    let v = getPath(c, path)
    if (typeof v === 'string' && v.trim() !== '') v = Number(v)
    if (typeof v !== 'number' || !(v >= 0 && v <= 1 << 30)) fail(path, `must be a number of MiB >= 0 (0 = half of this host's memory), got ${show(v)}`)
    return v as number
  }
  const role = str('role') as Role
  if (!ROLES.includes(role)) fail('role', `must be ${ROLES.map(r => `"${r}"`).join(' or ')}, got ${show(role)}`)
  const networkId = str('networkId')
  if (!/^[a-z0-9-]{1,32}$/.test(networkId)) fail('networkId', `must be 1-32 of [a-z0-9-], got ${show(networkId)}`)
  const escrow = str('chain.taskEscrowWei')
  if (!/^\d+$/.test(escrow)) fail('chain.taskEscrowWei', `must be a decimal amount of wei, got ${show(escrow)}`)
  const rpcUrls = strList('chain.rpcUrls')
  if (rpcUrls.length === 0 || rpcUrls.length > MAX_RPC_URLS) fail('chain.rpcUrls', `must list 1 to ${MAX_RPC_URLS} RPC URLs, got ${rpcUrls.length}`)
  rpcUrls.forEach((url, i) => {
    // ethers' JsonRpcProvider speaks HTTP only: a ws(s) URL would be accepted here and then
    // fail every call with "unsupported protocol".
    if (!URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol)) fail(`chain.rpcUrls[${i}]`, `must be an http(s) URL (WebSocket endpoints are not supported), got ${show(url)}`)
  })
  const listen = strList('p2p.listen')
  const announce = strList('p2p.announce')
  const bootstrap = strList('p2p.bootstrap')
  for (const [path, list] of [['p2p.listen', listen], ['p2p.announce', announce], ['p2p.bootstrap', bootstrap]] as const) {
    for (const addr of list) if (!addr.startsWith('/')) fail(path, `multiaddr must start with "/", got ${show(addr)}`)
  }
  for (const addr of announce) {
    let host: {name: string, value?: string} | undefined
    try {
      host = multiaddr(addr).getComponents()[0]
    } catch {
      fail('p2p.announce', `is not a multiaddr: ${show(addr)}`)
    }
    if ((host?.name === 'ip4' && host.value === '0.0.0.0') || (host?.name === 'ip6' && host.value === '::')) {
      fail('p2p.announce', `lists ${show(addr)}, which no peer can dial: announce the address peers reach this host at`)
    }
  }
  const apiHost = str('api.host')
  const tokens = strList('api.tokens')
  // Every oracle request spends escrow: an API beyond loopback without tokens lets anyone spend it.
  if (role === 'oracle' && tokens.length === 0 && !['127.0.0.1', '::1', 'localhost'].includes(apiHost)) {
    fail('api.tokens', `must list at least one bearer token when the oracle's API listens beyond loopback (api.host ${show(apiHost)}): every request spends the oracle's escrow`)
  }
  return {
    role,
    networkId,
    keystore: str('keystore'),
    keyPasswordFile: optStr('keyPasswordFile'),
    chain: {
      rpcUrls,
      deploymentFile: str('chain.deploymentFile'),
      pollingIntervalMs: int('chain.pollingIntervalMs', 10, 60_000),
      taskEscrowWei: escrow
    },
    p2p: {listen, announce, bootstrap},
    dataDir: str('dataDir'),
    models: modelList(getPath(c, 'models')),
    inference: {
      threads: int('inference.threads', 1, 256),
      sequences: int('inference.sequences', 1, 64),
      contextSize: int('inference.contextSize', 32, 1_048_576),
      memoryBudgetMiB: budget('inference.memoryBudgetMiB')
    },
    api: {host: apiHost, port: int('api.port', 0, 65_535), tokens},
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

/**
 * `models`: a JSON list of `{id, file?}`, or (from a flag or the environment) a comma list of
 * `ID` or `ID=FILE`. At least one, at most 32, each id once.
 */
function modelList (value: unknown): ModelEntry[] {
  const field = 'models'
  if (typeof value === 'string') {
    value = value.split(',').map(s => s.trim()).filter(s => s !== '').map(item => {
      const at = item.indexOf('=')
      return at < 0 ? {id: item} : {id: item.slice(0, at), file: resolve(item.slice(at + 1))}
    })
  }
  if (!Array.isArray(value) || value.length === 0) fail(field, `must list the registry models this node serves, e.g. [{"id": 1}] or "1,2=/path/model.gguf"; got ${show(value)}`)
  const list = value as unknown[]
  if (list.length > MAX_MODELS_PER_NODE) fail(field, `may list at most ${MAX_MODELS_PER_NODE} models, got ${list.length}`)
  const seen = new Set<ModelId>()
  return list.map((entry, i) => {
    const at = `${field}[${i}]`
    if (typeof entry !== 'object' || entry == null || Array.isArray(entry)) fail(at, `must be {"id": N, "file"?: PATH}, got ${show(entry)}`)
    const e = entry as Json
    for (const key of Object.keys(e)) if (key !== 'id' && key !== 'file') fail(`${at}.${key}`, 'is not a model field (id, file)')
    let id: ModelId
    try {
      id = toModelId(typeof e.id === 'number' || typeof e.id === 'string' ? String(e.id) : '')
    } catch {
      return fail(`${at}.id`, `must be a registry model id (a positive integer), got ${show(e.id)}`)
    }
    if (id === '0') fail(`${at}.id`, 'must be a registry model id (a positive integer), got 0')
    if (seen.has(id)) fail(`${at}.id`, `lists model ${id} twice`)
    seen.add(id)
    if (e.file !== undefined && (typeof e.file !== 'string' || e.file === '')) fail(`${at}.file`, `must be a path to a GGUF file, got ${show(e.file)}`)
    return e.file === undefined ? {id} : {id, file: e.file as string}
  })
}

/** Turns `{'chain.rpcUrls': x}` style entries into nested objects. */
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
