import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {ProgressBars, progressReporter} from '../../src/util/progressBar.js'
import {captureStream, screen} from '../support/fakeTerminal.js'

const MIB = 1024 * 1024
/** The characters cli-progress draws a bar with (its shades preset). */
const BAR_CHARACTERS = /[█░]/

describe('progress bars', () => {
  it('draws nothing off a terminal: a command writes a line at most every 2 s and one at the end', () => {
    const {stream: out, text} = captureStream(false)
    assert.equal(ProgressBars.on(out), undefined)
    const progress = progressReporter(out, 'hashing model.gguf')
    for (let bytes = 0; bytes <= 10 * MIB; bytes += MIB) progress.update(bytes, 10 * MIB, MIB)
    progress.stop()
    assert.doesNotMatch(text(), BAR_CHARACTERS)
    assert.doesNotMatch(text(), /\x1b/, 'no terminal control codes in a file')
    assert.deepEqual(text().trimEnd().split('\n'), ['hashing model.gguf: 0% (0 of 10485760 bytes)', 'hashing model.gguf: 100% (10485760 of 10485760 bytes)'])
  })

  it('draws a bar on a terminal that moves with the work and ends at 100 %', () => {
    const {stream: out, text} = captureStream(true)
    const progress = progressReporter(out, 'hashing model.gguf')
    try {
      progress.update(0, 10 * MIB, 0)
      progress.update(5 * MIB, 10 * MIB, 2 * MIB)
      progress.update(10 * MIB, 10 * MIB, 2 * MIB)
    } finally {
      progress.stop()
    }
    assert.match(text(), BAR_CHARACTERS)
    const lines = screen(text()).filter(line => line !== '')
    assert.equal(lines.length, 1, `one bar line, drawn over itself:\n${lines.join('\n')}`)
    assert.match(lines[0]!, /^hashing model\.gguf █{40} 100% \| 10\.0\/10\.0 MiB \| 2\.0 MiB\/s/)
    assert.ok(lines[0]!.length <= 100, 'fits the terminal\'s width')
  })

  it('writes log lines above the bars, and leaves an unfinished bar where it stopped', () => {
    const {stream: out, text} = captureStream(true)
    const bars = ProgressBars.on(out)
    assert.ok(bars !== undefined)
    try {
      bars.show('m1', {label: 'model 1 fetch', bytes: 3 * MIB, total: 10 * MIB, bytesPerSecond: MIB})
      bars.writeLine('a peer connected\n')
      bars.end('m1')
    } finally {
      bars.stop()
    }
    const lines = screen(text()).filter(line => line !== '')
    assert.equal(lines[0], 'a peer connected')
    assert.match(lines[1]!, /^model 1 fetch █{12}░{28} 30% \| 3\.0\/10\.0 MiB/)
    bars.writeLine('after the bars\n')
    assert.ok(text().endsWith('after the bars\n'), 'with no bar drawn, a line is written at once')
  })
})
