import assert from 'node:assert/strict'
import {networkInterfaces} from 'node:os'
import {describe, it} from 'node:test'
import {apiUrl, startHttpApi} from '../../src/api/httpApi.js'
import {createSilentLogger} from '../../src/util/logger.js'

const firstIPv4 = Object.values(networkInterfaces()).flat().find(net => net != null && net.family === 'IPv4' && !net.internal)?.address ?? '127.0.0.1'

describe('the API URL a node gives out (node.json, logs)', () => {
  it('is the host it listens on when that is an address', () => {
    assert.equal(apiUrl('127.0.0.1', 8040, []), 'http://127.0.0.1:8040')
    assert.equal(apiUrl('10.0.0.5', 8040, ['/ip4/203.0.113.7/tcp/4040']), 'http://10.0.0.5:8040')
    assert.equal(apiUrl('::1', 8040, []), 'http://[::1]:8040')
  })

  it('for a wildcard host: the host of the first announce address', () => {
    assert.equal(apiUrl('0.0.0.0', 8040, ['/ip4/203.0.113.7/tcp/4040', '/ip4/198.51.100.1/tcp/4040']), 'http://203.0.113.7:8040')
    assert.equal(apiUrl('::', 8040, ['/ip6/2001:db8::7/tcp/4040']), 'http://[2001:db8::7]:8040')
    assert.equal(apiUrl('0.0.0.0', 8040, ['/dns4/node.example.com/tcp/4040']), 'http://node.example.com:8040')
  })

  it('for a wildcard host without announce: the first non-internal IPv4 interface, never 0.0.0.0', () => {
    assert.equal(apiUrl('0.0.0.0', 8040, []), `http://${firstIPv4}:8040`)
    assert.equal(apiUrl('::', 8040, []), `http://${firstIPv4}:8040`)
  })

  it('answers at the URL it gives out when listening on 0.0.0.0', async () => {
    const api = await startHttpApi({
      host: '0.0.0.0', port: 0, routes: [{method: 'GET', path: '/ping', handler: () => ({json: 'pong'})}],
      tokens: [], maxBodyBytes: 1024, limits: {maxConcurrentRequests: 4}, logger: createSilentLogger()
    })
    try {
      assert.doesNotMatch(api.url, /0\.0\.0\.0/)
      assert.equal(await (await fetch(`${api.url}/ping`)).json(), 'pong')
    } finally {
      await api.close()
    }
  })
})
