import assert from 'node:assert/strict'
import {PassThrough} from 'node:stream'
import {describe, it} from 'node:test'
import {createRootLogger, type LogFormat} from '../../src/util/logger.js'

/** A sink that keeps what it gets; `tty` makes it look like a terminal, as process.stderr does. */
function sink (tty = false): {stream: PassThrough & {isTTY?: boolean}, text: () => string} {
  const stream: PassThrough & {isTTY?: boolean} = new PassThrough()
  if (tty) stream.isTTY = true
  const chunks: string[] = []
  stream.on('data', (chunk: Buffer) => chunks.push(chunk.toString()))
  return {stream, text: () => chunks.join('')}
}

const privateKey = '0x' + 'ab'.repeat(32)

/** Logs a whole config with secrets in it, and a second line with a key and password at the top. */
function logSecrets (format: LogFormat, tty = false): string {
  const {stream, text} = sink(tty)
  const log = createRootLogger({destination: stream, format}).child({component: 'test'})
  log.info({config: {privateKey, password: 'hunter2', rpcUrl: 'http://127.0.0.1:8545'}}, 'starting')
  log.warn({privateKey, keyPassword: 'hunter2'}, 'key loaded')
  return text()
}

describe('logger', () => {
  for (const format of ['json', 'pretty'] as const) {
    it(`never writes a private key or password in ${format} lines, even when a caller logs a whole config`, () => {
      const out = logSecrets(format)
      assert.ok(out.includes('http://127.0.0.1:8545'), 'non-secret fields are kept')
      assert.ok(out.includes('[redacted]'), 'the redacted fields are marked')
      assert.ok(!out.includes(privateKey), 'private key must be redacted')
      assert.ok(!out.includes('hunter2'), 'password must be redacted')
    })
  }

  it('writes one JSON object a line when asked for json, with the child\'s bindings', () => {
    const lines = logSecrets('json', true).trimEnd().split('\n')
    assert.equal(lines.length, 2)
    const [first, second] = lines.map(line => JSON.parse(line) as {level: number, msg: string, component: string})
    assert.deepEqual([first?.level, first?.msg, first?.component], [30, 'starting', 'test'])
    assert.deepEqual([second?.level, second?.msg], [40, 'key loaded'])
  })

  it('writes lines a person reads when asked for pretty: time, level, component and message first', () => {
    const lines = logSecrets('pretty').trimEnd().split('\n')
    assert.equal(lines.length, 2, 'one line a record')
    for (const line of lines) assert.doesNotMatch(line, /^\s*\{/, 'no JSON object at the start of a line')
    assert.match(lines[0]!, /^\[?\d{2}:\d{2}:\d{2}\.\d{3}\]? INFO: test: starting /)
    assert.match(lines[1]!, /^\[?\d{2}:\d{2}:\d{2}\.\d{3}\]? WARN: test: key loaded/)
    assert.doesNotMatch(lines.join('\n'), /\x1b\[/, 'no colours off a terminal')
  })

  it('picks pretty on a terminal and JSON elsewhere when the format is auto', () => {
    const onTerminal = logSecrets('auto', true)
    assert.match(onTerminal, /INFO.*starting/)
    assert.doesNotMatch(onTerminal, /^\{/m)
    const inAFile = logSecrets('auto', false)
    assert.equal((JSON.parse(inAFile.split('\n')[0]!) as {msg: string}).msg, 'starting')
  })
})
