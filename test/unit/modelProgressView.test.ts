import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {MODEL_PROGRESS_MESSAGE, modelProgressView} from '../../src/model/modelProgress.js'
import {createRootLogger, type Logger} from '../../src/util/logger.js'
import {ProgressBars} from '../../src/util/progressBar.js'
import {captureStream, screen} from '../support/fakeTerminal.js'

const MIB = 1024 * 1024

/** What the model actor logs while it fetches 10 MiB and then verifies them, with a stall in between. */
function download (log: Logger): void {
  const model = log.child({component: 'model'})
  const progress = (phase: string, bytes: number): void => { model.info({modelId: '7', phase, bytes, total: 10 * MIB, rate: MIB}, MODEL_PROGRESS_MESSAGE) }
  progress('fetching', 2 * MIB)
  model.warn({modelId: '7', attempt: 1, code: 'FETCH_STALLED'}, 'model fetch interrupted; resuming')
  progress('fetching', 6 * MIB)
  progress('fetching', 10 * MIB)
  progress('verifying', 10 * MIB)
  model.info({modelId: '7', path: '/models/7.gguf'}, 'model file ready')
}

describe('model progress on a node\'s terminal', () => {
  it('draws each phase of a download as a bar, with the log lines between them', () => {
    const {stream: out, text} = captureStream(true, 120)
    const bars = ProgressBars.on(out)
    assert.ok(bars !== undefined)
    try {
      download(createRootLogger({destination: out, format: 'pretty', view: modelProgressView(bars)}))
    } finally {
      bars.stop()
    }
    const lines = screen(text()).filter(line => line !== '')
    const shapes = lines.map(line => /model 7 (\w+) [█░]{40} (\d+)%/.exec(line)?.slice(1).join(' ') ?? (/WARN|INFO/.exec(line)?.[0] ?? line))
    // The stalled bar is left at 20 % with the warning that stopped it below; the resumed fetch and the verify end at 100 %.
    assert.deepEqual(shapes, ['fetching 20', 'WARN', 'fetching 100', 'verifying 100', 'INFO'], lines.join('\n'))
    assert.doesNotMatch(text(), /model progress/, 'no progress lines on a terminal: the bars say it')
  })

  it('keeps the progress as JSON lines, and draws no bar, when the log is no terminal', () => {
    const {stream: out, text} = captureStream(false)
    assert.equal(ProgressBars.on(out), undefined, 'no bars to give the logger')
    download(createRootLogger({destination: out}))
    assert.doesNotMatch(text(), /[█░]|\x1b/)
    const records = text().trimEnd().split('\n').map(line => JSON.parse(line) as {msg: string, phase?: string, bytes?: number})
    assert.deepEqual(records.filter(r => r.msg === MODEL_PROGRESS_MESSAGE).map(r => `${r.phase} ${r.bytes}`),
      [`fetching ${2 * MIB}`, `fetching ${6 * MIB}`, `fetching ${10 * MIB}`, `verifying ${10 * MIB}`])
  })
})
