/**
 * The command line: the only code that reads argv and the environment. Commands are data
 * objects `{command, describe, options, handler}`; `cortensord help` lists them.
 */
import {readFileSync} from 'node:fs'
import {isIP} from 'node:net'
import {parseArgs, type ParseArgsConfig} from 'node:util'
import type {OperatorIo, OperatorSigner} from '../operator/operatorContext.js'
import {toAddress, type Address} from '../protocols/address.js'
import {ROLES, type Role} from '../protocols/roles.js'
import {CortensorError} from '../util/cortensorError.js'
import {createRootLogger, LOG_FORMATS, LOG_LEVELS, type LogFormat} from '../util/logger.js'
import {DEFAULTS} from './configDefaults.js'
import {ConfigError} from './configError.js'
import {NODE_FLAGS} from './nodeFlags.js'
import {skipHeliaDefaults} from './skipHeliaDefaults.js'

type Options = NonNullable<ParseArgsConfig['options']>
type Values = Record<string, string | boolean | string[] | undefined>

interface Command {
  command: string
  describe: string
  usage: string
  options: Options
  handler: (values: Values, positionals: string[]) => Promise<number>
  /**
   * Exit with the handler's code as soon as it returns: a stopped daemon must not be kept alive
   * by a handle some library left open (its durable state is written before the stop ends).
   */
  exitWhenDone?: boolean
}

/** Flags of `start` that map onto config fields; the rest of the config comes from the file and env. */
const START_FLAGS: Record<string, string> = {
  role: 'role',
  'network-id': 'networkId',
  keystore: 'keystore',
  'key-password-file': 'keyPasswordFile',
  rpc: 'chain.rpcUrls',
  deployment: 'chain.deploymentFile',
  listen: 'p2p.listen',
  announce: 'p2p.announce',
  bootstrap: 'p2p.bootstrap',
  'data-dir': 'dataDir',
  models: 'models',
  threads: 'inference.threads',
  'api-port': 'api.port',
  'log-level': 'logLevel',
  'log-format': 'logFormat'
}

/** How every chain command that signs finds its key. */
const SIGNER_OPTIONS: Options = {rpc: {type: 'string'}, keystore: {type: 'string'}, 'password-file': {type: 'string'}}
/** How commands on a deployed network find it; `--rpc` defaults to the deployment file's `network.rpcUrls`. */
const NETWORK_OPTIONS: Options = {rpc: {type: 'string'}, deployment: {type: 'string'}}

