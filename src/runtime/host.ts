import {noise} from '@chainsafe/libp2p-noise'
import {yamux} from '@chainsafe/libp2p-yamux'
import {withBitswap} from '@helia/bitswap'
import {withLibp2pLight, type HeliaWithLibp2p} from '@helia/libp2p'
import {bootstrap} from '@libp2p/bootstrap'
import {privateKeyFromRaw} from '@libp2p/crypto/keys'
import {gossipsub, type GossipSub, type GossipsubOpts} from '@libp2p/gossipsub'
import {identify, type Identify} from '@libp2p/identify'
import type {Libp2p, PeerDiscovery} from '@libp2p/interface'
import {ping, type Ping} from '@libp2p/ping'
import {tcp} from '@libp2p/tcp'
import {multiaddr, type Multiaddr} from '@multiformats/multiaddr'
import {FsBlockstore} from 'blockstore-fs'
import {MemoryDatastore} from 'datastore-core'
import {FsDatastore} from 'datastore-fs'
import {createHeliaLight} from 'helia'
import {mkdir} from 'node:fs/promises'
import {join} from 'node:path'
import type {Logger} from '../util/logger.js'

/** Generous: admission is the chain's job (gossip validation), not a per-IP rate limit's. */
export const INBOUND_CONNECTIONS_PER_SECOND_PER_IP = 100

export interface HostServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
}

/** The one libp2p node of a daemon, shared by gossipsub and helia (bitswap). */
export type Host = HeliaWithLibp2p<HostServices>

export interface HostInit {
  /** 32-byte secp256k1 private key: the node's Ethereum key is also its libp2p identity. */
  privateKey: Uint8Array
  /** Multiaddrs to listen on, e.g. `/ip4/127.0.0.1/tcp/0`. */
  listen: string[]
  /**
   * Multiaddrs peers are told to dial (a NAT's public address, a DNS name), as given; when
   * empty, this host's own addresses are announced (see `reachableAddresses`).
   */
  announce?: string[]
  /** Multiaddrs (with `/p2p/<peerId>`) dialled at start. */
  bootstrap?: string[]
  /** Blocks and datastore are kept on disk under this folder; in memory when absent (tests). */
  dataDir?: string
  /** Gossipsub settings the protocol layer wants to override (scoring, limits). */
  gossip?: Partial<GossipsubOpts>
  logger: Logger
}

/**
 * Builds and starts the node's host: helia with its own libp2p (TCP + noise + yamux,
 * identify, ping, gossipsub) and bitswap, no public-network services (DHT, autonat, upnp,
 * public bootstrap list): peers are the network's own, found through `bootstrap`.
 */
export async function createHost (init: HostInit): Promise<Host> {
  const log = init.logger
  let stores: {blockstore?: FsBlockstore, datastore?: FsDatastore} = {}
  if (init.dataDir != null) {
    const blocks = join(init.dataDir, 'blocks')
    const data = join(init.dataDir, 'datastore')
    await mkdir(blocks, {recursive: true})
    await mkdir(data, {recursive: true})
    stores = {blockstore: new FsBlockstore(blocks), datastore: new FsDatastore(data)}
  }

  const peerDiscovery: Array<(components: any) => PeerDiscovery> = []
  if (init.bootstrap != null && init.bootstrap.length > 0) {
    peerDiscovery.push(bootstrap({list: init.bootstrap, timeout: 0}))
  }

  const announce = init.announce ?? []
  const helia = withBitswap(withLibp2pLight(createHeliaLight(stores), {
    privateKey: privateKeyFromRaw(init.privateKey),
    // libp2p's peer store in memory, not in helia's on-disk datastore: it was read from disk on
    // every stream a node opened (a miner's result stream per task). Peers come back from the
    // bootstrap list and heartbeats after a restart.
    datastore: new MemoryDatastore(),
    // The filter shapes every address list peers learn: identify, and `dialAddresses`
    // (heartbeats, node.json). Announce addresses given by the operator pass unfiltered.
    addresses: announce.length > 0 ? {listen: init.listen, announce} : {listen: init.listen, announceFilter: reachableAddresses},
    connectionManager: {
      // libp2p resets more than 5 inbound connections a second per IP; on a loopback devnet or
      // behind NAT every peer shares one IP, so seven miners dialling the seeder would be cut.
      inboundConnectionThreshold: INBOUND_CONNECTIONS_PER_SECOND_PER_IP
    },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery,
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        // A daemon publishes heartbeats before anyone listens; that is not an error.
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        ...init.gossip
      }),
      ...(announce.length > 0 ? {} : {interfaceAddresses: trustInterfaceAddresses()})
    }
  })) as Host

  await helia.start()
  keepBootstrapPeersConnected(helia.libp2p, init.bootstrap ?? [], log)
  log.info({peerId: helia.libp2p.peerId.toString(), addrs: helia.libp2p.getMultiaddrs().map(String)}, 'host started')
  return helia
}

