/**
 * The command line: the only code that reads argv and the environment. Commands are data
 * objects `{command, describe, options, handler}`; `cortensord help` lists them.
 */
import {readFileSync} from 'node:fs'
import {parseArgs, type ParseArgsConfig} from 'node:util'
import {CortensorError} from '../util/cortensorError.js'
import {createRootLogger} from '../util/logger.js'
import {buildConfig, ConfigError, DEFAULTS, ENV_FIELDS, fromDottedEntries, readConfigFile} from './config.js'

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
  rpc: 'chain.rpcUrl',
  deployment: 'chain.deploymentFile',
  listen: 'p2p.listen',
  bootstrap: 'p2p.bootstrap',
  'data-dir': 'dataDir',
  'model-id': 'model.id',
  'model-file': 'model.file',
  threads: 'inference.threads',
  'api-port': 'api.port',
  'log-level': 'logLevel'
}

const COMMANDS: Command[] = [
  {
    command: 'start',
    describe: 'Run one node (oracle, miner or validator)',
    usage: 'cortensord start [--config FILE] [--role oracle|miner|validator] [--rpc URL] [--bootstrap MULTIADDR,...] [...]',
    options: {
      config: {type: 'string'},
      ...Object.fromEntries(Object.keys(START_FLAGS).map(flag => [flag, {type: 'string' as const}]))
    },
    handler: async (values) => {
      const fileLayer = typeof values.config === 'string' ? readConfigFile(values.config) : {}
      const envLayer = fromDottedEntries(Object.fromEntries(Object.entries(ENV_FIELDS).map(([env, field]) => [field, process.env[env]])))
      const flagLayer = fromDottedEntries(Object.fromEntries(Object.entries(START_FLAGS).map(([flag, field]) => [field, values[flag]])))
      const config = buildConfig([fileLayer, envLayer, flagLayer])
      const password = keyPassword(config.keyPasswordFile)
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
        logLevel: typeof values['log-level'] === 'string' ? values['log-level'] : (process.env.CORTENSORD_LOG_LEVEL ?? 'warn'),
        interactive: process.stdout.isTTY === true && process.env.CI !== 'true'
      })
    }
  },
  {
    command: 'ask',
    describe: 'Send a prompt to an oracle; stream the answer and the miners\' verdict',
    usage: 'cortensord ask "PROMPT" [--api URL] [--token TOKEN] [--mode parallel|competing] [--redundancy K] [--max-tokens N] [--json]   (or CORTENSORD_API_URL, CORTENSORD_API_TOKEN)',
    options: {
      api: {type: 'string'},
      token: {type: 'string'},
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
        prompt, mode: String(values.mode), redundancy: number('redundancy'), maxTokens: number('max-tokens'), json: values.json === true,
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
  }
]

function keyPassword (passwordFile: string | undefined): string {
  if (passwordFile != null) return readFileSync(passwordFile, 'utf8').replace(/\r?\n$/, '')
  const fromEnv = process.env.CORTENSORD_KEY_PASSWORD
  if (fromEnv == null || fromEnv === '') {
    throw new ConfigError({code: 'CONFIG_INVALID', field: 'keyPassword'}, 'no key password: set CORTENSORD_KEY_PASSWORD or pass a password file')
  }
  return fromEnv
}

function help (): string {
  const width = Math.max(...COMMANDS.map(c => c.command.length))
  return ['cortensord — decentralized AI-inference node', '', 'Commands:',
    ...COMMANDS.map(c => `  ${c.command.padEnd(width)}  ${c.describe}\n  ${' '.repeat(width)}  ${c.usage}`), ''].join('\n')
}

async function main (argv: string[]): Promise<{code: number, exit: boolean}> {
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
  createRootLogger().fatal({err}, 'cortensord failed')
  process.exitCode = 1
})