const COMMANDS: Command[] = [
  {
    command: 'start',
    describe: 'Run one node (oracle, miner or validator)',
    usage: 'cortensord start [--config FILE] [--role oracle|miner|validator] [--rpc URL,...] [--bootstrap MULTIADDR,...] [--announce MULTIADDR,...] [--models ID[=FILE],...] [...]',
    options: {
      config: {type: 'string'},
      ...Object.fromEntries(Object.keys(START_FLAGS).map(flag => [flag, {type: 'string' as const}]))
    },
    handler: async (values) => {
      runUnderNodeFlags()
      const {buildConfig, ENV_FIELDS, fromDottedEntries, readConfigFile} = await import('./config.js')
      const fileLayer = typeof values.config === 'string' ? readConfigFile(values.config) : {}
      const envLayer = fromDottedEntries(Object.fromEntries(Object.entries(ENV_FIELDS).map(([env, field]) => [field, process.env[env]])))
      const flagLayer = fromDottedEntries(Object.fromEntries(Object.entries(START_FLAGS).map(([flag, field]) => [field, values[flag]])))
      const config = buildConfig([fileLayer, envLayer, flagLayer])
      const password = keyPassword(config.keyPasswordFile)
      // Read once here too: a missing or malformed deployment file is a config error (one line), not a failed start.
      const {readDeployment} = await import('../chain/deployment.js')
      await readDeployment(config.chain.deploymentFile)
      const {runDaemon} = await import('./daemon.js')
      return await runDaemon(config, password)
    },
    exitWhenDone: true
  },
  {
    command: 'devnet',
    describe: 'Start a local network: embedded chain, 1 oracle, N miners and M validators as separate processes',
    usage: 'cortensord devnet [--miners N] [--validators M] [--demo] [--dir DIR]',
    options: {
      miners: {type: 'string', default: '7'},
      validators: {type: 'string', default: '0'},
      demo: {type: 'boolean', default: false},
      dir: {type: 'string'},
      'log-level': {type: 'string'}
    },
    handler: async (values) => {
      const miners = Number(values.miners)
      if (!Number.isInteger(miners) || miners < 1 || miners > 64) throw new ConfigError({code: 'CONFIG_INVALID', field: 'miners'}, `--miners must be an integer in [1, 64], got ${String(values.miners)}`)
      const validators = Number(values.validators)
      if (!Number.isInteger(validators) || validators < 0 || validators > 16) throw new ConfigError({code: 'CONFIG_INVALID', field: 'validators'}, `--validators must be an integer in [0, 16], got ${String(values.validators)}`)
      const {runDevnet} = await import('../devnet/runDevnet.js')
      return await runDevnet({
        miners,
        validators,
        demo: values.demo === true,
        dir: typeof values.dir === 'string' ? values.dir : undefined,
        logLevel: devnetLogLevel(typeof values['log-level'] === 'string' ? values['log-level'] : (process.env.CORTENSORD_LOG_LEVEL ?? 'warn')),
        interactive: process.stdout.isTTY === true && process.env.CI !== 'true'
      })
    }
  },
  {
    command: 'ask',
    describe: 'Send a prompt to an oracle; stream the answer and the miners\' verdict',
    usage: 'cortensord ask "PROMPT" [--api URL] [--token TOKEN] [--model NAME|ID] [--mode parallel|competing] [--redundancy K] [--max-tokens N] [--json]   (or CORTENSORD_API_URL, CORTENSORD_API_TOKEN)',
    options: {
      api: {type: 'string'},
      token: {type: 'string'},
      model: {type: 'string'},
      mode: {type: 'string', default: 'parallel'},
      redundancy: {type: 'string', default: '1'},
      'max-tokens': {type: 'string', default: '64'},
      json: {type: 'boolean', default: false}
    },
    handler: async (values, positionals) => {
      const prompt = positionals.join(' ')
      if (prompt === '') throw new ConfigError({code: 'CONFIG_INVALID', field: 'PROMPT'}, 'ask needs a prompt: cortensord ask "Once upon a time"')
      const number = (flag: string): number => {
        const n = Number(values[flag])
        if (!Number.isInteger(n) || n < 1) throw new ConfigError({code: 'CONFIG_INVALID', field: flag}, `--${flag} must be a positive integer, got ${String(values[flag])}`)
        return n
      }
      const {ask} = await import('./askCommand.js')
      return await ask({
        api: (values.api as string | undefined) ?? process.env.CORTENSORD_API_URL ?? `http://127.0.0.1:${DEFAULTS.api.port}`,
        token: (values.token as string | undefined) ?? process.env.CORTENSORD_API_TOKEN,
        prompt, model: values.model as string | undefined, mode: String(values.mode), redundancy: number('redundancy'), maxTokens: number('max-tokens'), json: values.json === true,
        out: process.stdout, err: process.stderr
      })
    }
  },
  {
    command: 'keys new',
    describe: 'Create an encrypted keystore; prints its address and peer id',
    usage: 'cortensord keys new --out FILE [--password-file FILE]   (or CORTENSORD_KEY_PASSWORD)',
    options: {out: {type: 'string'}, 'password-file': {type: 'string'}},
    handler: async (values) => {
      if (typeof values.out !== 'string') throw new ConfigError({code: 'CONFIG_INVALID', field: 'out'}, 'keys new needs --out FILE')
      const {createKeystore} = await import('./keys.js')
      const info = await createKeystore(values.out, keyPassword(values['password-file'] as string | undefined))
      process.stdout.write(`address  ${info.address}\npeer id  ${info.peerId}\nkeystore ${values.out}\n`)
      return 0
    }
  },
  {
    command: 'keys show',
    describe: 'Print the address and peer id of a keystore',
    usage: 'cortensord keys show FILE [--password-file FILE]   (or CORTENSORD_KEY_PASSWORD)',
    options: {'password-file': {type: 'string'}},
    handler: async (values, positionals) => {
      const file = positionals[0]
      if (file == null) throw new ConfigError({code: 'CONFIG_INVALID', field: 'FILE'}, 'keys show needs the keystore FILE')
      const {loadKeystore, nodeKeyInfo} = await import('./keys.js')
      const info = nodeKeyInfo(await loadKeystore(file, keyPassword(values['password-file'] as string | undefined)))
      process.stdout.write(`address  ${info.address}\npeer id  ${info.peerId}\n`)
      return 0
    }
  },
  {
    command: 'chain',
    describe: 'Run a private EVM chain (anvil) for a multi-host network, kept across restarts in a state file',
    usage: 'cortensord chain [--host 127.0.0.1|0.0.0.0|IP] [--port 8545] [--state FILE] [--state-interval S] [--fund ADDRESS,...] [--chain-id N] [--block-time S]',
    options: {
      host: {type: 'string', default: '127.0.0.1'},
      port: {type: 'string', default: '8545'},
      state: {type: 'string'},
      'state-interval': {type: 'string', default: '5'},
      fund: {type: 'string', multiple: true},
      'chain-id': {type: 'string', default: '31337'},
      'block-time': {type: 'string'}
    },
    handler: async (values) => {
      const host = String(values.host)
      if (isIP(host) === 0) throw new ConfigError({code: 'CONFIG_INVALID', field: 'host'}, `--host must be an IP address to listen on (127.0.0.1, 0.0.0.0 or this host's LAN address), got ${JSON.stringify(host)}`)
      const blockTime = values['block-time'] === undefined ? undefined : number(values, 'block-time', 1, 3600)
      const {runChain} = await import('../operator/chainCommand.js')
      const controller = new AbortController()
      const onSignal = (): void => { controller.abort() }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      try {
        return await runChain({
          host,
          port: number(values, 'port', 0, 65_535),
          chainId: number(values, 'chain-id', 1, Number.MAX_SAFE_INTEGER),
          blockTimeSeconds: blockTime,
          statePath: values.state as string | undefined,
          stateIntervalSeconds: number(values, 'state-interval', 1, 86_400),
          fund: await addresses(values.fund as string[] | undefined ?? [], '--fund'),
          io: {...stdio(), signal: controller.signal}
        })
      } finally {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
    },
    exitWhenDone: true
  },
  {
    command: 'network deploy',
    describe: 'Deploy and wire the network\'s contracts (the keystore\'s account becomes ACL admin); write the deployment file',
    usage: 'cortensord network deploy --rpc URL --keystore FILE [--password-file FILE] --out FILE [--ready-window S]   (--out may be a preset whose addresses are null)',
    options: {...SIGNER_OPTIONS, out: {type: 'string'}, 'ready-window': {type: 'string'}},
    handler: async (values) => {
      const out = required(values, 'out', 'FILE', 'the deployment file to write')
      const {networkDeploy} = await import('../operator/networkCommands.js')
      return await networkDeploy({
        rpcUrl: rpcUrl(values) ?? missing('rpc', 'URL', 'the chain\'s JSON-RPC endpoint'),
        signer: signer(values),
        out,
        readyWindowSeconds: values['ready-window'] === undefined ? undefined : number(values, 'ready-window', 0, 2 ** 32),
        io: stdio()
      })
    },
    exitWhenDone: true
  },
  {
    command: 'network admit',
    describe: 'Grant addresses a node role in the ACL (an address already admitted is reported)',
    usage: 'cortensord network admit --role oracle|miner|validator ADDRESS... --deployment FILE --keystore FILE [--password-file FILE] [--rpc URL]',
    options: {...SIGNER_OPTIONS, ...NETWORK_OPTIONS, role: {type: 'string'}},
    handler: async (values, positionals) => {
      const role = nodeRole(required(values, 'role', 'oracle|miner|validator', 'the role to grant'))
      const list = await addresses(positionals, 'ADDRESS')
      if (list.length === 0) missing('ADDRESS', '', 'one or more addresses to admit', true)
      const {networkAdmit} = await import('../operator/networkCommands.js')
      return await networkAdmit({...networkTarget(values), signer: signer(values), role, addresses: list, io: stdio()})
    },
    exitWhenDone: true
  },
  {
    command: 'network revoke',
    describe: 'Revoke every ACL role the addresses hold (the network\'s last admin stays admin)',
    usage: 'cortensord network revoke ADDRESS... --deployment FILE --keystore FILE [--password-file FILE] [--rpc URL]',
    options: {...SIGNER_OPTIONS, ...NETWORK_OPTIONS},
    handler: async (values, positionals) => {
      const list = await addresses(positionals, 'ADDRESS')
      if (list.length === 0) missing('ADDRESS', '', 'one or more addresses to revoke', true)
      const {networkRevoke} = await import('../operator/networkCommands.js')
      return await networkRevoke({...networkTarget(values), signer: signer(values), addresses: list, io: stdio()})
    },
    exitWhenDone: true
  },
  {
    command: 'network info',
    describe: 'Show the network: contracts, models, admitted and registered nodes with their last ping and counters',
    usage: 'cortensord network info --deployment FILE [--rpc URL] [--json]',
    options: {...NETWORK_OPTIONS, json: {type: 'boolean', default: false}},
    handler: async (values) => {
      const {networkInfo} = await import('../operator/networkCommands.js')
      return await networkInfo({...networkTarget(values), json: values.json === true, io: stdio()})
    },
    exitWhenDone: true
  },
  {
    command: 'model publish',
    describe: 'Compute a GGUF\'s sha256 and IPFS CID as nodes do, and register it in the ModelRegistry',
    usage: 'cortensord model publish FILE --name NAME --quantization LABEL --deployment FILE --keystore FILE [--password-file FILE] [--rpc URL]',
    options: {...SIGNER_OPTIONS, ...NETWORK_OPTIONS, name: {type: 'string'}, quantization: {type: 'string'}},
    handler: async (values, positionals) => {
      const file = positionals[0] ?? missing('FILE', '', 'the model file to publish', true)
      if (positionals.length > 1) throw new ConfigError({code: 'CONFIG_INVALID', field: 'FILE'}, `model publish takes one FILE, got ${positionals.length}`)
      const {modelPublish} = await import('../operator/modelPublish.js')
      return await modelPublish({
        ...networkTarget(values),
        file,
        name: required(values, 'name', 'NAME', 'the model\'s name in the registry'),
        quantization: required(values, 'quantization', 'LABEL', 'the quantization label, e.g. Q4_0'),
        signer: signer(values),
        io: stdio()
      })
    },
    exitWhenDone: true
  },
  {
    command: 'status',
    describe: 'A node\'s health and why it earns or not, from its API: exit 0 healthy, 1 not healthy (not admitted, model failed), 3 healthy but a reason it does not earn holds, 2 unreachable',
    usage: 'cortensord status [--api URL] [--token TOKEN] [--json]   (or CORTENSORD_API_URL, CORTENSORD_API_TOKEN)',
    options: {api: {type: 'string'}, token: {type: 'string'}, json: {type: 'boolean', default: false}},
    handler: async (values) => {
      const {nodeStatus} = await import('../operator/statusCommand.js')
      return await nodeStatus({
        api: (values.api as string | undefined) ?? process.env.CORTENSORD_API_URL ?? `http://127.0.0.1:${DEFAULTS.api.port}`,
        token: (values.token as string | undefined) ?? process.env.CORTENSORD_API_TOKEN,
        json: values.json === true,
        io: stdio()
      })
    }
  }
]

/**
 * A node started without `NODE_FLAGS` (`npx cortensord start`, a service unit) replaces itself,
 * same pid and stdio, with the same command under them: V8 reads them only at process start.
 * Not where the flags are set already (the devnet passes them; an operator may set their own in
 * NODE_OPTIONS), not with an IPC channel (a supervisor's, which the new image would not keep),
 * not where `process.execve` is missing (Windows): the node then runs as it was started.
 */
function runUnderNodeFlags (): void {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]
  const missing = NODE_FLAGS.filter(flag => !given.some(g => g.split('=')[0] === flag.split('=')[0]))
  if (missing.length === 0 || process.channel != null || process.execve == null) return
  const script = process.argv[1]
  if (script == null) return
  try {
    process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, script, ...process.argv.slice(2)], process.env)
  } catch {
    // The node runs as it was started: only its memory figure differs.
  }
}

