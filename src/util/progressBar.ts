import cliProgress, {type MultiBar, type SingleBar} from 'cli-progress'

/** A stream bars may be drawn on: a terminal says so with `isTTY` and gives its width in `columns`. */
export type TerminalStream = NodeJS.WritableStream & {isTTY?: boolean, columns?: number}

/** Where one piece of long work stands, in bytes. */
export interface BarState {
  label: string
  bytes: number
  total: number
  bytesPerSecond: number
}

const MIB = 1024 * 1024

/**
 * Progress bars at the bottom of a terminal (cli-progress), with log lines written above them.
 * Off a terminal (CI, a pipe, a log file) there are none: `ProgressBars.on` answers undefined and
 * the caller writes lines instead, which a file keeps and a bar's redraws would only garble.
 */
export class ProgressBars {
  private multi: MultiBar | undefined
  private readonly bars = new Map<string, SingleBar>()

  private constructor (private readonly stream: TerminalStream) {}

  static on (stream: TerminalStream): ProgressBars | undefined {
    return stream.isTTY === true ? new ProgressBars(stream) : undefined
  }

  /** Draws the bar `key` where `state` says; once it reaches its total it stays at 100 % and is done. */
  show (key: string, state: BarState): void {
    // An empty file is done as soon as it starts.
    const total = Math.max(state.total, 1)
    const bytes = state.total === 0 ? total : Math.min(state.bytes, total)
    const payload = {label: state.label, rate: `${(state.bytesPerSecond / MIB).toFixed(1)} MiB/s`}
    const bar = this.bars.get(key)
    if (bar === undefined) {
      this.multi ??= this.createMultiBar()
      this.bars.set(key, this.multi.create(total, bytes, payload))
    } else {
      bar.setTotal(total)
      bar.update(bytes, payload)
    }
    if (bytes >= total) this.end(key)
  }

  /** Leaves the bar `key` as it last was (done, failed, or handed over to another phase). */
  end (key: string): void {
    const bar = this.bars.get(key)
    if (bar === undefined) return
    bar.stop()
    this.bars.delete(key)
    if (this.bars.size === 0) this.stop()
  }

  /** A whole line (ending in a newline), above the bars while any are drawn. */
  writeLine (line: string): void {
    if (this.multi === undefined) this.stream.write(line)
    else this.multi.log(line)
  }

  /** Draws the bars a last time, with any lines still waiting, and leaves them in the scrollback. */
  stop (): void {
    if (this.multi === undefined) return
    this.multi.update()
    this.multi.stop()
    this.multi = undefined
    this.bars.clear()
  }

  private createMultiBar (): MultiBar {
    return new cliProgress.MultiBar({
      stream: this.stream,
      format: '{label} {bar} {percentage}% | {value}/{total} MiB | {rate} | ETA {eta_formatted}',
      formatValue: (value, _options, type) => type === 'value' || type === 'total' ? (value / MIB).toFixed(1) : String(value),
      // Lines cut at the terminal's width rather than wrapped; nothing to restore if the process dies mid-bar.
      linewrap: true,
      hideCursor: false,
      gracefulExit: false,
      // A log line written above the bars scrolls them: they are drawn again even when unchanged.
      forceRedraw: true
    }, cliProgress.Presets.shades_classic)
  }
}

/** Least time between two progress lines off a terminal. */
export const PROGRESS_LINE_INTERVAL_MS = 2_000

export interface ProgressReporter {
  update: (bytes: number, total: number, bytesPerSecond: number) => void
  /** Leaves the bar as it last was (or writes nothing more); call on success and failure alike. */
  stop: () => void
}

/**
 * One command's long step for the person running it: a bar on a terminal, else a line at most
 * every `PROGRESS_LINE_INTERVAL_MS` and one at the end, `LABEL: 42% (N of M bytes)`.
 */
export function progressReporter (stream: TerminalStream, label: string): ProgressReporter {
  const bars = ProgressBars.on(stream)
  if (bars !== undefined) {
    return {
      update: (bytes, total, bytesPerSecond) => { bars.show(label, {label, bytes, total, bytesPerSecond}) },
      stop: () => { bars.stop() }
    }
  }
  let lastLineAt = -Infinity
  return {
    update: (bytes, total) => {
      const done = bytes >= total
      if (!done && performance.now() - lastLineAt < PROGRESS_LINE_INTERVAL_MS) return
      lastLineAt = performance.now()
      const percent = total === 0 ? 100 : Math.floor(100 * bytes / total)
      stream.write(`${label}: ${percent}% (${bytes} of ${total} bytes)\n`)
    },
    stop: () => {}
  }
}
