import {readFileSync} from 'node:fs'
import {dirname, isAbsolute, resolve} from 'node:path'
import {multiaddr} from '@multiformats/multiaddr'
import Type, {type StaticDecode, type TInteger, type TSchema} from 'typebox'
import {Compile} from 'typebox/compile'
import type {TLocalizedValidationError} from 'typebox/error'
import {API_LIMIT_DEFAULTS, type ApiLimits} from '../api/apiLimits.js'
import {MAX_MODELS_PER_NODE} from '../protocols/messages.js'
import {ROLES} from '../protocols/roles.js'
import {toModelId} from '../protocols/modelId.js'
import {ConfigError} from './configError.js'
import {DEFAULTS} from './configDefaults.js'
import {LOG_FORMATS, LOG_LEVELS} from '../util/logger.js'

/** Most RPC URLs one node lists, as many as the reference node takes. */
export const MAX_RPC_URLS = 20

const ORACLE_VERIFIERS = ['local', 'validators', 'off'] as const


/*
 * The schema below is the config: every field with its type, range and default. `expected`
 * (our own keyword, ignored by the validator) says in words what a field takes, for the one-line
 * error that names it; without it the words come from the type.
 */

const text = (expected?: string): ReturnType<typeof Type.String> => Type.String(expected === undefined ? {minLength: 1} : {minLength: 1, expected})
const integer = (minimum: number, maximum: number, fallback: number): ReturnType<typeof Type.Integer> => Type.Integer({minimum, maximum, default: fallback})
/** A section: its fields are defaulted even when the section is left out. */
const section = <P extends Parameters<typeof Type.Object>[0]>(properties: P): ReturnType<typeof Type.Object<P>> => Type.Object(properties, {additionalProperties: false, default: {}})

const Multiaddr = Type.Refine(Type.String({expected: 'a multiaddr (starting with "/")'}),
  (addr: string) => addr.startsWith('/'), (addr: string) => `must be a multiaddr (starting with "/"), got ${show(addr)}`)

const AnnounceAddr = Type.Refine(Type.Refine(Multiaddr,
  (addr: string) => parsesAsMultiaddr(addr), (addr: string) => `is not a multiaddr: ${show(addr)}`),
  (addr: string) => !isWildcard(addr), (addr: string) => `is ${show(addr)}, which no peer can dial: announce the address peers reach this host at`)

const RpcUrl = Type.Refine(Type.String({expected: 'an http(s) URL (WebSocket endpoints are not supported)'}),
  // ethers' JsonRpcProvider speaks HTTP only: a ws(s) URL would be accepted here and then fail
  // every call with "unsupported protocol".
  (url: string) => URL.canParse(url) && ['http:', 'https:'].includes(new URL(url).protocol),
  (url: string) => `must be an http(s) URL (WebSocket endpoints are not supported), got ${show(url)}`)

const ModelIdField = Type.Decode(
  Type.Union([Type.Integer({minimum: 1, maximum: Number.MAX_SAFE_INTEGER}), Type.String({pattern: '^[1-9][0-9]{0,77}$'})], {expected: 'a registry model id (a positive integer)'}),
  id => toModelId(String(id)))

/** One served model: its ModelRegistry id, and a local GGUF the node already has (seeded; the others are fetched over IPFS). */
const ModelEntrySchema = Type.Object({
  id: ModelIdField,
  file: Type.Optional(text('a path to a GGUF file'))
}, {additionalProperties: false, expected: '{"id": N, "file"?: PATH}'})

