/**
 * IPFS model distribution figures (not pass/fail), all on loopback with real helia nodes and
 * FsBlockstores as a miner runs them, every node in this one process:
 *  1. 256 MiB from one node to another (block protocol, bitswap fallback), against a raw TCP
 *     copy of the same file to disk, measured before and after it.
 *  2. One 256 MiB file pulled by 1 and 7 fresh nodes at once from one seeder; fetchers dial
 *     each other too (as in a real network) unless --star. Per fetcher: when its last block
 *     landed, when it was verified and pinned, where its blocks came from, and the longest
 *     wait for a block (a stall shows there).
 * Also prints the process CPU seconds: every node runs in this one process, so on a small box the
 * figures are bounded by CPU (noise, hashing, copies), not by the protocol.
 * Run: npx tsx test/bench/ipfs.ts [--big-mib 256] [--fanout-mib 256] [--fanout-counts 1,7] [--chunk-kib 1024] [--concurrency 16] [--star]
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
  'fanout-mib': {type: 'string', default: '256'},
  'fanout-counts': {type: 'string', default: '1,7'},
  'chunk-kib': {type: 'string', default: '1024'},
  concurrency: {type: 'string', default: '16'},
  /** Fetchers dial only the seeder, not each other. */
  star: {type: 'boolean', default: false}
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

/** Where a fetch's blocks came from, in MiB: the seeder, other fetchers, bitswap. */
function describeSources (sources: Record<string, number> | undefined, seederId?: string): string {
  const parts: string[] = []
  let fromPeers = 0
  let peers = 0
  for (const [from, bytes] of Object.entries(sources ?? {})) {
    if (from === 'bitswap' || from === seederId) parts.push(`${from === 'bitswap' ? 'bitswap' : 'seeder'} ${(bytes / MIB).toFixed(0)}`)
    else {
      fromPeers += bytes
      peers++
    }
  }
  if (peers > 0) parts.push(`${seederId == null ? 'peer' : 'other fetchers'} ${(fromPeers / MIB).toFixed(0)} (${peers} peer${peers > 1 ? 's' : ''})`)
  return parts.length === 0 ? 'none' : `${parts.join(', ')} MiB`
}

/** User + system CPU seconds of this process (every node of the bench) since `since`. */
function cpuSeconds (since: NodeJS.CpuUsage): number {
  const {user, system} = process.cpuUsage(since)
  return (user + system) / 1e6
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
    const tcpBefore = await tcpCopySeconds(big.path, join(root, 'tcp-copy.bin'))
    const fetcher = await startNode(join(root, 'big-fetcher'))
    running.push(fetcher)
    await fetcher.host.libp2p.dial(multiaddr(dialAddresses(big.seeder.host)[0]!))
    const started = performance.now()
    const cpuBefore = process.cpuUsage()
    const fetched = await fetcher.store.fetch(big.descriptor)
    const ipfsSeconds = (performance.now() - started) / 1000
    const ipfsCpu = cpuSeconds(cpuBefore)
    const tcpAfter = await tcpCopySeconds(big.path, join(root, 'tcp-copy.bin'))
    const tcpSeconds = Math.min(tcpBefore, tcpAfter)
    console.log(`raw TCP copy ${bigMib} MiB: ${tcpBefore.toFixed(2)} s before, ${tcpAfter.toFixed(2)} s after (best ${mibPerSecond(bigMib * MIB, tcpSeconds)} MiB/s)`)
    console.log(`ipfs fetch ${bigMib} MiB (to blockstore + verified file): ${ipfsSeconds.toFixed(2)} s (${mibPerSecond(bigMib * MIB, ipfsSeconds)} MiB/s), ` +
      `process CPU ${ipfsCpu.toFixed(2)} s (${(ipfsCpu / ipfsSeconds).toFixed(2)} cores busy), sources ${describeSources(fetched.sources)}`)
    console.log(`ipfs / tcp throughput ratio (against the faster TCP copy): ${(tcpSeconds / ipfsSeconds).toFixed(3)}`)
    await Promise.all(running.splice(0).map(async node => node.host.stop()))
    await rm(join(root, 'big-fetcher'), {recursive: true, force: true, maxRetries: 3})
    await rm(join(root, 'big-seeder'), {recursive: true, force: true, maxRetries: 3})

    // 2. Fan-out: N fresh nodes pull one file at once; each also sees the others.
    const fanoutMib = Number(args['fanout-mib'])
    const mesh = !args.star
    for (const count of args['fanout-counts'].split(',').map(Number)) {
      const fan = await seed(root, `fan${count}`, fanoutMib, 0x85ebca6b + count)
      running.push(fan.seeder)
      const fetchers = await Promise.all(Array.from({length: count}, async (_, i) => startNode(join(root, `fan${count}-${i}`))))
      running.push(...fetchers)
      for (const [i, node] of fetchers.entries()) {
        // libp2p resets more than 5 inbound connections a second from one IP (connectionManager
        // inboundConnectionThreshold); on loopback every node is that one IP.
        await sleep(250)
        await node.host.libp2p.dial(multiaddr(dialAddresses(fan.seeder.host)[0]!))
        if (mesh) for (const other of fetchers.slice(0, i)) await node.host.libp2p.dial(multiaddr(dialAddresses(other.host)[0]!))
      }
      const seederId = fan.seeder.host.libp2p.peerId.toString()
      const started = performance.now()
      const cpuBefore = process.cpuUsage()
      const results = await Promise.all(fetchers.map(async node => {
        // From the fetch's start to its last block (the longest wait for a block shows a stall), then hashing the whole file and pinning.
        let lastEventAt = performance.now()
        let longestGap = 0
        const result = await node.store.fetch(fan.descriptor, {
          onProgress: () => {
            longestGap = Math.max(longestGap, performance.now() - lastEventAt)
            lastEventAt = performance.now()
          }
        }).then(file => ({file}), (err: unknown) => ({err: err as Error}))
        const done = performance.now()
        return {...result, seconds: (done - started) / 1000, transferSeconds: (lastEventAt - started) / 1000, longestGap: longestGap / 1000}
      }))
      const seconds = (performance.now() - started) / 1000
      const cpu = cpuSeconds(cpuBefore)
      console.log(`${count} concurrent fetcher(s) of ${fanoutMib} MiB (${mesh ? 'mesh' : 'star'}): all done in ${seconds.toFixed(2)} s, ` +
        `aggregate ${mibPerSecond(count * fanoutMib * MIB, seconds)} MiB/s delivered, process CPU ${cpu.toFixed(2)} s (${(cpu / seconds).toFixed(2)} cores busy)`)
      for (const [i, result] of results.entries()) {
        const outcome = 'file' in result ? `sources ${describeSources(result.file.sources, seederId)}` : `FAILED ${(result.err as {code?: string}).code ?? result.err.message}`
        console.log(`  fetcher ${i}: last block at ${result.transferSeconds.toFixed(2)} s, verified and pinned at ${result.seconds.toFixed(2)} s, ` +
          `longest wait for a block ${result.longestGap.toFixed(2)} s, ${outcome}`)
      }
      await Promise.all(running.splice(0).map(async node => node.host.stop()))
    }
  } finally {
    await Promise.allSettled(running.map(async node => node.host.stop()))
    await rm(root, {recursive: true, force: true, maxRetries: 3})
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
