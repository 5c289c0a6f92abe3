import assert from 'node:assert/strict'
import {PassThrough} from 'node:stream'
import {describe, it} from 'node:test'
import {createRootLogger} from '../../src/util/logger.js'

describe('logger', () => {
  it('never writes a private key or password, even when a caller logs a whole config', () => {
    const sink = new PassThrough()
    const chunks: string[] = []
    sink.on('data', (chunk: Buffer) => chunks.push(chunk.toString()))
    const log = createRootLogger({destination: sink}).child({component: 'test'})
    const privateKey = '0x' + 'ab'.repeat(32)
    log.info({config: {privateKey, password: 'hunter2', rpcUrl: 'http://127.0.0.1:8545'}}, 'starting')
    log.info({privateKey, keyPassword: 'hunter2'}, 'key loaded')
    const out = chunks.join('')
    assert.ok(out.includes('http://127.0.0.1:8545'), 'non-secret fields are kept')
    assert.ok(out.includes('"component":"test"'), 'child bindings are kept')
    assert.ok(!out.includes(privateKey), 'private key must be redacted')
    assert.ok(!out.includes('hunter2'), 'password must be redacted')
  })
})
