import {Wallet} from 'ethers'
import {mkdir, rename, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {ActorSystem, type ActorDefinition, type ActorRef} from '../actors/actorSystem.js'
import {ASK_TIMEOUT_MS} from '../actors/askTimeouts.js'
import {chainActor} from '../actors/chain/chainActor.js'
import type {EnsureReply, ModelMessage, ModelStatus} from '../actors/model/messages.js'
import {modelActor} from '../actors/model/modelActor.js'
import {earningsActor} from '../actors/earnings/earningsActor.js'
import {ledgerKey} from '../actors/earnings/earningsLedger.js'
import type {StatsStatus} from '../actors/stats/messages.js'
import {statsActor} from '../actors/stats/statsActor.js'
import {startHttpApi, type Route} from '../api/httpApi.js'
import {AccessCache} from '../chain/accessCache.js'
import {readDeployment} from '../chain/deployment.js'
import {NativeSigningKey} from '../chain/nativeSigningKey.js'
import {createProvider, RpcEndpoints} from '../chain/provider.js'
import type {InferenceEngine} from '../inference/inferenceEngine.js'
import type {LlamaEngineOptions} from '../inference/llamaEngine.js'
import {openLlamaEngine} from '../inference/openLlamaEngine.js'
import {TaskJournal} from '../journal/taskJournal.js'
import {HeliaModelStore} from '../model/heliaModelStore.js'
import {gossipSigner} from '../protocols/gossipEnvelope.js'
import {GossipNetwork} from '../protocols/gossipNetwork.js'
import {gossipsubOptions} from '../protocols/gossipScoring.js'
import type {Role} from '../protocols/messages.js'
import {addressFromPeerId, peerIdToBytes} from '../protocols/peerAddress.js'
import {peerIdFromString} from '@libp2p/peer-id'
import {ResultService} from '../protocols/resultService.js'
import {VerifyService} from '../protocols/verifyService.js'
import {GOSSIP_TOPICS, GossipTopic} from '../protocols/topic.js'
import {abortable} from '../util/abortable.js'
import type {Logger} from '../util/logger.js'
import {nodeMetrics} from '../util/metrics.js'
import type {NodeConfig} from './config.js'
import {earningStatus, walletReader} from './earningStatus.js'
import {createHost, dialAddresses} from './host.js'
import type {NodeKey} from './keys.js'
import {ensureRegistered} from './registration.js'
import {askStatus} from './roles/askStatus.js'
import {minerRole} from './roles/minerRole.js'
import type {NodeComponents, StartRole, RoleRuntime} from './roles/nodeRole.js'
import {oracleRole} from './roles/oracleRole.js'
import {validatorRole} from './roles/validatorRole.js'
import {ORACLE_WATCH_CHECKPOINT} from '../actors/oracle/oracleActor.js'
import {restartPolicy, SUPERVISION_TREE, type ActorName} from './supervisionTree.js'

/** Written into the data dir once the node is up: its API URL and dial addresses. */
export const NODE_INFO_FILE = 'node.json'
/** The node's task journal in its data dir. */
export const JOURNAL_FILE = 'journal.sqlite'
const MAX_BODY_BYTES = 256 * 1024
/**
 * The wallet, fee, ACL grant and owed payouts (four RPC calls) are read every minute while nobody
 * looks, and again when a status read finds them older than 5 s: an idle node stays idle.
 */
const WALLET_PROBE_IDLE_MS = 60_000
const WALLET_PROBE_FRESH_MS = 5_000

const ROLES: {[K in Role]: StartRole} = {oracle: oracleRole, miner: minerRole, validator: validatorRole}

export interface NodeInit {
  config: NodeConfig
  key: NodeKey
  log: Logger
  /** The daemon's root signal: the node stops everything it started once it aborts. */
  signal: AbortSignal
  /** Stops the node with exit code 1, saying why (supervision gave up, a role cannot serve). */
  fail: (reason: string, err: Error) => void
}

/** Parts a caller may replace: only a test's stand-in miner does (a rogue engine, a simulated GPU). */
export interface NodeOverrides {
  openEngine?: (options: LlamaEngineOptions) => Promise<InferenceEngine>
}

/** A started node: `stop` undoes every start step, in reverse. */
export interface RunningNode {
  stop: () => Promise<void>
}

/**
 * Composes one node: key → host (libp2p + helia) → chain view → gossip → the node's actors
 * (chain, model) → the role's actors and handler tables → stats → HTTP API → node.json. Each
 * step registers how to undo it; a step that fails undoes the ones before it.
 */
export async function startNode (init: NodeInit & NodeOverrides): Promise<RunningNode> {
  const {config, key, log, signal} = init
  const cleanups: Array<() => Promise<void> | void> = []
  const stop = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup()
      } catch (err) {
        log.warn({err}, 'shutdown step failed')
      }
    }
  }
  try {
    await mkdir(config.dataDir, {recursive: true})
    const deployment = await readDeployment(config.chain.deploymentFile)
    const rpc = new RpcEndpoints(config.chain.rpcUrls, log.child({component: 'rpc'}))
    const connect = (): ReturnType<typeof createProvider> => createProvider(rpc, deployment.chainId, {pollingIntervalMs: config.chain.pollingIntervalMs})
    const provider = connect()
    cleanups.push(() => { provider.destroy() })
    const metrics = nodeMetrics
    metrics.collectProcessMetrics()

    const host = await createHost({
      privateKey: key.privateKey, listen: config.p2p.listen, announce: config.p2p.announce, bootstrap: config.p2p.bootstrap, dataDir: join(config.dataDir, 'ipfs'),
      // Without the topic scoring a rejected message would never lower its sender's score.
      gossip: gossipsubOptions(config.networkId),
      logger: log.child({component: 'host'})
    })
    cleanups.push(async () => { await host.stop() })

    const access = new AccessCache({provider, aclAddress: deployment.contracts.acl, iamAddress: deployment.contracts.iam, fromBlock: deployment.deployBlock, pollIntervalMs: config.chain.pollingIntervalMs, logger: log.child({component: 'access'})})
    cleanups.push(() => { access.stop() })
    await abortable(access.ready, signal)

    const gossip = new GossipNetwork({libp2p: host.libp2p, networkId: config.networkId, signer: gossipSigner(key.privateKey), access, logger: log.child({component: 'gossip'}), metrics})
    gossip.start()
    cleanups.push(() => { gossip.stop() })

    const journal = TaskJournal.open(join(config.dataDir, JOURNAL_FILE))
    cleanups.push(() => { journal.close() })
    // An oracle resumes its chain watch where it stopped (the sweeper must see every task
    // created meanwhile); a miner only follows the tasks it takes from now on.
    const checkpoint = journal.meta(ORACLE_WATCH_CHECKPOINT)
    const watchFromBlock = config.role === 'oracle'
      ? (checkpoint == null ? deployment.deployBlock : Number(checkpoint) + 1)
      : await abortable(provider.getBlockNumber(), signal)

    const system = new ActorSystem(log, (error) => { init.fail(error.message, error) })
    const spawned = new Set<ActorName>()
    cleanups.push(async () => { await system.stop(SUPERVISION_TREE.map(c => c.name).filter(name => spawned.has(name)).reverse()) })
    const spawn = <S, M>(name: ActorName, definition: ActorDefinition<S, M>): ActorRef<M> => {
      spawned.add(name)
      return system.spawn(definition, restartPolicy(name))
    }

    const chain = spawn('chain', chainActor({
      system, deployment, journalPath: join(config.dataDir, 'tx-journal.jsonl'), watchFromBlock, pollingIntervalMs: config.chain.pollingIntervalMs,
      connect: () => {
        const p = connect()
        return {provider: p, wallet: new Wallet(new NativeSigningKey(key.privateKey), p)}
      }
    }))
    const model = spawn('model', modelActor({
      system, chain,
      openStore: async () => new HeliaModelStore({
        host, modelDir: join(config.dataDir, 'models'), logger: log.child({component: 'modelStore'}),
        // Model blocks go to, and come from, admitted nodes only (any role: miners seed too).
        isAllowedPeer: (peerId) => {
          const address = addressFromPeerId(peerIdFromString(peerId))
          const node = address == null ? undefined : access.nodeOf(address)
          return node?.role != null && access.roleAllowed(node.address, node.role)
        }
      })
    }))
    const earnings = spawn('earnings', earningsActor({
      system, chain, address: key.address, role: config.role, ...(config.role === 'miner' ? {ledger: {store: journal, key: ledgerKey(deployment.chainId, deployment.contracts.cognitive, key.address)}} : {}), fromBlock: watchFromBlock,
      probeIntervalMs: WALLET_PROBE_IDLE_MS, freshMs: WALLET_PROBE_FRESH_MS,
      readWallet: walletReader(provider, key.address)
    }))
    const components: NodeComponents = {
      config, key, log, signal, deployment, host, access, gossip, system, chain, journal, model, earnings, spawn,
      openEngine: init.openEngine ?? openLlamaEngine,
      results: new ResultService({libp2p: host.libp2p, access, logger: log.child({component: 'results'})}, {networkId: config.networkId}),
      verify: new VerifyService({libp2p: host.libp2p, access, logger: log.child({component: 'verify'}), privateKey: key.privateKey}, {networkId: config.networkId}),
      admitted: ensureRegistered({system, chain, access, address: key.address, peerIdBytes: peerIdToBytes(host.libp2p.peerId), role: config.role, log, signal}),
      modelFiles: ensureInOrder(config.models, entry => system.ask<ModelMessage, EnsureReply>(model, replyTo => ({type: 'Ensure', modelId: entry.id, localFile: entry.file, replyTo}), ASK_TIMEOUT_MS.modelEnsure)),
      fail: init.fail,
      onStop: (cleanup) => { cleanups.push(cleanup) }
    }

    const role = await ROLES[config.role](components)
    for (const topic of GOSSIP_TOPICS) handleGossip(gossip, role, topic)
    if (role.streams.result != null) components.results.serve(role.streams.result)
    await components.results.start()
    cleanups.push(async () => { await components.results.stop() })
    if (role.streams.verify != null) components.verify.serve(role.streams.verify)
    await components.verify.start()
    cleanups.push(async () => { await components.verify.stop() })

    const stats = spawn('stats', statsActor({
      system, chain,
      identity: {role: config.role, address: key.address, peerId: host.libp2p.peerId.toString(), addrs: dialAddresses(host).slice(0, 8)},
      sample: role.sample,
      // Oracles' heartbeats go to every node, with whom they hear; the others' to oracles only (see GossipTopic).
      publishHeartbeat: async (hb) => {
        if (config.role === 'oracle') await gossip.publish(GossipTopic.oracleHeartbeat, {...hb, ...await (role.hearing?.() ?? {heard: [], verdicts: []})})
        else await gossip.publish(GossipTopic.heartbeat, hb)
      },
      heartbeatIntervalMs: config.stats.heartbeatIntervalMs,
      chainPingIntervalMs: config.stats.chainPingIntervalMs
    }))
    for (const model of role.served ?? []) model.then(modelId => { system.tell(stats, {type: 'ModelReady', modelId}) }, () => {})

    const earning = earningStatus({
      system, model, earnings, access, role: config.role, runtime: role, address: key.address,
      heartbeatIntervalMs: config.stats.heartbeatIntervalMs, peers: () => host.libp2p.getPeers().length, metrics
    })

    const routes: Route[] = [
      {method: 'GET', path: '/metrics', open: true, handler: async () => ({text: await metrics.render(), contentType: metrics.contentType})},
      {
        method: 'GET', path: '/api/v1/status', handler: async () => {
          const models = await askStatus<ModelStatus[]>(system, model)
          return {
            json: {
              role: config.role, address: key.address, peerId: host.libp2p.peerId.toString(), addrs: dialAddresses(host),
              networkId: config.networkId, chainId: deployment.chainId, peers: host.libp2p.getPeers().length,
              admitted: access.roleAllowed(key.address, config.role),
              models,
              ...await role.status(),
              stats: await askStatus<StatsStatus>(system, stats),
              earning: await earning.report(models, {refresh: true})
            }
          }
        }
      },
      ...role.routes
    ]
    const api = await startHttpApi({host: config.api.host, port: config.api.port, announce: config.p2p.announce, routes, tokens: config.api.tokens, maxBodyBytes: MAX_BODY_BYTES, limits: config.api.limits, logger: log.child({component: 'api'})})
    cleanups.push(async () => { await api.close() })
    // Where supervisors (the devnet, systemd scripts, operators) find this node once it is up.
    // Written aside and renamed: a reader never sees half a file.
    const infoFile = join(config.dataDir, NODE_INFO_FILE)
    await writeFile(`${infoFile}.tmp`, JSON.stringify({pid: process.pid, role: config.role, address: key.address, peerId: host.libp2p.peerId.toString(), addrs: dialAddresses(host), api: api.url}, null, 2))
    await rename(`${infoFile}.tmp`, infoFile)
    log.info({api: api.url, peerId: host.libp2p.peerId.toString(), addrs: dialAddresses(host)}, 'node started')
    return {stop}
  } catch (err) {
    await stop()
    throw err
  }
}

/**
 * One model at a time, in config order: the first (preferred) model is ready soonest, and a
 * node fetching several does not split its bandwidth. A failed one does not hold up the next.
 */
function ensureInOrder<T, R> (items: readonly T[], ensure: (item: T) => Promise<R>): Array<Promise<R>> {
  let previous: Promise<unknown> = Promise.resolve()
  return items.map(item => {
    const done = previous.then(async () => await ensure(item))
    previous = done.catch(() => {})
    return done
  })
}

/** Hands the role each validated message of `topic` it has a handler for. */
function handleGossip<T extends GossipTopic> (gossip: GossipNetwork, role: RoleRuntime, topic: T): void {
  const handler = role.gossip[topic]
  if (handler != null) gossip.on(topic, handler)
}

