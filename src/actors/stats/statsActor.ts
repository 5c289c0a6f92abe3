import type {Heartbeat} from '../../protocols/messages.js'
import type {ModelId} from '../../protocols/modelId.js'
import {assertNever} from '../../util/assertNever.js'
import type {ActorDefinition, ActorRef, ActorSystem} from '../actorSystem.js'
import {ChainClient} from '../chain/chainClient.js'
import type {ChainMessage, SendReply} from '../chain/messages.js'
import type {StatsMessage, StatsStatus} from './messages.js'

/** The live part of a heartbeat, gathered from the node's other actors at each tick. */
export type HeartbeatSample = Pick<Heartbeat, 'models' | 'freeSlots' | 'tokensPerSecond'>

export interface StatsActorInit {
  system: ActorSystem
  chain: ActorRef<ChainMessage>
  /** The fixed part of every heartbeat: role, address, peer id, addrs. */
  identity: Pick<Heartbeat, 'role' | 'address' | 'peerId' | 'addrs'>
  sample: () => Promise<HeartbeatSample>
  publishHeartbeat: (heartbeat: Heartbeat) => Promise<void>
  heartbeatIntervalMs: number
  chainPingIntervalMs: number
}

type Internal =
  | {type: '$HeartbeatTick'}
  | {type: '$PingTick'}
  | {type: '$Pinged', reply: SendReply}

interface StatsState {
  status: StatsStatus
  seq: number
  timers: Set<NodeJS.Timeout>
  pingTimer?: NodeJS.Timeout
}

/**
 * Tells the network this node is alive: a gossip heartbeat every few seconds (what the oracle
 * selects miners from) and a NodeStats `ping` on chain once the model is ready, then at a slow
 * rate (it costs gas; the chain only needs to know the node is still there).
 */
export function statsActor (init: StatsActorInit): ActorDefinition<StatsState, StatsMessage | Internal> {
  const {system} = init
  const chain = new ChainClient(system, init.chain)
  // Outside the state: the models served outlive a restart of this actor.
  const served: ModelId[] = []
  return {
    name: 'stats',
    init: async (ctx) => {
      const state: StatsState = {status: {heartbeatsSent: 0, chainPings: 0}, seq: Date.now(), timers: new Set()}
      const interval = setInterval(() => { system.tell(ctx.self as ActorRef<Internal>, {type: '$HeartbeatTick'}) }, init.heartbeatIntervalMs)
      state.timers.add(interval)
      system.tell(ctx.self as ActorRef<Internal>, {type: '$HeartbeatTick'})
      // Restarted after a crash while serving: the chain pings go on (a node that stops pinging stops being ready).
      if (served.length > 0) {
        state.pingTimer = setInterval(() => { system.tell(ctx.self as ActorRef<Internal>, {type: '$PingTick'}) }, init.chainPingIntervalMs)
        state.timers.add(state.pingTimer)
      }
      return state
    },
    receive: async (state, msg, ctx) => {
      const self = ctx.self as ActorRef<Internal>
      switch (msg.type) {
        case '$HeartbeatTick': {
          const sample = await init.sample()
          state.seq = Math.max(state.seq + 1, Date.now())
          init.publishHeartbeat({...init.identity, ...sample, seq: state.seq, timestamp: Date.now()}).then(
            () => { state.status.heartbeatsSent++ },
            (err: Error) => { ctx.log.debug({err: err.message}, 'heartbeat not published') })
          return state
        }
        case 'ModelReady':
          if (!served.includes(msg.modelId)) served.push(msg.modelId)
          if (state.pingTimer != null) clearInterval(state.pingTimer)
          state.pingTimer = setInterval(() => { system.tell(self, {type: '$PingTick'}) }, init.chainPingIntervalMs)
          state.timers.add(state.pingTimer)
          system.tell(self, {type: '$PingTick'})
          return state
        case '$PingTick':
          void chain.send({label: 'ping', call: {contract: 'nodeStats', functionName: 'ping', args: [served.map(id => BigInt(id)), true]}, lane: 'settlement'})
            .then(reply => { system.tell(self, {type: '$Pinged', reply}) })
          return state
        case '$Pinged':
          if (msg.reply.type === 'Mined') {
            state.status.chainPings++
            state.status.lastChainPing = {at: Date.now(), tx: msg.reply.tx.hash, blockNumber: msg.reply.tx.blockNumber}
            state.status.lastPingError = undefined
            ctx.log.info({tx: msg.reply.tx.hash, block: msg.reply.tx.blockNumber}, 'NodeStats ping mined')
            // Ready on chain now: oracles hear it at once, not at the next tick (a starting network waits on this).
            system.tell(self, {type: '$HeartbeatTick'})
          } else {
            state.status.lastPingError = msg.reply.error
            ctx.log.warn({reply: msg.reply}, 'NodeStats ping failed')
          }
          return state
        case 'GetStatus':
          system.tell(msg.replyTo, structuredClone(state.status))
          return state
        default:
          return assertNever(msg, 'stats message')
      }
    },
    dispose: (state) => {
      for (const timer of state.timers) clearInterval(timer)
    }
  }
}