export const ConfigSchema = Type.Object({
  role: Type.Enum([...ROLES]),
  /** Part of every gossip topic: nodes of different networks never mix. */
  networkId: Type.String({pattern: '^[a-z0-9-]{1,32}$', default: DEFAULTS.networkId, expected: '1-32 of [a-z0-9-]'}),
  /** Encrypted JSON keystore; its password comes from the environment or a file, never the config. */
  keystore: text(),
  keyPasswordFile: Type.Optional(text()),
  chain: section({
    /**
     * JSON-RPC endpoints of one chain, in order of preference: the node uses one at a time and
     * moves to the next (wrapping around) when it fails at the HTTP level.
     */
    rpcUrls: Type.Array(RpcUrl, {minItems: 1, maxItems: MAX_RPC_URLS, expected: `a list of 1 to ${MAX_RPC_URLS} http(s) RPC URLs`}),
    /** Written by `devnet`/deploy: chain id, contract addresses, deploy block. */
    deploymentFile: text(),
    /** Poll interval for logs and receipts; small on loopback, seconds on a public chain. */
    pollingIntervalMs: integer(10, 60_000, DEFAULTS.chain.pollingIntervalMs),
    /** Escrow the oracle puts on each task, in wei. */
    taskEscrowWei: Type.String({pattern: '^[0-9]+$', default: DEFAULTS.chain.taskEscrowWei, expected: 'a decimal amount of wei'})
  }),
  p2p: section({
    /** Stable by default (port 4040), so a restarted node is where its peers last saw it; port 0 picks a free one. */
    listen: Type.Array(Multiaddr, {default: DEFAULTS.p2p.listen}),
    /**
     * The multiaddrs peers are told to dial (identify, heartbeats, node.json), e.g. a NAT's
     * public address; empty = this host's own listen addresses, without loopback ones unless
     * the node has nothing else.
     */
    announce: Type.Array(AnnounceAddr, {default: DEFAULTS.p2p.announce}),
    bootstrap: Type.Array(Multiaddr, {default: DEFAULTS.p2p.bootstrap})
  }),
  /** Blockstore, downloaded models and the tx journal live here. */
  dataDir: text(),
  /**
   * The registry's models this node serves (miners, validators) or seeds and verifies
   * (oracles), in order of preference: the first is loaded first, and is an oracle's default.
   * Each id once (1 and "1" are the same model).
   */
  models: Type.Refine(
    Type.Array(ModelEntrySchema, {minItems: 1, maxItems: MAX_MODELS_PER_NODE,
      expected: `a list of 1 to ${MAX_MODELS_PER_NODE} registry models this node serves, e.g. [{"id": 1}] or "1,2=/path/model.gguf"`}),
    entries => duplicateModel(entries) === undefined, entries => `lists model ${duplicateModel(entries)} twice`),
  inference: section({
    threads: integer(1, 256, DEFAULTS.inference.threads),
    sequences: integer(1, 64, DEFAULTS.inference.sequences),
    contextSize: integer(32, 1_048_576, DEFAULTS.inference.contextSize),
    /**
     * Memory the loaded models may take together, in MiB (their file sizes as the registry
     * records them); a miner loads a listed model on demand and unloads the least recently
     * used idle one to make room. 0 = half of this host's memory.
     */
    memoryBudgetMiB: Type.Number({minimum: 0, maximum: 2 ** 30, default: DEFAULTS.inference.memoryBudgetMiB, expected: 'a number of MiB >= 0 (0 = half of this host\'s memory)'})
  }),
  api: section({
    host: Type.String({minLength: 1, default: DEFAULTS.api.host}),
    /** Stable by default (8040), so clients find a restarted node; 0 picks a free port (printed at start-up). */
    port: integer(0, 65_535, DEFAULTS.api.port),
    /** Bearer tokens accepted by the oracle's API; empty = no auth (loopback devnet only). */
    tokens: Type.Array(text('a non-empty bearer token'), {default: DEFAULTS.api.tokens}),
    /**
     * What one client (bearer token) may hold of the API, and how long a request may take to
     * arrive; each left out keeps the API's default. Timeouts stay under 2^31 ms, where Node's
     * timers overflow.
     */
    limits: section(Object.fromEntries(Object.entries(API_LIMIT_DEFAULTS).map(([field, fallback]) =>
      [field, Type.Integer({minimum: 1, maximum: 2 ** 31 - 1, default: fallback, expected: 'a positive integer (at most 2147483647)'})])) as {[K in keyof ApiLimits]: TInteger})
  }),
  stats: section({
    heartbeatIntervalMs: integer(100, 600_000, DEFAULTS.stats.heartbeatIntervalMs),
    /** NodeStats `ping` is a transaction: slow and configurable. */
    chainPingIntervalMs: integer(1_000, 86_400_000, DEFAULTS.stats.chainPingIntervalMs)
  }),
  oracle: section({
    /** How long an assigned miner may take to deliver its result before it is replaced. */
    resultTimeoutMs: integer(100, 3_600_000, DEFAULTS.oracle.resultTimeoutMs),
    /** Chain deadlines, relative to task creation. */
    precommitWindowS: integer(5, 86_400, DEFAULTS.oracle.precommitWindowS),
    commitWindowS: integer(10, 172_800, DEFAULTS.oracle.commitWindowS),
    defaultRedundancy: integer(1, 16, DEFAULTS.oracle.defaultRedundancy),
    defaultMaxTokens: integer(1, 4096, DEFAULTS.oracle.defaultMaxTokens),
    /**
     * Who checks miners' outputs before a user sees them: `local` loads the model in this
     * process, `validators` asks validator nodes over the verify stream, `off` trusts the hash
     * majority (a colluding majority or a lone k=1 miner then decides what users see).
     */
    verifier: Type.Enum([...ORACLE_VERIFIERS], {default: DEFAULTS.oracle.verifier}),
    /** Probability that a k=1 or competing result is audited by re-executing it (in the miner's class). */
    auditRate: Type.Number({minimum: 0, maximum: 1, default: DEFAULTS.oracle.auditRate})
  }),
  logLevel: Type.Enum([...LOG_LEVELS], {default: DEFAULTS.logLevel}),
  /** JSON lines, or text for a person: `auto` picks text when stderr is a terminal. */
  logFormat: Type.Enum([...LOG_FORMATS], {default: DEFAULTS.logFormat})
}, {additionalProperties: false})

