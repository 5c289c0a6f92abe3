import {Wallet, hexlify} from 'ethers'
import {mkdir, rename, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {ActorSystem, type ActorDefinition, type ActorRef} from '../actors/actorSystem.js'
import {ASK_TIMEOUT_MS} from '../actors/askTimeouts.js'
import {chainActor} from '../actors/chain/chainActor.js'
import {ChainClient} from '../actors/chain/chainClient.js'
import type {ChainMessage} from '../actors/chain/messages.js'
import {inferenceActor} from '../actors/inference/inferenceActor.js'
import type {InferenceMessage, InferenceStatus} from '../actors/inference/messages.js'
import type {MiningMessage, MiningStatus} from '../actors/mining/messages.js'
import {miningActor} from '../actors/mining/miningActor.js'
import type {EnsureReply, ModelMessage, ModelStatus} from '../actors/model/messages.js'
import {modelActor} from '../actors/model/modelActor.js'
import type {OracleMessage} from '../actors/oracle/messages.js'
import {oracleActor} from '../actors/oracle/oracleActor.js'
import type {StatsMessage, StatsStatus} from '../actors/stats/messages.js'
import {statsActor} from '../actors/stats/statsActor.js'
import {startHttpApi, type HttpApi, type Route} from '../api/httpApi.js'
import {dashboardRoutes} from '../api/dashboardRoutes.js'
import {Gateway} from '../api/gateway.js'
import {openaiRoutes} from '../api/openaiRoutes.js'
import {oracleRoutes} from '../api/oracleRoutes.js'
import {AccessCache} from '../chain/accessCache.js'
import {readDeployment} from '../chain/deployment.js'
import {createProvider} from '../chain/provider.js'
import {Role} from '../chain/roles.js'
import {determinismClass} from '../inference/determinismClass.js'
import {LlamaEngine} from '../inference/llamaEngine.js'
import {PromptTools} from '../inference/promptTools.js'
import {ModelStore} from '../model/modelStore.js'
import {GossipNetwork} from '../protocols/gossipNetwork.js'
import {gossipsubOptions} from '../protocols/gossipScoring.js'
import {addressFromPeerId, peerIdToBytes} from '../protocols/peerAddress.js'
import {openResultStream, serveResults} from '../protocols/resultExchange.js'
import {GossipTopic} from '../protocols/topic.js'
import {createRootLogger, type Logger} from '../util/logger.js'
import {MetricsRegistry} from '../util/metrics.js'
import {sleep} from '../util/sleep.js'
import type {NodeConfig} from './config.js'
import {createHost, dialAddresses} from './host.js'
import {loadKeystore} from './keys.js'
import {SUPERVISION_TREE, type ActorName} from './supervisionTree.js'
import {peerIdFromString} from '@libp2p/peer-id'

/** How often a node the ACL does not (yet) admit retries its IAM registration. */
const ADMISSION_RETRY_MS = 5_000
const MAX_BODY_BYTES = 256 * 1024
/** Written into the data dir once the node is up: its API URL and dial addresses. */
export const NODE_INFO_FILE = 'node.json'
const PEER_SOCKET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT'])
const MAX_CONCURRENT_REQUESTS = 256

/**
 * The composition root of one node: config → key → host (libp2p + helia) → chain view →
 * gossip → actors → role → HTTP API; then waits for SIGINT/SIGTERM (exit 0) or a crash loop
 * (exit 1, with the reason) and shuts down in reverse order.
 */
export async function runDaemon (config: NodeConfig, keyPassword: string): Promise<number> {
  const root = createRootLogger({level: config.logLevel, bindings: {role: config.role}})
  const key = await loadKeystore(config.keystore, keyPassword)
  const log = root.child({address: key.address})
  const shutdown = new AbortController()
  let exitCode = 0
  let fatalReason: string | undefined
  const onSignal = (signal: string) => () => {
    log.info({signal}, 'shutting down')
    shutdown.abort(new Error(signal))
  }
  process.once('SIGINT', onSignal('SIGINT'))
  process.once('SIGTERM', onSignal('SIGTERM'))
  // Started by a devnet (through an IPC channel): a devnet that crashes or is SIGKILLed gets no
  // chance to stop its nodes, so each node stops itself when the channel closes. Unref'd, so the
  // channel alone never keeps the node running.
  if (process.channel != null) {
    process.channel.unref()
    process.once('disconnect', onSignal('parent exited'))
  }
  // A peer resetting a socket that a library left without an error listener must not take the
  // node down; anything else uncaught is a bug: stop cleanly, exit 1, say why.
  process.on('uncaughtException', (err: NodeJS.ErrnoException) => {
    if (err.code != null && PEER_SOCKET_ERRORS.has(err.code)) {
      log.warn({err}, 'peer socket error escaped its library; ignored')
      return
    }
    fatalReason = `uncaught exception: ${err.message}`
    exitCode = 1
    log.fatal({err}, 'uncaught exception')
    shutdown.abort(err)
  })

  const cleanups: Array<() => Promise<void> | void> = []
  try {
    await mkdir(config.dataDir, {recursive: true})
    const deployment = await readDeployment(config.chain.deploymentFile)
    const provider = createProvider(config.chain.rpcUrl, deployment.chainId, {pollingIntervalMs: config.chain.pollingIntervalMs})
    cleanups.push(() => { provider.destroy() })
    const metrics = new MetricsRegistry()

    const host = await createHost({
      privateKey: key.privateKey, listen: config.p2p.listen, bootstrap: config.p2p.bootstrap, dataDir: join(config.dataDir, 'ipfs'),
      // Without the topic scoring a rejected message would never lower its sender's score.
      gossip: gossipsubOptions(config.networkId),
      logger: log.child({component: 'host'})
    })
    cleanups.push(async () => { await host.stop() })

    const access = new AccessCache({provider, aclAddress: deployment.contracts.acl, iamAddress: deployment.contracts.iam, fromBlock: deployment.deployBlock, pollIntervalMs: config.chain.pollingIntervalMs, logger: log.child({component: 'access'})})
    cleanups.push(() => { access.stop() })
    await access.ready

    const gossip = new GossipNetwork({libp2p: host.libp2p, networkId: config.networkId, access, logger: log.child({component: 'gossip'}), metrics})
    gossip.start()
    cleanups.push(() => { gossip.stop() })

    const system = new ActorSystem(log, (error) => {
      fatalReason = error.message
      exitCode = 1
      log.fatal({err: error}, 'supervision gave up: stopping the node')
      shutdown.abort(error)
    })
    const spawned: ActorName[] = []
    cleanups.push(async () => { await system.stop([...spawned].reverse()) })
    const spawn = <S, M>(name: ActorName, def: ActorDefinition<S, M>): ActorRef<M> => {
      spawned.push(name)
      return system.spawn(def, SUPERVISION_TREE[name])
    }

    const chain: ActorRef<ChainMessage> = spawn('chain', chainActor({
      system, deployment, journalPath: join(config.dataDir, 'tx-journal.jsonl'),
      connect: () => {
        const p = createProvider(config.chain.rpcUrl, deployment.chainId, {pollingIntervalMs: config.chain.pollingIntervalMs})
        return {provider: p, wallet: new Wallet(hexlify(key.privateKey), p)}
      }
    }))
    const model: ActorRef<ModelMessage> = spawn('model', modelActor({
      system, chain,
      openStore: async () => new ModelStore({host, modelDir: join(config.dataDir, 'models'), logger: log.child({component: 'modelStore'})})
    }))

    const admitted = ensureRegistered({system, chain, access, address: key.address, peerIdBytes: peerIdToBytes(host.libp2p.peerId), role: config.role, log, signal: shutdown.signal})
    const modelReady = system.ask<ModelMessage, EnsureReply>(model, replyTo => ({type: 'Ensure', modelId: String(config.model.id), localFile: config.model.file, replyTo}), ASK_TIMEOUT_MS.modelEnsure)

    const statusSources: {inference?: ActorRef<InferenceMessage>, mining?: ActorRef<MiningMessage>} = {}
    const ask = async <M, R>(ref: ActorRef<M> | undefined, make: (r: ActorRef<R>) => M): Promise<R | undefined> =>
      ref == null ? undefined : await system.ask<M, R>(ref, make, ASK_TIMEOUT_MS.status).catch(() => undefined)

    const stats: ActorRef<StatsMessage> = spawn('stats', statsActor({
      system, chain,
      identity: {role: config.role, address: key.address, peerId: host.libp2p.peerId.toString(), addrs: dialAddresses(host).slice(0, 8), determinismClass: determinismClass()},
      sample: async () => {
        const mining = await ask<MiningMessage, MiningStatus>(statusSources.mining, replyTo => ({type: 'GetStatus', replyTo}))
        const inference = await ask<InferenceMessage, InferenceStatus>(statusSources.inference, replyTo => ({type: 'GetStatus', replyTo}))
        return {modelsReady: mining?.modelsReady ?? [], freeSlots: mining?.freeSlots ?? 0, tokensPerSecond: inference?.tokensPerSecond ?? 0}
      },
      publishHeartbeat: async (hb) => { await gossip.publish(GossipTopic.heartbeat, hb) },
      heartbeatIntervalMs: config.stats.heartbeatIntervalMs,
      chainPingIntervalMs: config.stats.chainPingIntervalMs
    }))

    let oracle: ActorRef<OracleMessage> | undefined
    if (config.role === 'miner') {
      const mining: ActorRef<MiningMessage> = spawn('mining', miningActor({
        system, address: key.address, chain, slots: config.inference.sequences, pollingIntervalMs: config.chain.pollingIntervalMs,
        publish: async (topic, message) => { await gossip.publish(topic, message as never) },
        openResultStream: async (oracleAddress, taskId) => {
          const peer = access.peerIdOf(oracleAddress)
          if (peer == null) throw new Error(`oracle ${oracleAddress} has no registered peer id`)
          return await openResultStream(host.libp2p, config.networkId, peerIdFromString(peer), taskId)
        }
      }))
      statusSources.mining = mining
      gossip.on(GossipTopic.task, (m) => { system.tell(mining, {type: 'TaskReceived', task: m.payload}) })
      // The model comes first (IPFS + sha256), then the engine, then admission; only then mine and ping.
      void modelReady.then(async (reply) => {
        if (reply.type !== 'Ready') throw new Error(`model ${reply.modelId} unavailable: ${reply.code}: ${reply.error}`)
        const inference: ActorRef<InferenceMessage> = spawn('inference', inferenceActor({
          system, modelPath: reply.path,
          openEngine: async (modelPath) => await LlamaEngine.load({modelPath, threads: config.inference.threads, sequences: config.inference.sequences, contextSize: config.inference.contextSize, logger: log.child({component: 'llama'})})
        }))
        statusSources.inference = inference
        await system.ask<InferenceMessage, InferenceStatus>(inference, replyTo => ({type: 'GetStatus', replyTo}), ASK_TIMEOUT_MS.modelEnsure)
        await admitted
        system.tell(mining, {type: 'ModelReady', modelId: reply.modelId, inference})
        system.tell(stats, {type: 'ModelReady', modelId: reply.modelId})
      }).catch((err: Error) => {
        if (shutdown.signal.aborted) return
        fatalReason = err.message
        exitCode = 1
        log.fatal({err}, 'cannot serve the model')
        shutdown.abort(err)
      })
    } else {
      oracle = spawn('oracle', oracleActor({
        system, address: key.address, chain,
        publishTask: async (task) => { await gossip.publish(GossipTopic.task, task) },
        isAdmittedMiner: (address) => access.roleAllowed(address, 'miner'),
        escrowWei: BigInt(config.chain.taskEscrowWei),
        resultTimeoutMs: config.oracle.resultTimeoutMs,
        precommitWindowS: config.oracle.precommitWindowS,
        commitWindowS: config.oracle.commitWindowS,
        heartbeatIntervalMs: config.stats.heartbeatIntervalMs,
        pollingIntervalMs: config.chain.pollingIntervalMs,
        deployBlock: deployment.deployBlock
      }))
      const oracleRef = oracle
      gossip.on(GossipTopic.heartbeat, (m) => { system.tell(oracleRef, {type: 'HeartbeatSeen', heartbeat: m.payload}) })
      gossip.on(GossipTopic.precommit, (m) => { system.tell(oracleRef, {type: 'PrecommitSeen', precommit: m.payload}) })
      gossip.on(GossipTopic.commit, (m) => { system.tell(oracleRef, {type: 'CommitSeen', commit: m.payload}) })
      const stopResults = await serveResults({
        libp2p: host.libp2p, networkId: config.networkId, access, addressOf: addressFromPeerId, logger: log.child({component: 'results'}),
        onOpen: (taskId, miner) => {
          const controller = new AbortController()
          system.tell(oracleRef, {type: 'StreamOpened', taskId, miner, controller})
          return {cancelled: controller.signal, token: (text) => { system.tell(oracleRef, {type: 'TokenReceived', taskId, miner, text}) }}
        },
        onResult: (result, sender) => { system.tell(oracleRef, {type: 'ResultReceived', result, sender}) }
      })
      cleanups.push(stopResults)
      void modelReady.then(reply => {
        if (reply.type !== 'Ready') log.error({reply}, 'oracle could not seed the model; miners must find it elsewhere')
      })
    }

    let gateway: Gateway | undefined
    if (oracle != null) {
      const model = modelReady.then(reply => reply.type === 'Ready' ? {...reply.descriptor, path: reply.path} : undefined, () => undefined)
      // Vocabulary only: token counts and chat templates for the API, no weights.
      const promptTools = model.then(async m => m == null ? undefined : await PromptTools.load({modelPath: m.path, logger: log.child({component: 'llama'})}))
        .catch((err: Error) => { log.warn({err}, 'no tokenizer: usage counts and context checks are off'); return undefined })
      cleanups.push(async () => { await (await promptTools)?.dispose() })
      gateway = new Gateway({
        system, oracle, chain, modelId: String(config.model.id), model, promptTools, contextSize: config.inference.contextSize,
        defaults: config.oracle, resultTimeoutMs: config.oracle.precommitWindowS * 1000,
        network: {networkId: config.networkId, chainId: deployment.chainId, rpcUrl: config.chain.rpcUrl, contracts: deployment.contracts, deployBlock: deployment.deployBlock}
      })
    }
    const routes: Route[] = [
      {method: 'GET', path: '/metrics', open: true, handler: () => ({text: metrics.render(), contentType: 'text/plain; version=0.0.4'})},
      {
        method: 'GET', path: '/api/v1/status', handler: async () => ({
          json: {
            role: config.role, address: key.address, peerId: host.libp2p.peerId.toString(), addrs: dialAddresses(host),
            networkId: config.networkId, chainId: deployment.chainId, peers: host.libp2p.getPeers().length,
            admitted: access.roleAllowed(key.address, config.role),
            model: await ask<ModelMessage, ModelStatus>(model, replyTo => ({type: 'GetStatus', replyTo})),
            inference: await ask<InferenceMessage, InferenceStatus>(statusSources.inference, replyTo => ({type: 'GetStatus', replyTo})),
            mining: await ask<MiningMessage, MiningStatus>(statusSources.mining, replyTo => ({type: 'GetStatus', replyTo})),
            stats: await ask<StatsMessage, StatsStatus>(stats, replyTo => ({type: 'GetStatus', replyTo}))
          }
        })
      },
      ...(gateway == null ? [] : [...oracleRoutes(gateway), ...openaiRoutes(gateway), ...dashboardRoutes()])
    ]
    const api: HttpApi = await startHttpApi({host: config.api.host, port: config.api.port, routes, tokens: config.api.tokens, maxBodyBytes: MAX_BODY_BYTES, maxConcurrentRequests: MAX_CONCURRENT_REQUESTS, logger: log.child({component: 'api'})})
    cleanups.push(async () => { await api.close() })
    // Where supervisors (the devnet, systemd scripts, operators) find this node once it is up.
    // Written aside and renamed: a reader never sees half a file.
    const infoFile = join(config.dataDir, NODE_INFO_FILE)
    await writeFile(`${infoFile}.tmp`, JSON.stringify({pid: process.pid, role: config.role, address: key.address, peerId: host.libp2p.peerId.toString(), addrs: dialAddresses(host), api: api.url}, null, 2))
    await rename(`${infoFile}.tmp`, infoFile)
    log.info({api: api.url, peerId: host.libp2p.peerId.toString(), addrs: dialAddresses(host)}, 'node started')

    await new Promise<void>(resolve => shutdown.signal.addEventListener('abort', () => resolve(), {once: true}))
  } catch (err) {
    exitCode = 1
    fatalReason ??= (err as Error).message
    log.fatal({err}, 'node failed')
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup()
      } catch (err) {
        log.warn({err}, 'shutdown step failed')
      }
    }
  }
  if (fatalReason != null) process.stderr.write(`cortensord: stopped: ${fatalReason}\n`)
  return exitCode
}