function keyPassword (passwordFile: string | undefined): string {
  if (passwordFile != null) {
    try {
      return readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message
      throw new ConfigError({code: 'CONFIG_UNREADABLE', file: passwordFile}, `cannot read password file ${passwordFile}: ${why}`)
    }
  }
  const fromEnv = process.env.CORTENSORD_KEY_PASSWORD
  if (fromEnv == null || fromEnv === '') {
    throw new ConfigError({code: 'CONFIG_INVALID', field: 'keyPassword'}, 'no key password: set CORTENSORD_KEY_PASSWORD or pass a password file')
  }
  return fromEnv
}


/** Checked here, against the levels the config takes: every node the devnet starts would otherwise fail on it, each in its own log file. */
function devnetLogLevel (level: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError({code: 'CONFIG_INVALID', field: 'log-level'}, `--log-level (or CORTENSORD_LOG_LEVEL) must be ${LOG_LEVELS.join(', ')}; got ${JSON.stringify(level)}`)
  }
  return level
}

function stdio (): OperatorIo {
  return {out: process.stdout, err: process.stderr}
}

function missing (flag: string, placeholder: string, what: string, positional = false): never {
  const name = positional ? flag : `--${flag}${placeholder === '' ? '' : ` ${placeholder}`}`
  throw new ConfigError({code: 'CONFIG_INVALID', field: flag}, `missing ${name}: ${what}`)
}

