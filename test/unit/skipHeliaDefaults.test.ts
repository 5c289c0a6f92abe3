import {generateKeyPair} from '@libp2p/crypto/keys'
import assert from 'node:assert/strict'
import {registerHooks} from 'node:module'
import {describe, it} from 'node:test'
import {skipHeliaDefaults} from '../../src/runtime/skipHeliaDefaults.js'
import {createSilentLogger} from '../../src/util/logger.js'

// Nothing above imports helia: the hook must be in place before the first import of it, as in
// the command line (which installs it before it loads any command).
describe('skipHeliaDefaults', () => {
  it('loads a node\'s host without helia\'s default stack, whose stand-ins say what they are', async () => {
    const loaded: string[] = []
    registerHooks({load: (url, context, nextLoad) => { loaded.push(url); return nextLoad(url, context) }})
    skipHeliaDefaults()
    const {createHost} = await import('../../src/runtime/host.js')
    const key = await generateKeyPair('secp256k1')
    const host = await createHost({privateKey: key.raw, listen: ['/ip4/127.0.0.1/tcp/0'], logger: createSilentLogger()})
    try {
      assert.ok(host.libp2p.getMultiaddrs().length > 0, 'the light node listens')
    } finally {
      await host.stop()
    }
    for (const skipped of ['/@libp2p/webrtc/', '/@libp2p/kad-dht/', '/@ipshipyard/libp2p-auto-tls/', '/@helia/http/', '/utils/libp2p-defaults.js']) {
      assert.equal(loaded.find(url => url.includes(skipped)), undefined, `${skipped} was loaded`)
    }
    assert.ok(loaded.some(url => url.includes('/node_modules/helia/')) && loaded.some(url => url.includes('/node_modules/@helia/libp2p/')), 'helia itself was loaded')
    const {libp2pDefaults} = await import('@helia/libp2p')
    assert.throws(() => libp2pDefaults(), /libp2p-defaults\.js is not loaded in cortensord/)
  })
})