/** The multiaddrs, with the peer id, that the host tells peers to dial it at (identify tells them the same). */
export function dialAddresses (host: Host): string[] {
  return host.libp2p.getMultiaddrs().map(String)
}

/**
 * What a host without announce addresses tells peers: its listen addresses (libp2p expands a
 * wildcard listener into one per interface) less the loopback ones, at which a peer on another
 * host would dial itself, and any wildcard one; all of them when nothing else is left (a node
 * listening on loopback only, such as a devnet's, or a host with no network).
 */
export function reachableAddresses (addrs: Multiaddr[]): Multiaddr[] {
  const reachable = addrs.filter(addr => !isLocalOnly(addr))
  return reachable.length > 0 ? reachable : addrs
}

/** Loopback (127.0.0.0/8, ::1) or wildcard (0.0.0.0, ::). */
function isLocalOnly (addr: Multiaddr): boolean {
  const ip = addr.getComponents()[0]
  if (ip?.name === 'ip4') return ip.value === '0.0.0.0' || ip.value?.startsWith('127.') === true
  if (ip?.name === 'ip6') return ip.value === '::' || ip.value === '::1'
  return false
}

/** The parts of libp2p's components `trustInterfaceAddresses` uses. */
export interface InterfaceAddressComponents {
  addressManager: {confirmObservedAddr: (addr: Multiaddr, options: {type: 'transport'}) => void}
  transportManager: {getAddrs: () => Multiaddr[]}
  events: {addEventListener: (type: 'transport:listening', listener: () => void) => void}
}

/**
 * libp2p announces a listen address on a public IP only once autonat has had peers dial it
 * back, and this network runs no autonat: a host with its public IP on an interface (a VPS,
 * bare metal) would announce only its private and loopback addresses. Its own interface
 * addresses are trusted instead, as libp2p already trusts private ones: whoever listens on
 * them means them to be dialled. A host behind NAT sets `p2p.announce`.
 */
export function trustInterfaceAddresses (): (components: InterfaceAddressComponents) => object {
  return (components) => {
    components.events.addEventListener('transport:listening', () => {
      for (const addr of components.transportManager.getAddrs()) {
        if (!isLocalOnly(addr)) components.addressManager.confirmObservedAddr(addr, {type: 'transport'})
      }
    })
    return {}
  }
}


/** Redial backoff for a lost bootstrap peer: doubling from `initialMs`, capped at `maxMs`. */
export const BOOTSTRAP_REDIAL = {initialMs: 500, maxMs: 30_000} as const

/**
 * Keeps a connection to every bootstrap peer for as long as the node runs: dials the ones not
 * reached at start and redials on `peer:disconnect`, with capped exponential backoff and no
 * retry limit (libp2p's own reconnect queue gives up after 5 tries; a node that loses its only
 * way into the network must keep trying). Stops by itself when libp2p stops.
 */
function keepBootstrapPeersConnected (libp2p: Libp2p, bootstrap: string[], log: Logger): void {
  const targets = new Map<string, Multiaddr>()
  for (const addr of bootstrap) {
    const ma = multiaddr(addr)
    const id = ma.getComponents().find(c => c.name === 'p2p')?.value
    // Without a peer id a disconnect cannot be matched to the address; the node's own address is no target.
    if (id != null && id !== libp2p.peerId.toString()) targets.set(id, ma)
  }
  if (targets.size === 0) return

  const redial = (id: string, addr: Multiaddr, delayMs: number): void => {
    if (libp2p.status !== 'started') return
    if (libp2p.getConnections().some(c => c.remotePeer.toString() === id)) return
    libp2p.dial(addr).then(
      () => { log.info({peer: id}, 'connected to bootstrap peer') },
      (err: unknown) => {
        log.warn({peer: id, err: (err as Error).message, retryInMs: delayMs}, 'bootstrap peer unreachable')
        setTimeout(() => { redial(id, addr, Math.min(delayMs * 2, BOOTSTRAP_REDIAL.maxMs)) }, delayMs).unref()
      }
    )
  }

  libp2p.addEventListener('peer:disconnect', (event) => {
    const id = event.detail.toString()
    const addr = targets.get(id)
    if (addr == null) return
    log.info({peer: id}, 'bootstrap peer disconnected; redialling')
    // Not at once: a peer that just dropped us (restart, prune) is rarely back within a few ms.
    setTimeout(() => { redial(id, addr, BOOTSTRAP_REDIAL.initialMs) }, BOOTSTRAP_REDIAL.initialMs).unref()
  })
  for (const [id, addr] of targets) redial(id, addr, BOOTSTRAP_REDIAL.initialMs)
}