/** Everything one daemon needs, as the schema makes it: defaults filled, model ids decoded. */
export type NodeConfig = StaticDecode<typeof ConfigSchema>

const validator = Compile(ConfigSchema)

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
  CORTENSORD_LOG_LEVEL: 'logLevel',
  CORTENSORD_LOG_FORMAT: 'logFormat'
}

type Json = Record<string, unknown>

/** Reads a JSON config file; relative paths inside it are taken relative to the file. */
export function readConfigFile (file: string): Json {
  let contents: string
  try {
    contents = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError({code: 'CONFIG_UNREADABLE', file}, `cannot read config file ${file}: ${(err as Error).message}`, {cause: err})
  }
  let json: unknown
  try {
    json = JSON.parse(contents)
  } catch (err) {
    // V8 quotes the text around the fault, line breaks included: the message stays one line.
    throw new ConfigError({code: 'CONFIG_UNREADABLE', file}, `config file ${file} is not valid JSON: ${(err as Error).message.replace(/\s*\n\s*/g, ' ')}`, {cause: err})
  }
  if (!isObject(json)) throw new ConfigError({code: 'CONFIG_UNREADABLE', file}, `config file ${file} must hold a JSON object`)
  const base = dirname(resolve(file))
  for (const path of ['keystore', 'keyPasswordFile', 'dataDir', 'chain.deploymentFile']) {
    const value = getPath(json, path)
    if (typeof value === 'string' && !isAbsolute(value)) setPath(json, path, resolve(base, value))
  }
  if (Array.isArray(json.models)) {
    for (const entry of json.models as unknown[]) {
      if (isObject(entry) && typeof entry.file === 'string' && !isAbsolute(entry.file)) entry.file = resolve(base, entry.file)
    }
  }
  return json
}