function required (values: Values, flag: string, placeholder: string, what: string): string {
  const value = values[flag]
  return typeof value === 'string' && value !== '' ? value : missing(flag, placeholder, what)
}

function number (values: Values, flag: string, min: number, max: number): number {
  const n = Number(values[flag])
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError({code: 'CONFIG_INVALID', field: flag}, `--${flag} must be an integer in [${min}, ${max}], got ${JSON.stringify(values[flag])}`)
  return n
}

function nodeRole (value: string): Role {
  if (!(ROLES as readonly string[]).includes(value)) throw new ConfigError({code: 'CONFIG_INVALID', field: 'role'}, `unknown role ${JSON.stringify(value)}: --role must be ${ROLES.join(', ')}`)
  return value as Role
}

/** Addresses from positionals or repeated flags, each possibly a comma list; a bad one is named. */
async function addresses (items: string[], what: string): Promise<Address[]> {
  // Loaded here: commands that take no address (`status`, run by health checks) do not pay for ethers.
  const {isAddress} = await import('ethers')
  return items.flatMap(item => item.split(',')).map(item => item.trim()).filter(item => item !== '').map(item => {
    // ethers' check: a mixed-case address must carry a valid EIP-55 checksum (a typo shows).
    if (!isAddress(item)) throw new ConfigError({code: 'CONFIG_INVALID', field: what}, `${what} ${JSON.stringify(item)} is not an address (0x and 40 hex digits, checksummed if mixed-case)`)
    return toAddress(item)
  })
}

