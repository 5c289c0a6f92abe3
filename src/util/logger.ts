import {pino, type Logger as PinoLogger} from 'pino'

/** The one structured logger type of the project; components get children of the root. */
export type Logger = PinoLogger

export interface LoggerOptions {
  level?: string
  /** Extra bindings carried by every line (node name, role…). */
  bindings?: Record<string, unknown>
  /** Where lines go; stderr by default. */
  destination?: NodeJS.WritableStream
}

/**
 * Field paths that must never reach a log line. Keys and passwords are redacted by pino
 * itself, so a careless `log.info({config})` cannot leak them.
 */
const REDACTED_PATHS = [
  'privateKey', '*.privateKey', 'password', '*.password', 'keyPassword', '*.keyPassword',
  'mnemonic', '*.mnemonic', 'apiTokens', '*.apiTokens', 'authorization', '*.authorization'
]

/**
 * Creates the root logger. JSON lines on stderr, so stdout stays free for command output
 * (tables, answers). `CORTENSORD_LOG_LEVEL` is read by the CLI and passed in here.
 */
export function createRootLogger (opts: LoggerOptions = {}): Logger {
  return pino({
    level: opts.level ?? 'info',
    base: opts.bindings ?? null,
    redact: {paths: REDACTED_PATHS, censor: '[redacted]'},
    timestamp: pino.stdTimeFunctions.isoTime
  }, opts.destination ?? pino.destination({fd: 2, sync: true}))
}

/** A logger that drops everything: for unit tests of one module. */
export function createSilentLogger (): Logger {
  return pino({level: 'silent'})
}
