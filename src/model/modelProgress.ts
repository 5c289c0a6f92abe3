import type {LogRecord, TerminalView} from '../util/logger.js'
import type {ProgressBars} from '../util/progressBar.js'

/** What a long model operation is doing: hashing a local file into IPFS, pulling blocks, or re-hashing a file. */
export type ModelPhase = 'import' | 'fetch' | 'verify'

export interface ModelProgress {
  phase: ModelPhase
  /** Bytes of the file done so far (from the network or the local blockstore). */
  bytes: number
  total: number
  /** Bytes per second over the interval since the previous event. */
  rate: number
  /** Block bytes this call received from peers; on a resumed fetch, well under `bytes`. */
  networkBytes: number
}

/** Shaped like helia's `ProgressEvent` (`{type, detail}`), so it can travel with theirs. */
export interface ModelProgressEvent {
  type: `model:${ModelPhase}`
  detail: ModelProgress
}

export type OnModelProgress = (event: ModelProgressEvent) => void

export const PROGRESS_INTERVAL_MS = 250

/**
 * Turns per-chunk updates into at most one event per `intervalMs`, plus the final one, so a
 * 1 GiB download does not flood an operator's log or an actor's mailbox with 1000 events.
 */
export class ProgressThrottle {
  private lastEmitAt: number
  private lastEmitBytes = 0
  private bytes = 0

  constructor (
    private readonly phase: ModelPhase,
    private readonly total: number,
    private readonly onProgress: OnModelProgress | undefined,
    /** Reads the network counter of whoever moves the bytes; none for purely local work. */
    private readonly networkBytes: () => number = () => 0,
    private readonly intervalMs = PROGRESS_INTERVAL_MS
  ) {
    this.lastEmitAt = performance.now()
  }

  add (bytes: number): void {
    this.bytes += bytes
    if (performance.now() - this.lastEmitAt >= this.intervalMs) this.emit()
  }

  /** The last event: always sent, so a listener sees `bytes === total` on success. */
  finish (): void {
    this.emit()
  }

  get bytesDone (): number {
    return this.bytes
  }

  private emit (): void {
    const now = performance.now()
    const seconds = Math.max(now - this.lastEmitAt, 1) / 1000
    const rate = Math.round((this.bytes - this.lastEmitBytes) / seconds)
    this.lastEmitAt = now
    this.lastEmitBytes = this.bytes
    this.onProgress?.({
      type: `model:${this.phase}`,
      detail: {phase: this.phase, bytes: this.bytes, total: this.total, rate, networkBytes: this.networkBytes()}
    })
  }
}

/** The message of the log line a node writes for each progress event; a terminal draws these as bars. */
export const MODEL_PROGRESS_MESSAGE = 'model progress'

/**
 * A node's model progress lines, on a terminal, as one bar per model: it moves with each event,
 * and is left as it last was when its phase ends, or when a warning or an error about the model
 * says the transfer stopped (a resumed fetch then starts a new bar). Every other line is written
 * above the bars.
 */
export function modelProgressView (bars: ProgressBars): TerminalView {
  /** The bar drawn for each model: one per phase, so a verify after a fetch starts a new one. */
  const current = new Map<string, string>()
  const end = (modelId: string): void => {
    const key = current.get(modelId)
    if (key !== undefined) bars.end(key)
    current.delete(modelId)
  }
  return {
    draw: (record: LogRecord) => {
      const {modelId, phase, bytes, total, rate} = record
      if (typeof modelId !== 'string') return false
      if (record.msg !== MODEL_PROGRESS_MESSAGE || typeof bytes !== 'number' || typeof total !== 'number') {
        if (record.level >= WARN_LEVEL) end(modelId)
        return false
      }
      const key = `${modelId} ${String(phase)}`
      if (current.get(modelId) !== key) end(modelId)
      current.set(modelId, key)
      bars.show(key, {label: `model ${modelId} ${String(phase)}`, bytes, total, bytesPerSecond: typeof rate === 'number' ? rate : 0})
      if (bytes >= total) current.delete(modelId)
      return true
    },
    writeLine: (line: string) => { bars.writeLine(line) }
  }
}

/** pino's number for `warn`. */
const WARN_LEVEL = 40