/**
 * Layers: defaults < file < env < flags. Each layer is a partial object of dotted fields; values
 * from env and flags are text, turned into the numbers and lists their fields take.
 */
export function buildConfig (layers: Json[]): NodeConfig {
  const merged: Json = {}
  for (const layer of layers) deepMerge(merged, layer)
  if (typeof merged.models === 'string') merged.models = modelsFromText(merged.models)
  const value = validator.Default(fromText(ConfigSchema, merged))
  if (!validator.Check(value)) throw configError(validator.Errors(value), value)
  const config = validator.Decode(value) as NodeConfig
  // Every oracle request spends escrow: an API beyond loopback without tokens lets anyone spend it.
  if (config.role === 'oracle' && config.api.tokens.length === 0 && !['127.0.0.1', '::1', 'localhost'].includes(config.api.host)) {
    fail('api.tokens', `must list at least one bearer token when the oracle's API listens beyond loopback (api.host ${show(config.api.host)}): every request spends the oracle's escrow`)
  }
  // Node refuses to create a server whose headers may take longer than the whole request.
  if (config.api.limits.headersTimeoutMs > config.api.limits.requestTimeoutMs) {
    fail('api.limits.headersTimeoutMs', `must be at most api.limits.requestTimeoutMs (${config.api.limits.requestTimeoutMs}), got ${config.api.limits.headersTimeoutMs} (its default is ${API_LIMIT_DEFAULTS.headersTimeoutMs}: lower both together)`)
  }
  return config
}

/** Turns `{'chain.rpcUrls': x}` style entries into nested objects. */
export function fromDottedEntries (entries: Record<string, unknown>): Json {
  const out: Json = {}
  for (const [path, value] of Object.entries(entries)) if (value !== undefined) setPath(out, path, value)
  return out
}

/**
 * Text where the schema takes a number or a list (all of env and flags, and a file may write
 * `"port": "8040"` too): digits become numbers, a comma list becomes a list. Anything else is
 * left for the validator to name.
 */
function fromText (schema: TSchema, value: unknown): unknown {
  const type = (schema as {type?: string}).type
  if (typeof value === 'string') {
    const trimmed = value.trim()
    if (type === 'integer' && /^-?\d+$/.test(trimmed)) return Number(trimmed)
    if (type === 'number' && trimmed !== '' && Number.isFinite(Number(trimmed))) return Number(trimmed)
    if (type === 'array') return trimmed.split(',').map(item => item.trim()).filter(item => item !== '')
  }
  if (type === 'object' && isObject(value)) {
    const properties = (schema as {properties?: Record<string, TSchema>}).properties ?? {}
    for (const [key, property] of Object.entries(properties)) if (Object.hasOwn(value, key)) value[key] = fromText(property, value[key])
  }
  if (type === 'array' && Array.isArray(value)) return value.map(item => fromText((schema as {items: TSchema}).items, item))
  return value
}

/** `models` from a flag or the environment: a comma list of `ID` or `ID=FILE`. */
function modelsFromText (list: string): Json[] {
  return list.split(',').map(item => item.trim()).filter(item => item !== '').map(item => {
    const at = item.indexOf('=')
    return at < 0 ? {id: item} : {id: item.slice(0, at), file: resolve(item.slice(at + 1))}
  })
}

function duplicateModel (entries: ReadonlyArray<{id: unknown}>): string | undefined {
  const seen = new Set<string>()
  for (const {id} of entries) {
    if (seen.has(String(id))) return String(id)
    seen.add(String(id))
  }
  return undefined
}

function parsesAsMultiaddr (addr: string): boolean {
  try {
    multiaddr(addr)
    return true
  } catch {
    return false
  }
}