/** `--rpc`, else the first of `CORTENSORD_RPC_URL` (a comma list, like the node's `chain.rpcUrls`). */
function rpcUrl (values: Values): string | undefined {
  const url = (values.rpc as string | undefined) ?? process.env.CORTENSORD_RPC_URL?.split(',')[0]?.trim()
  if (url === undefined || url === '') return undefined
  if (!URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol)) {
    throw new ConfigError({code: 'CONFIG_INVALID', field: 'rpc'}, `--rpc must be an http(s) JSON-RPC URL, got ${JSON.stringify(url)}`)
  }
  return url
}

function networkTarget (values: Values): {rpcUrl?: string, deploymentFile: string} {
  const deploymentFile = (values.deployment as string | undefined) ?? process.env.CORTENSORD_DEPLOYMENT
  if (deploymentFile === undefined || deploymentFile === '') return missing('deployment', 'FILE', 'the network\'s deployment file (or set CORTENSORD_DEPLOYMENT)')
  const url = rpcUrl(values)
  return url === undefined ? {deploymentFile} : {rpcUrl: url, deploymentFile}
}

/** The keystore and its password; reading and decrypting the keystore is the command's (after the chain answers). */
function signer (values: Values): OperatorSigner {
  const keystore = (values.keystore as string | undefined) ?? process.env.CORTENSORD_KEYSTORE
  if (keystore === undefined || keystore === '') return missing('keystore', 'FILE', 'the admin\'s keystore (or set CORTENSORD_KEYSTORE)')
  return {keystore, password: keyPassword(values['password-file'] as string | undefined)}
}

