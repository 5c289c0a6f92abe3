import {createRequire} from 'node:module'
import {pino, type DestinationStream, type Logger as PinoLogger} from 'pino'
import type {prettyFactory as PrettyFactory} from 'pino-pretty'

/** The one structured logger type of the project; components get children of the root. */
export type Logger = PinoLogger

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/**
 * How lines look: `json` for machines (log shippers, files, the devnet's log files), `pretty`
 * for a person at a terminal; `auto` is `pretty` when the log stream is a terminal, else `json`.
 */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const
export type LogFormat = typeof LOG_FORMATS[number]

/** A stream that may be a terminal: `process.stderr` says so with `isTTY`, a pipe or a file does not. */
export type LogStream = NodeJS.WritableStream & {isTTY?: boolean}

/** One log line as pino writes it, parsed. */
export type LogRecord = Record<string, unknown> & {level: number, msg?: string}

/**
 * What a terminal shows besides log lines (progress bars at its bottom). In pretty format the
 * logger offers it every record first, and writes the other lines through it, above what it draws.
 */
export interface TerminalView {
  /** True when the view shows this record itself (a progress event) instead of a line. */
  draw: (record: LogRecord) => boolean
  writeLine: (line: string) => void
}

export interface LoggerOptions {
  level?: string
  /** Extra bindings carried by every line (node name, role…). */
  bindings?: Record<string, unknown>
  /** Where lines go; stderr by default. */
  destination?: LogStream
  /** `auto` by default: see `LOG_FORMATS`. */
  format?: LogFormat
  /** Only in pretty format. */
  view?: TerminalView
}

/**
 * Field paths that must never reach a log line. Keys and passwords are redacted by pino
 * itself, so a careless `log.info({config})` cannot leak them; pretty lines are made from the
 * redacted record, so the rule holds in both formats.
 */
const REDACTED_PATHS = [
  'privateKey', '*.privateKey', 'password', '*.password', 'keyPassword', '*.keyPassword',
  'mnemonic', '*.mnemonic', 'apiTokens', '*.apiTokens', 'authorization', '*.authorization'
]

/**
 * Creates the root logger, writing to stderr so stdout stays free for command output (tables,
 * answers). `CORTENSORD_LOG_LEVEL` and `CORTENSORD_LOG_FORMAT` are read by the CLI and passed in here.
 */
export function createRootLogger (opts: LoggerOptions = {}): Logger {
  const stream = opts.destination ?? process.stderr
  // Synchronous writes on fd 2: a fatal line written just before the process exits is not lost.
  const out = opts.destination ?? pino.destination({fd: 2, sync: true})
  const pretty = resolveLogFormat(opts.format ?? 'auto', stream) === 'pretty'
  return pino({
    level: opts.level ?? 'info',
    base: opts.bindings ?? null,
    redact: {paths: REDACTED_PATHS, censor: '[redacted]'},
    timestamp: pino.stdTimeFunctions.isoTime
  }, pretty ? prettyDestination(out, stream.isTTY === true, opts.view) : out)
}

/** `auto` made concrete for the stream the lines go to. */
export function resolveLogFormat (format: LogFormat, stream: LogStream): 'json' | 'pretty' {
  return format === 'auto' ? (stream.isTTY === true ? 'pretty' : 'json') : format
}

/**
 * Human-readable lines, made in the writing call from each JSON line (pino-pretty's formatter,
 * not its worker-thread transport: a node keeps one thread and its memory, and no line is lost
 * at exit). Colours only on a terminal, and not under NO_COLOR.
 */
function prettyDestination (out: DestinationStream | NodeJS.WritableStream, terminal: boolean, view: TerminalView | undefined): DestinationStream {
  // Loaded only for a pretty log: a node logging JSON (every one a supervisor runs) does not carry it.
  const {prettyFactory} = createRequire(import.meta.url)('pino-pretty') as {prettyFactory: typeof PrettyFactory}
  const format = prettyFactory({
    colorize: terminal && process.env.NO_COLOR == null,
    translateTime: 'SYS:HH:MM:ss.l',
    // One process is one node: its role and address would repeat on every line.
    ignore: 'pid,hostname,role,address,component',
    messageFormat: '{if component}{component}: {end}{msg}',
    singleLine: true
  })
  return {
    write: (line: string) => {
      const record = JSON.parse(line) as LogRecord
      if (view?.draw(record) === true) return
      const text = format(record)
      if (view != null) view.writeLine(text)
      else out.write(text)
    }
  }
}

/** A logger that drops everything: for unit tests of one module. */
export function createSilentLogger (): Logger {
  return pino({level: 'silent'})
}