/** 0.0.0.0 and :: mean "every interface" to a listener; no peer can dial them. */
function isWildcard (addr: string): boolean {
  if (!parsesAsMultiaddr(addr)) return false
  const host = multiaddr(addr).getComponents()[0]
  return (host?.name === 'ip4' && host.value === '0.0.0.0') || (host?.name === 'ip6' && host.value === '::')
}

/**
 * The validator's verdict as one line naming one field: an unknown field first (a typo is the
 * most common mistake, and it may be why a required field looks missing), else the first field
 * in error, in the words of its schema.
 */
function configError (errors: TLocalizedValidationError[], value: unknown): ConfigError {
  const unknown = errors.find(e => e.keyword === 'additionalProperties')
  if (unknown?.keyword === 'additionalProperties') {
    const parent = fieldPath(unknown.instancePath, value)
    const key = unknown.params.additionalProperties[0] ?? ''
    const path = parent === '' ? key : `${parent}.${key}`
    const near = nearestField(parent, schemaAt(unknown.schemaPath), key)
    return configFieldError(path, `is not a config field${near === undefined ? '' : `; did you mean "${near}"?`}`)
  }
  // Of the errors on one value (a union's branches, then the union), the outermost says it best.
  const first = errors.find(e => e.keyword !== 'boolean')
  const error = errors.filter(e => e.instancePath === first?.instancePath && e.keyword !== 'boolean')
    .reduce<TLocalizedValidationError | undefined>((best, e) => best === undefined || e.schemaPath.length < best.schemaPath.length ? e : best, undefined)
  if (error === undefined) return configFieldError('', 'is invalid')
  const path = fieldPath(error.instancePath, value)
  if (error.keyword === 'required') {
    const name = error.params.requiredProperties[0] ?? ''
    const schema = (schemaAt(error.schemaPath) as {properties: Record<string, TSchema>}).properties[name] ?? {}
    return configFieldError(path === '' ? name : `${path}.${name}`, `must be ${expected(schema)}, got nothing`)
  }
  const at = valueAt(value, error.instancePath)
  if (error.keyword === '~refine') return configFieldError(path, error.message)
  if (error.keyword === 'minItems' || error.keyword === 'maxItems') {
    return configFieldError(path, `must be ${expected(schemaAt(error.schemaPath))}, got a list of ${(at as unknown[]).length}`)
  }
  return configFieldError(path, `must be ${expected(schemaAt(error.schemaPath))}, got ${show(at)}`)
}

/** What a schema takes, in words: its `expected`, or words made from its type. */
function expected (schema: TSchema): string {
  const s = schema as {expected?: string, type?: string, minimum?: number, maximum?: number, enum?: unknown[], minLength?: number, items?: TSchema, properties?: Json}
  if (s.expected !== undefined) return s.expected
  if (s.enum !== undefined) return s.enum.map(v => JSON.stringify(v)).join(' or ')
  switch (s.type) {
    case 'integer': return `an integer in [${s.minimum ?? Number.MIN_SAFE_INTEGER}, ${s.maximum ?? Number.MAX_SAFE_INTEGER}]`
    case 'number': return `a number in [${s.minimum ?? '-∞'}, ${s.maximum ?? '∞'}]`
    case 'string': return (s.minLength ?? 0) > 0 ? 'a non-empty string' : 'a string'
    case 'array': return (s.items as {type?: string} | undefined)?.type === 'string' ? 'a list of strings' : 'a list'
    case 'object': return `an object {${Object.keys(s.properties ?? {}).join(', ')}}`
    default: return 'something else'
  }
}

/** Every dotted field path outside lists, sections included: where an unknown name is looked up elsewhere. */
const FIELD_PATHS: string[] = (function paths (schema: TSchema, prefix: string): string[] {
  const properties = (schema as {properties?: Record<string, TSchema>}).properties ?? {}
  return Object.entries(properties).flatMap(([key, sub]) => [prefix + key, ...paths(sub, `${prefix}${key}.`)])
})(ConfigSchema, '')