function help (): string {
  const width = Math.max(...COMMANDS.map(c => c.command.length))
  return ['cortensord — decentralized AI-inference node', '', 'Commands:',
    ...COMMANDS.map(c => `  ${c.command.padEnd(width)}  ${c.describe}\n  ${' '.repeat(width)}  ${c.usage}`), ''].join('\n')
}

async function main (argv: string[]): Promise<{code: number, exit: boolean}> {
  skipHeliaDefaults()
  const [first, second] = argv
  const command = COMMANDS.find(c => c.command === `${first} ${second}`) ?? COMMANDS.find(c => c.command === first)
  if (command == null || first === 'help' || first === '--help') {
    process.stdout.write(help())
    return {code: first == null || first === 'help' || first === '--help' ? 0 : 2, exit: false}
  }
  const rest = argv.slice(command.command.split(' ').length)
  const {values, positionals} = parseArgs({args: rest, options: command.options, allowPositionals: true, strict: true})
  return {code: await command.handler(values as Values, positionals), exit: command.exitWhenDone === true}
}

main(process.argv.slice(2)).then(({code, exit}) => {
  process.exitCode = code
  if (exit) process.exit(code)
}, (err: unknown) => {
  // Known failures get one clear line; anything else is a bug and keeps its stack.
  if (err instanceof CortensorError || (err as {code?: string}).code?.startsWith('ERR_PARSE_ARGS') === true) {
    process.stderr.write(`cortensord: ${(err as Error).message}\n`)
    process.exitCode = 2
    return
  }
  // The format a failed start would have logged in; a bad setting is what may have failed, so it falls back to auto.
  const format = process.env.CORTENSORD_LOG_FORMAT
  createRootLogger({format: (LOG_FORMATS as readonly string[]).includes(format ?? '') ? format as LogFormat : 'auto'}).fatal({err}, 'cortensord failed')
  process.exitCode = 1
})
