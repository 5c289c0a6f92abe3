import {hexlify, randomBytes, toUtf8Bytes} from 'ethers'
import {commitmentFor, taskIdFor} from '../../chain/commitment.js'
import {TASK_MODE_CODE, TaskState} from '../../chain/enums.js'
import type {Address} from '../../protocols/address.js'
import type {ModelId} from '../../protocols/modelId.js'
import {outputHashOf, type Heartbeat, type Task} from '../../protocols/messages.js'
import {assertNever} from '../../util/assertNever.js'
import type {ActorDefinition, ActorRef, ActorSystem} from '../actorSystem.js'
import {ChainClient} from '../chain/chainClient.js'
import type {ChainMessage, EventsReply, ReadReply, SendReply} from '../chain/messages.js'
import type {CompleteReply, OracleMessage, TaskRecord} from './messages.js'
import {pruneTasks} from './pruneTasks.js'
import {eligibleMiners, selectMiners, type MinerView} from './selectMiners.js'
import {tallyResults} from './tallyResults.js'

export interface OracleActorInit {
  system: ActorSystem
  address: Address
  chain: ActorRef<ChainMessage>
  publishTask: (task: Task) => Promise<void>
  /** The chain's admission view (IAM active + ACL miner role). */
  isAdmittedMiner: (address: Address) => boolean
  escrowWei: bigint
  resultTimeoutMs: number
  precommitWindowS: number
  commitWindowS: number
  heartbeatIntervalMs: number
  pollingIntervalMs: number
  /** Block the contracts were deployed at: where trail queries start. */
  deployBlock: number
}

/** How often a task that will not finish is checked for its closing deadline. */
const SLOW_SETTLE_POLL_MS = 5_000
/** Finished task records kept for the API. */
const TASKS_KEPT = 10_000

/** A running oracle task: its record (the API's view) and what only the actor needs. */
interface Live {
  record: TaskRecord
  replyTo?: ActorRef<CompleteReply>
  onToken?: (text: string) => void
  /** The miner whose tokens the client sees: the first assignee to stream. */
  lead?: Address
  /** Open task streams by miner: aborting one hangs up on that miner. */
  streams: Map<Address, AbortController>
  /** The client went away: nothing is answered and every stream is closed. */
  cancelled: boolean
  /** Outputs by miner, kept off the record (the record carries hashes and the answer). */
  outputs: Map<Address, string>
  /** Miners that were replaced or failed on this task: never picked again for it. */
  excluded: Set<Address>
  precommitDeadline: number
  commitDeadline: number
  reassigning: boolean
}

type Internal =
  | {type: '$Broadcast', taskId: string, hash: string}
  | {type: '$Created', taskId: string, reply: SendReply}
  | {type: '$ClientGone', taskId: string}
  | {type: '$ResultTimeout', taskId: string, miner: Address}
  | {type: '$CompetingTimeout', taskId: string}
  | {type: '$Reassigned', taskId: string, from: Address, to: Address, reply: SendReply}
  | {type: '$SettleCheck', taskId: string}
  | {type: '$TaskState', taskId: string, reply: ReadReply}
  | {type: '$Ended', taskId: string, reply: SendReply}
  | {type: '$Trail', taskId: string, reply: EventsReply}

interface OracleState {
  miners: Map<Address, MinerView>
  tasks: Map<string, Live>
  recentAssignments: Map<Address, number>
}

/**
 * The coordinator: turns requests into on-chain tasks, gossips them at once, picks miners
 * from live heartbeats and the chain's admission view, collects the miners' direct results,
 * answers as soon as the k results are in and agree, reassigns miners that miss their
 * deadline, and settles on chain (end + payout) in the background.
 */