/**
 * The known field an unknown `name` in `parent` most likely meant: a near miss beside it
 * (`p2p.bootstrapp`, `api.hots`, the old `chain.rpcUrl`), or the same name in another section
 * (`bootstrap` at the top for `p2p.bootstrap`).
 */
function nearestField (parent: string, parentSchema: TSchema, name: string): string | undefined {
  const lower = name.toLowerCase()
  let best: string | undefined
  let bestDistance = Math.max(1, Math.floor(lower.length / 3)) + 1
  for (const sibling of Object.keys((parentSchema as {properties?: Json}).properties ?? {})) {
    const distance = editDistance(lower, sibling.toLowerCase())
    if (distance < bestDistance) {
      best = parent === '' ? sibling : `${parent}.${sibling}`
      bestDistance = distance
    }
  }
  if (best !== undefined) return best
  return FIELD_PATHS.find(path => path.slice(path.lastIndexOf('.') + 1).toLowerCase() === lower)
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

/** The JSON pointer segments of `pointer`, unescaped. */
function segments (pointer: string): string[] {
  return pointer.split('/').slice(1).map(s => s.replaceAll('~1', '/').replaceAll('~0', '~'))
}

/** A JSON pointer into the config as the field path operators write: `chain.rpcUrls[1]`. */
function fieldPath (pointer: string, value: unknown): string {
  let path = ''
  let at = value
  for (const key of segments(pointer)) {
    path += Array.isArray(at) ? `[${key}]` : path === '' ? key : `.${key}`
    at = (at as Json | undefined)?.[key]
  }
  return path
}

function valueAt (value: unknown, pointer: string): unknown {
  return segments(pointer).reduce<unknown>((at, key) => (at as Json | undefined)?.[key], value)
}

function schemaAt (schemaPath: string): TSchema {
  return segments(schemaPath.replace(/^#/, '')).reduce<unknown>((at, key) => (at as Json)[key], ConfigSchema) as TSchema
}

function configFieldError (field: string, why: string): ConfigError {
  return new ConfigError({code: 'CONFIG_INVALID', field}, `config field "${field}" ${why}`)
}

function fail (field: string, why: string): never {
  throw configFieldError(field, why)
}

function show (v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v)
}

function isObject (v: unknown): v is Json {
  return typeof v === 'object' && v != null && !Array.isArray(v)
}

function getPath (obj: Json, path: string): unknown {
  let cur: unknown = obj
  for (const key of path.split('.')) {
    if (!isObject(cur) || !Object.hasOwn(cur, key)) return undefined
    cur = cur[key]
  }
  return cur
}

function setPath (obj: Json, path: string, value: unknown): void {
  const keys = path.split('.')
  let cur = obj
  for (const key of keys.slice(0, -1)) {
    if (!isObject(cur[key])) setOwn(cur, key, {})
    cur = cur[key] as Json
  }
  setOwn(cur, keys[keys.length - 1] as string, value)
}

/**
 * Layers merged field by field, sections into sections, into copies (the layers stay as they
 * were). Own properties only, each defined, never assigned: a `__proto__` key from a JSON file
 * stays a key the validator names, and never reaches a prototype.
 */
function deepMerge (target: Json, source: Json): void {
  for (const [key, value] of Object.entries(source)) {
    if (value === undefined) continue
    const existing = Object.hasOwn(target, key) ? target[key] : undefined
    if (isObject(value) && isObject(existing)) deepMerge(existing, value)
    else setOwn(target, key, isObject(value) ? mergedCopy(value) : Array.isArray(value) ? structuredClone(value) : value)
  }
}

function mergedCopy (source: Json): Json {
  const copy: Json = {}
  deepMerge(copy, source)
  return copy
}

function setOwn (target: Json, key: string, value: unknown): void {
  Object.defineProperty(target, key, {value, enumerable: true, writable: true, configurable: true})
}