/**
 * Registers this node in IAM unless the chain already has it. A node the ACL does not admit
 * keeps running and retries, so an operator can admit it without restarting it; until then the
 * other nodes reject its gossip and the oracle never gives it a task.
 */
async function ensureRegistered (init: {system: ActorSystem, chain: ActorRef<ChainMessage>, access: AccessCache, address: string, peerIdBytes: Uint8Array, role: 'oracle' | 'miner', log: Logger, signal: AbortSignal}): Promise<void> {
  const {log} = init
  while (!init.signal.aborted) {
    const record = init.access.nodeOf(init.address)
    if (record?.active === true) return
    const reply = await new ChainClient(init.system, init.chain).send({
      label: 'iam.register', contract: 'iam', method: 'register',
      args: [init.peerIdBytes, init.role === 'oracle' ? Role.Oracle : Role.Miner, JSON.stringify({client: 'cortensord', role: init.role})]
    })
    if (reply.type === 'Mined') {
      log.info({tx: reply.tx.hash, block: reply.tx.blockNumber}, 'registered in IAM')
      return
    }
    if (reply.type === 'Reverted' && reply.errorName === 'AlreadyRegistered') return
    log.error({reply}, `not admitted as ${init.role} yet; retrying in ${ADMISSION_RETRY_MS / 1000} s`)
    await sleep(ADMISSION_RETRY_MS, init.signal).catch(() => {})
  }
}
