import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {networkInterfaces} from 'node:os'
import {after, describe, it} from 'node:test'
import type {IdentifyResult} from '@libp2p/interface'
import {multiaddr, type Multiaddr} from '@multiformats/multiaddr'
import {createHost, dialAddresses, reachableAddresses, trustInterfaceAddresses, type Host} from '../../src/runtime/host.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {freePort} from '../support/relay.js'

const logger = createSilentLogger()
const hosts: Host[] = []
const addrs = (list: string[]): Multiaddr[] => list.map(a => multiaddr(a))

async function host (listen: string[], announce?: string[]): Promise<Host> {
  const started = await createHost({privateKey: randomBytes(32), listen, announce, logger})
  hosts.push(started)
  return started
}

/** What `to` tells `from` in identify, once `from` has dialled it at `addr`. */
async function identifyOf (from: Host, to: Host, addr: string): Promise<string[]> {
  const identified = new Promise<IdentifyResult>(resolve => {
    from.libp2p.addEventListener('peer:identify', (event) => { if (event.detail.peerId.equals(to.libp2p.peerId)) resolve(event.detail) })
  })
  await from.libp2p.dial(multiaddr(addr))
  return (await identified).listenAddrs.map(String)
}

const LOCAL_ONLY = /^\/ip4\/(127\.|0\.0\.0\.0)|^\/ip6\/(::1?)\//
/** This host's own non-internal IPv4 addresses: what a 0.0.0.0 listener should announce. */
const ownIPv4 = Object.values(networkInterfaces()).flat().filter(net => net != null && net.family === 'IPv4' && !net.internal).map(net => net!.address)

describe('what a host announces', () => {
  after(async () => { await Promise.all(hosts.map(async h => { await h.stop() })) })

  it('listening on 0.0.0.0 without announce: its interface addresses, no loopback, in identify and dialAddresses alike', {skip: ownIPv4.length === 0 ? 'this host has no non-loopback IPv4 interface' : false}, async () => {
    const a = await host(['/ip4/0.0.0.0/tcp/0'])
    const b = await host(['/ip4/0.0.0.0/tcp/0'])
    const announced = dialAddresses(b)
    assert.ok(announced.length > 0)
    for (const addr of announced) {
      assert.doesNotMatch(addr, LOCAL_ONLY)
      assert.ok(addr.endsWith(`/p2p/${b.libp2p.peerId.toString()}`), addr)
    }
    assert.deepEqual(announced.map(addr => multiaddr(addr).getComponents()[0]?.value).sort(), [...ownIPv4].sort())

    const told = await identifyOf(a, b, announced[0]!)
    assert.ok(told.length > 0)
    for (const addr of told) assert.doesNotMatch(addr, LOCAL_ONLY)
    assert.deepEqual(told.map(addr => multiaddr(addr).getComponents()[0]?.value).sort(), [...ownIPv4].sort())
  })

  it('with announce: exactly those addresses, in identify and dialAddresses', async () => {
    const a = await host(['/ip4/127.0.0.1/tcp/0'])
    const port = await freePort()
    const b = await host([`/ip4/0.0.0.0/tcp/${port}`], ['/ip4/203.0.113.7/tcp/4040', '/dns4/node.example.com/tcp/4040'])
    const peer = b.libp2p.peerId.toString()
    assert.deepEqual(dialAddresses(b), [`/ip4/203.0.113.7/tcp/4040/p2p/${peer}`, `/dns4/node.example.com/tcp/4040/p2p/${peer}`])
    // Dialled at its real listen address: identify still tells only the announced ones.
    assert.deepEqual((await identifyOf(a, b, `/ip4/127.0.0.1/tcp/${port}/p2p/${peer}`)).sort(), ['/dns4/node.example.com/tcp/4040', '/ip4/203.0.113.7/tcp/4040'])
  })

  it('listening on loopback only: loopback, as a devnet needs (its nodes dial each other there)', async () => {
    const a = await host(['/ip4/127.0.0.1/tcp/0'])
    const b = await host(['/ip4/127.0.0.1/tcp/0'])
    const announced = dialAddresses(b)
    assert.equal(announced.length, 1)
    assert.match(announced[0]!, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    assert.deepEqual(await identifyOf(a, b, announced[0]!), [announced[0]!.replace(`/p2p/${b.libp2p.peerId.toString()}`, '')])
  })
})

describe('reachableAddresses', () => {
  it('drops loopback and wildcard addresses, unless nothing else is left', () => {
    assert.deepEqual(reachableAddresses(addrs(['/ip4/127.0.0.1/tcp/1', '/ip4/10.0.0.5/tcp/1', '/ip6/::1/tcp/1', '/ip6/fd00::2/tcp/1', '/ip4/0.0.0.0/tcp/1'])).map(String),
      ['/ip4/10.0.0.5/tcp/1', '/ip6/fd00::2/tcp/1'])
    assert.deepEqual(reachableAddresses(addrs(['/ip4/127.0.0.1/tcp/1', '/ip6/::1/tcp/1'])).map(String), ['/ip4/127.0.0.1/tcp/1', '/ip6/::1/tcp/1'])
    assert.deepEqual(reachableAddresses(addrs(['/dns4/node.example.com/tcp/1'])).map(String), ['/dns4/node.example.com/tcp/1'])
  })
})

describe('trustInterfaceAddresses', () => {
  it('confirms every listen address but loopback ones once a transport listens, public IPs included (libp2p would wait for autonat)', () => {
    const confirmed: string[] = []
    let onListening: (() => void) | undefined
    trustInterfaceAddresses()({
      addressManager: {confirmObservedAddr: (addr, options) => { assert.equal(options.type, 'transport'); confirmed.push(addr.toString()) }},
      transportManager: {getAddrs: () => addrs(['/ip4/127.0.0.1/tcp/4040', '/ip4/198.51.7.9/tcp/4040', '/ip6/2001:db8::9/tcp/4040', '/ip6/::1/tcp/4040'])},
      events: {addEventListener: (type, listener) => { assert.equal(type, 'transport:listening'); onListening = listener }}
    })
    assert.deepEqual(confirmed, [], 'nothing before a transport listens')
    onListening?.()
    assert.deepEqual(confirmed, ['/ip4/198.51.7.9/tcp/4040', '/ip6/2001:db8::9/tcp/4040'])
  })
})