export function oracleActor (init: OracleActorInit): ActorDefinition<OracleState, OracleMessage | Internal> {
  const {system} = init
  const chain = new ChainClient(system, init.chain)
  const maxHeartbeatAgeMs = init.heartbeatIntervalMs * 3

  return {
    name: 'oracle',
    init: async () => ({miners: new Map(), tasks: new Map(), recentAssignments: new Map()}),
    receive: (state, msg, ctx) => {
      const log = ctx.log
      const self = ctx.self as ActorRef<Internal>
      const selection = (modelId: ModelId, k: number, exclude?: ReadonlySet<Address>) => ({
        miners: state.miners.values(), modelId, k, now: Date.now(), maxHeartbeatAgeMs,
        isAdmitted: init.isAdmittedMiner, exclude, recentAssignments: state.recentAssignments
      })
      const noteAssigned = (miners: Address[]): void => {
        for (const m of miners) state.recentAssignments.set(m, (state.recentAssignments.get(m) ?? 0) + 1)
      }
      const reply = (live: Live, message: CompleteReply): void => {
        if (live.replyTo == null) return
        system.tell(live.replyTo, message)
        live.replyTo = undefined
      }
      const later = (ms: number, message: Internal): void => {
        setTimeout(() => { system.tell(self, message) }, ms).unref()
      }
      const chainSend = (label: string, method: string, args: unknown[], onReply: (reply: SendReply) => Internal, value?: bigint, onBroadcast?: (hash: string) => void): void => {
        void chain.send({label, contract: 'cognitive', method, args, value, onBroadcast}).then(r => { system.tell(self, onReply(r)) })
      }

      switch (msg.type) {
        case 'HeartbeatSeen': {
          const hb: Heartbeat = msg.heartbeat
          if (hb.role !== 'miner') return state
          state.miners.set(hb.address, {
            address: hb.address, peerId: hb.peerId, modelsReady: hb.modelsReady,
            freeSlots: hb.freeSlots, tokensPerSecond: hb.tokensPerSecond, determinismClass: hb.determinismClass, seenAt: Date.now()
          })
          return state
        }

        case 'Complete': {
          const {request} = msg
          const k = request.redundancy
          let assignees: Address[] = []
          if (request.mode === 'parallel') {
            const picked = selectMiners(selection(request.modelId, k))
            if (picked == null) {
              system.tell(msg.replyTo, {type: 'Rejected', status: 503, code: 'NO_MINER_READY', error: `parallel mode needs ${k} ready miners for model ${request.modelId}; ${eligibleMiners(selection(request.modelId, k)).length} available`})
              return state
            }
            assignees = picked
          } else if (eligibleMiners(selection(request.modelId, k)).length < k) {
            system.tell(msg.replyTo, {type: 'Rejected', status: 503, code: 'NO_MINER_READY', error: `competing mode needs at least ${k} ready miners for model ${request.modelId}; ${eligibleMiners(selection(request.modelId, k)).length} available`})
            return state
          }
          noteAssigned(assignees)
          // The id is ours before the block: the task is gossiped as soon as the node accepts
          // the transaction, and miners start while it is being mined.
          const requestId = hexlify(randomBytes(32))
          const taskId = String(taskIdFor(init.address, requestId))
          const now = Date.now()
          const nowS = Math.floor(now / 1000)
          const {params} = request
          const record: TaskRecord = {
            taskId, phase: 'running', mode: request.mode, k, modelId: request.modelId, prompt: request.prompt, params,
            seed: request.seed, assignees, reassignments: [], precommits: [], results: [], reveals: [],
            timings: {requestedAt: now}, txs: [], trail: []
          }
          const live: Live = {
            record, replyTo: msg.replyTo, onToken: msg.onToken, streams: new Map(), cancelled: false, outputs: new Map(), excluded: new Set(), reassigning: false,
            precommitDeadline: (nowS + init.precommitWindowS) * 1000, commitDeadline: (nowS + init.commitWindowS) * 1000
          }
          state.tasks.set(taskId, live)
          pruneTasks(state.tasks, TASKS_KEPT)
          msg.signal?.addEventListener('abort', () => { system.tell(self, {type: '$ClientGone', taskId}) }, {once: true})
          chainSend(`createTask ${taskId}`, 'createTask', [
            requestId, BigInt(request.modelId), request.prompt, toUtf8Bytes(JSON.stringify(params)), BigInt(request.seed),
            TASK_MODE_CODE[request.mode], k, assignees, BigInt(nowS + init.precommitWindowS), BigInt(nowS + init.commitWindowS)
          ], reply => ({type: '$Created', taskId, reply}), init.escrowWei, hash => { system.tell(self, {type: '$Broadcast', taskId, hash}) })
          return state
        }

        case '$Broadcast': {
          const live = state.tasks.get(msg.taskId)
          if (live == null || live.record.phase !== 'running') return state
          live.record.timings.broadcastAt = Date.now()
          gossipTask(live)
          if (live.record.mode === 'parallel') {
            for (const miner of live.record.assignees) later(init.resultTimeoutMs, {type: '$ResultTimeout', taskId: msg.taskId, miner})
          } else {
            later(init.resultTimeoutMs, {type: '$CompetingTimeout', taskId: msg.taskId})
          }
          log.info({taskId: msg.taskId, mode: live.record.mode, k: live.record.k, assignees: live.record.assignees, tx: msg.hash}, 'task gossiped')
          return state
        }

        case '$Created': {
          const live = state.tasks.get(msg.taskId)
          if (live == null) return state
          const record = live.record
          if (msg.reply.type !== 'Mined') {
            const why = msg.reply.type === 'Reverted' ? `${msg.reply.errorName}: ${msg.reply.error}` : msg.reply.error
            log.warn({taskId: msg.taskId, reply: msg.reply}, 'createTask failed')
            // Nothing exists on chain to settle: the task ends here.
            record.error = `the chain refused the task: ${why}`
            reply(live, {type: 'Rejected', status: 503, code: 'TASK_NOT_CREATED', error: record.error})
            hangUp(live)
            record.phase = 'failed'
            return state
          }
          record.timings.createdAt = Date.now()
          record.txs.unshift({label: 'createTask', hash: msg.reply.tx.hash, blockNumber: msg.reply.tx.blockNumber})
          return state
        }

        case 'ResultReceived': {
          const {result} = msg
          const live = state.tasks.get(result.taskId)
          if (live == null) { log.debug({taskId: result.taskId}, 'result for an unknown task'); return state }
          const record = live.record
          const miner = msg.sender
          // The stream's peer is authenticated; a result naming another miner is forged.
          if (result.miner !== miner) { log.warn({taskId: record.taskId, sender: miner, claimed: result.miner}, 'result names another miner'); return state }
          if (record.mode === 'parallel' && !record.assignees.includes(miner)) { log.debug({taskId: record.taskId, miner}, 'result from a miner not assigned'); return state }
          if (live.outputs.has(miner)) return state
          if (outputHashOf(result.output) !== result.outputHash || commitmentFor(BigInt(record.taskId), result.miner, result.outputHash, result.salt) !== result.commitment) {
            log.warn({taskId: record.taskId, miner}, 'result does not match its own hash or commitment; ignored')
            return state
          }
          const precommit = record.precommits.find(p => p.miner === miner)
          if (precommit != null && precommit.commitment !== result.commitment) {
            log.warn({taskId: record.taskId, miner}, 'result contradicts the miner\'s gossiped precommit; ignored')
            return state
          }
          if (record.mode === 'competing' && live.outputs.size >= record.k) return state
          live.outputs.set(miner, result.output)
          record.results.push({miner, outputHash: result.outputHash, tokens: result.tokens, receivedAt: Date.now()})
          record.timings.firstResultAt ??= Date.now()
          if (record.mode === 'competing' && !record.assignees.includes(miner)) record.assignees.push(miner)
          maybeAnswer(live)
          return state
        }

        case 'StreamOpened': {
          const live = state.tasks.get(msg.taskId)
          const miner = msg.miner
          // Unknown, finished or cancelled tasks, and miners not (or no longer) on the task: hang up.
          if (live == null || live.cancelled || live.record.phase !== 'running' || (live.record.mode === 'parallel' && !live.record.assignees.includes(miner))) {
            msg.controller.abort(new Error('task not open for this miner'))
            return state
          }
          live.streams.set(miner, msg.controller)
          return state
        }

        case 'TokenReceived': {
          const live = state.tasks.get(msg.taskId)
          if (live == null || live.record.phase !== 'running') return state
          live.record.timings.firstTokenAt ??= Date.now()
          if (live.onToken == null) return state
          const miner = msg.miner
          live.lead ??= miner
          if (live.lead === miner) live.onToken(msg.text)
          return state
        }

        case '$ClientGone': {
          const live = state.tasks.get(msg.taskId)
          if (live != null && live.record.phase === 'running') cancel(live)
          return state
        }

        case 'PrecommitSeen': {
          const live = state.tasks.get(msg.precommit.taskId)
          if (live == null) return state
          const miner = msg.precommit.miner
          if (!live.record.precommits.some(p => p.miner === miner)) live.record.precommits.push({miner, commitment: msg.precommit.commitment, at: Date.now()})
          return state
        }

        case 'CommitSeen': {
          const {result} = msg.commit
          const live = state.tasks.get(result.taskId)
          if (live == null) return state
          const miner = result.miner
          if (!live.record.reveals.some(r => r.miner === miner)) live.record.reveals.push({miner, outputHash: result.outputHash, at: Date.now()})
          return state
        }

        case '$ResultTimeout': {
          const live = state.tasks.get(msg.taskId)
          if (live == null || live.record.phase !== 'running') return state
          if (live.outputs.has(msg.miner) || !live.record.assignees.includes(msg.miner)) return state
          if (live.reassigning) { later(init.pollingIntervalMs, msg); return state }
          if (Date.now() > live.precommitDeadline) { failTask(live, 504, 'MINERS_MISSED_DEADLINE', `miner ${msg.miner} did not deliver before the precommit deadline and no replacement was found`); return state }
          const exclude = new Set([...live.record.assignees, ...live.excluded])
          const replacement = selectMiners(selection(live.record.modelId, 1, exclude))?.[0]
          if (replacement == null) {
            log.warn({taskId: msg.taskId, miner: msg.miner}, 'miner is late and no replacement is ready yet; waiting')
            later(init.heartbeatIntervalMs, msg)
            return state
          }
          live.reassigning = true
          noteAssigned([replacement])
          log.warn({taskId: msg.taskId, from: msg.miner, to: replacement}, 'miner missed its deadline; reassigning')
          chainSend(`reassign ${msg.taskId}`, 'reassign', [BigInt(msg.taskId), msg.miner, replacement],
            reply => ({type: '$Reassigned', taskId: msg.taskId, from: msg.miner, to: replacement, reply}))
          return state
        }

        case '$Reassigned': {
          const live = state.tasks.get(msg.taskId)
          if (live == null) return state
          live.reassigning = false
          if (msg.reply.type !== 'Mined') {
            log.warn({taskId: msg.taskId, reply: msg.reply}, 'reassign refused by the chain')
            live.excluded.add(msg.to)
            later(init.pollingIntervalMs, {type: '$ResultTimeout', taskId: msg.taskId, miner: msg.from})
            return state
          }
          const record = live.record
          live.excluded.add(msg.from)
          record.assignees = record.assignees.map(a => a === msg.from ? msg.to : a)
          record.reassignments.push({from: msg.from, to: msg.to, reason: 'result timeout'})
          record.txs.push({label: `reassign ${msg.from} → ${msg.to}`, hash: msg.reply.tx.hash, blockNumber: msg.reply.tx.blockNumber})
          gossipTask(live)
          later(init.resultTimeoutMs, {type: '$ResultTimeout', taskId: msg.taskId, miner: msg.to})
          return state
        }

        case '$CompetingTimeout': {
          const live = state.tasks.get(msg.taskId)
          if (live == null || live.record.phase !== 'running') return state
          if (live.outputs.size > 0) {
            // Fewer than k competitors answered in time: answer with what agrees so far.
            answerWith(live, tallyResults(live.record.results, live.record.results.length))
          } else if (Date.now() > live.precommitDeadline) {
            failTask(live, 504, 'MINERS_MISSED_DEADLINE', 'no miner delivered a result before the precommit deadline')
          } else {
            later(init.resultTimeoutMs, msg)
          }
          return state
        }

        case '$SettleCheck': {
          void chain.read('cognitive', 'taskOf', [BigInt(msg.taskId)]).then(r => { system.tell(self, {type: '$TaskState', taskId: msg.taskId, reply: r}) })
          return state
        }

        case '$TaskState': {
          const live = state.tasks.get(msg.taskId)
          if (live == null || live.record.phase !== 'settling') return state
          const chainState = msg.reply.type === 'Value' ? Number((msg.reply.value as {state: bigint}).state) : undefined
          const now = Date.now()
          // The contract lets a task be closed once its current phase's deadline has passed.
          const phaseOver = chainState != null && (chainState < TaskState.Precommitted ? now > live.precommitDeadline + 1_000 : now > live.commitDeadline + 1_000)
          if (chainState === TaskState.Ended || chainState === TaskState.Expired) {
            queryTrail(msg.taskId)
          } else if (chainState === TaskState.Committed || phaseOver) {
            chainSend(`end ${msg.taskId}`, 'end', [BigInt(msg.taskId)], reply => ({type: '$Ended', taskId: msg.taskId, reply}))
          } else {
            // A task nobody will finish (cancelled, failed) only waits for its deadline.
            later(live.record.error == null ? init.pollingIntervalMs : SLOW_SETTLE_POLL_MS, {type: '$SettleCheck', taskId: msg.taskId})
          }
          return state
        }

        case '$Ended': {
          const live = state.tasks.get(msg.taskId)
          if (live == null) return state
          if (msg.reply.type !== 'Mined') {
            log.warn({taskId: msg.taskId, reply: msg.reply}, 'end not accepted yet; retrying')
            later(init.pollingIntervalMs * 4, {type: '$SettleCheck', taskId: msg.taskId})
            return state
          }
          live.record.txs.push({label: 'end', hash: msg.reply.tx.hash, blockNumber: msg.reply.tx.blockNumber})
          queryTrail(msg.taskId)
          return state
        }

        case '$Trail': {
          const live = state.tasks.get(msg.taskId)
          if (live == null) return state
          if (msg.reply.type === 'Events') {
            live.record.trail = msg.reply.events
            const ended = msg.reply.events.some(e => e.name === 'TaskEnded')
            live.record.phase = ended ? 'ended' : 'expired'
          } else {
            live.record.phase = 'ended'
            live.record.error = `trail unavailable: ${msg.reply.error}`
          }
          live.record.timings.settledAt = Date.now()
          log.info({taskId: msg.taskId, phase: live.record.phase, events: live.record.trail.length}, 'task settled')
          return state
        }

        case 'GetTask':
          system.tell(msg.replyTo, state.tasks.get(msg.taskId)?.record ?? null)
          return state

        case 'ListTasks':
          system.tell(msg.replyTo, [...state.tasks.values()].map(t => t.record).reverse())
          return state

        case 'ListMiners':
          system.tell(msg.replyTo, [...state.miners.values()])
          return state

        default:
          return assertNever(msg, 'oracle message')
      }

      function gossipTask (live: Live): void {
        const r = live.record
        init.publishTask({
          taskId: r.taskId, modelId: r.modelId, prompt: r.prompt, params: r.params, seed: r.seed, mode: r.mode, k: r.k,
          assignees: r.mode === 'parallel' ? r.assignees : [], deadline: live.commitDeadline, oracle: init.address, createdAt: r.timings.createdAt ?? Date.now()
        }).catch((err: Error) => { log.warn({taskId: r.taskId, err: err.message}, 'task gossip failed') })
      }

      function maybeAnswer (live: Live): void {
        const record = live.record
        if (record.phase !== 'running') return
        const relevant = record.mode === 'parallel' ? record.results.filter(r => record.assignees.includes(r.miner)) : record.results
        const tally = tallyResults(relevant, record.k)
        if (tally.status !== 'pending') answerWith(live, tally)
      }

      function answerWith (live: Live, tally: ReturnType<typeof tallyResults>): void {
        const record = live.record
        if (tally.status === 'pending') return
        const winner = tally.outputHash == null ? undefined : tally.agreeing[0]
        record.answer = winner == null ? undefined : live.outputs.get(winner)
        record.agreement = {status: tally.status, agreeing: tally.agreeing, dissenting: tally.dissenting}
        record.phase = 'settling'
        record.timings.answeredAt = Date.now()
        reply(live, {type: 'Answered', record: structuredClone(record)})
        live.onToken = undefined
        log.info({taskId: record.taskId, agreement: tally.status, ms: record.timings.answeredAt - record.timings.requestedAt}, 'answered')
        system.tell(self, {type: '$SettleCheck', taskId: record.taskId})
      }

      function failTask (live: Live, status: number, code: string, error: string): void {
        live.record.phase = 'settling'
        live.record.error = error
        reply(live, {type: 'Rejected', status, code, error, record: structuredClone(live.record)})
        hangUp(live)
        system.tell(self, {type: '$SettleCheck', taskId: live.record.taskId})
      }

      /** The client left: stop the miners now; the chain task runs out and is closed for a refund. */
      function cancel (live: Live): void {
        live.cancelled = true
        live.replyTo = undefined
        live.onToken = undefined
        log.info({taskId: live.record.taskId}, 'client gone: cancelling the task on its miners')
        failTask(live, 499, 'CLIENT_GONE', 'cancelled: the client disconnected')
      }

      function hangUp (live: Live): void {
        for (const controller of live.streams.values()) controller.abort(new Error('task closed by the oracle'))
        live.streams.clear()
      }

      function queryTrail (taskId: string): void {
        void chain.events('cognitive', BigInt(taskId), init.deployBlock).then(r => { system.tell(self, {type: '$Trail', taskId, reply: r}) })
      }
    },
    failMessage: (msg, error) => {
      if (msg.type === 'Complete') system.tell(msg.replyTo, {type: 'Rejected', status: 500, code: 'ORACLE_CRASHED', error: error.message})
    }
  }
}
