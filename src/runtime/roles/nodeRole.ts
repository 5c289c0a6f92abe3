import type {ActorDefinition, ActorRef, ActorSystem} from '../../actors/actorSystem.js'
import type {ChainMessage} from '../../actors/chain/messages.js'
import type {EarningsMessage} from '../../actors/earnings/messages.js'
import type {EnsureReply, ModelMessage} from '../../actors/model/messages.js'
import type {HeartbeatSample} from '../../actors/stats/statsActor.js'
import type {Route} from '../../api/httpApi.js'
import type {AccessCache} from '../../chain/accessCache.js'
import type {Deployment} from '../../chain/deployment.js'
import type {InferenceEngine} from '../../inference/inferenceEngine.js'
import type {LlamaEngineOptions} from '../../inference/llamaEngine.js'
import type {TaskJournal} from '../../journal/taskJournal.js'
import type {GossipNetwork} from '../../protocols/gossipNetwork.js'
import type {ValidatedGossip} from '../../protocols/gossipValidation.js'
import type {OracleHearing} from '../../protocols/messages.js'
import type {ModelId} from '../../protocols/modelId.js'
import type {ResultHandler, ResultService} from '../../protocols/resultService.js'
import type {GossipTopic} from '../../protocols/topic.js'
import type {VerifyHandler, VerifyService} from '../../protocols/verifyService.js'
import type {Logger} from '../../util/logger.js'
import type {NodeConfig} from '../config.js'
import type {Host} from '../host.js'
import type {NodeKey} from '../keys.js'
import type {ActorName} from '../supervisionTree.js'
import type {ModelServing} from './watchServed.js'

/** What the node hands a role: the shared parts every role runs on (libp2p-style components). */
export interface NodeComponents {
  config: NodeConfig
  key: NodeKey
  log: Logger
  /** The node's root signal: aborted on shutdown. */
  signal: AbortSignal
  deployment: Deployment
  host: Host
  access: AccessCache
  gossip: GossipNetwork
  results: ResultService
  /** The verify protocol: a validator serves it, an oracle in `validators` mode asks through it. */
  verify: VerifyService
  system: ActorSystem
  chain: ActorRef<ChainMessage>
  /** The node's durable task memory (`<dataDir>/journal.sqlite`); closed after the actors stop. */
  journal: TaskJournal
  model: ActorRef<ModelMessage>
  /** What the node learns about its earning: a miner tells it the tasks it sees, miners and validators the oracles' heartbeats. */
  earnings: ActorRef<EarningsMessage>
  /**
   * The configured models, in config order, each once verified on disk (seeded from its
   * `file`, else fetched over IPFS); made ready one after another, the first first.
   */
  modelFiles: Array<Promise<EnsureReply>>
  /** Resolves once this node is registered in IAM (it retries until the ACL admits it). */
  admitted: Promise<void>
  /** Loads an inference engine (LlamaEngine.load; a test's stand-in miner replaces it). */
  openEngine: (options: LlamaEngineOptions) => Promise<InferenceEngine>
  /** Spawns one of the role's children of the supervision tree. */
  spawn: <S, M>(name: ActorName, definition: ActorDefinition<S, M>) => ActorRef<M>
  /** Stops the node with exit code 1, saying why. */
  fail: (reason: string, err: Error) => void
  /** Runs at shutdown, in reverse order of registration, after the role's actors stop. */
  onStop: (cleanup: () => Promise<void> | void) => void
}

/** What a role does with each gossip topic it takes; topics it leaves out it only relays. */
export type GossipHandlers = {[K in GossipTopic]?: (message: ValidatedGossip<K>) => void}

/** A running role: its handler tables and what it adds to the node's heartbeat, status and API. */
export interface RoleRuntime {
  gossip: GossipHandlers
  /** Stream protocols the role serves (an oracle takes miners' task streams, a validator oracles' checks). */
  streams: {result?: ResultHandler, verify?: VerifyHandler}
  /** The live part of each heartbeat. */
  sample: () => Promise<HeartbeatSample>
  /** The role's part of `GET /api/v1/status`. */
  status: () => Promise<Record<string, unknown>>
  routes: Route[]
  /** One promise per listed model, resolved once the node takes its work (NodeStats is then pinged ready for it). */
  served?: Array<Promise<ModelId>>
  /** Each listed model: served yet, or why not (roles that serve models). */
  serving?: ReadonlyMap<ModelId, ModelServing>
  /** An oracle: what its heartbeat says it hears (the nodes, its negative verdicts). */
  hearing?: () => Promise<OracleHearing>
}

/** A role: given the node's components, starts its actors and returns its tables. */
export type StartRole = (components: NodeComponents) => Promise<RoleRuntime>
