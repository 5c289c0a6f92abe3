import {Writable} from 'node:stream'
import type {TerminalStream} from '../../src/util/progressBar.js'

/** A stream that keeps what it gets; `terminal` makes it look like one (isTTY, `columns` wide), as process.stderr does. */
export function captureStream (terminal: boolean, columns = 100): {stream: TerminalStream, text: () => string} {
  let text = ''
  const out: TerminalStream = new Writable({write (chunk: Buffer, _encoding, done) { text += chunk.toString(); done() }})
  if (terminal) Object.assign(out, {isTTY: true, columns})
  return {stream: out, text: () => text}
}

/** What a terminal shows last on each line: escape codes dropped, each redraw replacing the line it is on. */
export function screen (text: string): string[] {
  return text.split('\n').map(line => line.split('\x1b[1G').map(part => part.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')).filter(part => part !== '').at(-1) ?? '')
}
