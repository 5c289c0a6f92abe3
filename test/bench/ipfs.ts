/**
 * IPFS model distribution figures (not pass/fail), all on loopback with real helia nodes and
 * FsBlockstores as a miner runs them:
 *  1. 256 MiB from one node to another over bitswap, against a raw TCP copy of the same file.
 *  2. One 64 MiB file pulled by 1, 3 and 7 fresh nodes at once from one seeder.
 * Run: npx tsx test/bench/ipfs.ts [--big-mib 256] [--fanout-mib 64] [--chunk-kib 1024] [--concurrency 16] [--mesh]
 */
import {multiaddr} from '@multiformats/multiaddr'
import {randomBytes} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {createServer, connect, type AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {parseArgs} from 'node:util'
import {HeliaModelStore} from '../../src/model/heliaModelStore.js'
import type {ModelDescriptor} from '../../src/model/modelDescriptor.js'
import {createHost, dialAddresses, type Host} from '../../src/runtime/host.js'
import {createSilentLogger} from '../../src/util/logger.js'
import {sleep} from '../../src/util/sleep.js'
import {writePseudoRandomFile} from '../support/pseudoRandomFile.js'

const MIB = 1024 * 1024
const {values: args} = parseArgs({options: {
  'big-mib': {type: 'string', default: '256'},
  'fanout-mib': {type: 'string', default: '64'},
  'chunk-kib': {type: 'string', default: '1024'},
  concurrency: {type: 'string', default: '16'},
  /** Fetchers also dial each other (as in a real network), not only the seeder. */
  mesh: {type: 'boolean', default: false}
}})
const chunkSize = Number(args['chunk-kib']) * 1024
const fetchConcurrency = Number(args.concurrency)
const logger = createSilentLogger()

interface Node {host: Host, store: HeliaModelStore}

async function startNode (dir: string): Promise<Node> {
  const host = await createHost({privateKey: randomBytes(32), listen: ['/ip4/127.0.0.1/tcp/0'], dataDir: dir, logger})
  return {host, store: new HeliaModelStore({host, modelDir: join(dir, 'models'), logger, chunkSize, fetchConcurrency})}
}

async function seed (root: string, name: string, mib: number, seedValue: number): Promise<{seeder: Node, descriptor: ModelDescriptor, path: string, importSeconds: number}> {
  const path = join(root, `${name}.bin`)
  await writePseudoRandomFile(path, mib * MIB, seedValue)
  const seeder = await startNode(join(root, `${name}-seeder`))
  const started = performance.now()
  const added = await seeder.store.addFile(path)
  const importSeconds = (performance.now() - started) / 1000
  return {seeder, descriptor: {name, ...added, quantization: 'none'}, path, importSeconds}
}

/** Raw TCP: the seeder streams the file to a socket, the client writes what it reads to disk. */
async function tcpCopySeconds (path: string, to: string): Promise<number> {
  const server = createServer(socket => { void pipeline(createReadStream(path, {highWaterMark: MIB}), socket) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  const started = performance.now()
  await pipeline(connect(port, '127.0.0.1'), createWriteStream(to))
  const seconds = (performance.now() - started) / 1000
  server.close()
  return seconds
}

function mibPerSecond (bytes: number, seconds: number): string {
  return (bytes / MIB / seconds).toFixed(1)
}

async function main (): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'cortensor-bench-ipfs-'))
  const running: Node[] = []
  try {
    console.log(`chunk ${chunkSize / 1024} KiB, ${fetchConcurrency} blocks in flight per fetch, FsBlockstore, loopback`)

    // 1. Two nodes, one big file, against raw TCP.
    const bigMib = Number(args['big-mib'])
    const big = await seed(root, 'big', bigMib, 0x9e3779b9)
    running.push(big.seeder)
    console.log(`import ${bigMib} MiB (sha256 + unixfs + FsBlockstore + pin): ${big.importSeconds.toFixed(2)} s (${mibPerSecond(bigMib * MIB, big.importSeconds)} MiB/s)`)
    const tcpSeconds = await tcpCopySeconds(big.path, join(root, 'tcp-copy.bin'))
    const fetcher = await startNode(join(root, 'big-fetcher'))
    running.push(fetcher)
    await fetcher.host.libp2p.dial(multiaddr(dialAddresses(big.seeder.host)[0]!))
    const started = performance.now()
    await fetcher.store.fetch(big.descriptor)
    const ipfsSeconds = (performance.now() - started) / 1000
    console.log(`raw TCP copy ${bigMib} MiB: ${tcpSeconds.toFixed(2)} s (${mibPerSecond(bigMib * MIB, tcpSeconds)} MiB/s)`)
    console.log(`bitswap fetch ${bigMib} MiB (to blockstore + verified file): ${ipfsSeconds.toFixed(2)} s (${mibPerSecond(bigMib * MIB, ipfsSeconds)} MiB/s)`)
    console.log(`ipfs / tcp throughput ratio: ${(tcpSeconds / ipfsSeconds).toFixed(3)}`)
    await Promise.all(running.splice(0).map(async node => node.host.stop()))
    await rm(join(root, 'big-fetcher'), {recursive: true, force: true})
    await rm(join(root, 'big-seeder'), {recursive: true, force: true})

    // 2. Fan-out: N fresh nodes pull one file at once; each also sees the others.
    const fanoutMib = Number(args['fanout-mib'])
    for (const count of [1, 3, 7]) {
      const fan = await seed(root, `fan${count}`, fanoutMib, 0x85ebca6b + count)
      running.push(fan.seeder)
      const fetchers = await Promise.all(Array.from({length: count}, async (_, i) => startNode(join(root, `fan${count}-${i}`))))
      running.push(...fetchers)
      for (const [i, node] of fetchers.entries()) {
        // libp2p resets more than 5 inbound connections a second from one IP (connectionManager
        // inboundConnectionThreshold); on loopback every node is that one IP.
        await sleep(250)
        await node.host.libp2p.dial(multiaddr(dialAddresses(fan.seeder.host)[0]!))
        if (args.mesh) for (const other of fetchers.slice(0, i)) await node.host.libp2p.dial(multiaddr(dialAddresses(other.host)[0]!))
      }
      const started = performance.now()
      await Promise.all(fetchers.map(async node => node.store.fetch(fan.descriptor)))
      const seconds = (performance.now() - started) / 1000
      console.log(`${count} concurrent fetcher(s) of ${fanoutMib} MiB (${args.mesh ? 'mesh' : 'star'}): all done in ${seconds.toFixed(2)} s, ` +
        `aggregate ${mibPerSecond(count * fanoutMib * MIB, seconds)} MiB/s delivered`)
      await Promise.all(running.splice(0).map(async node => node.host.stop()))
    }
  } finally {
    await Promise.allSettled(running.map(async node => node.host.stop()))
    await rm(root, {recursive: true, force: true})
  }
}

// Seen with 8 nodes on loopback: a TCP dial that fails with ECONNRESET is thrown from a socket
// with no 'error' listener (inside the libp2p tcp transport) and would end the run; count it instead.
let uncaught = 0
process.on('uncaughtException', err => {
  uncaught++
  console.error(`uncaught (libp2p transport): ${String(err)}`)
})
await main()
if (uncaught > 0) console.log(`${uncaught} uncaught transport error(s) during the run`)
