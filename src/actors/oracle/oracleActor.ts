import {hexlify, randomBytes, toUtf8Bytes} from 'ethers'
import {taskIdFor} from '../../chain/commitment.js'
import {TASK_MODE_CODE, TaskState} from '../../chain/enums.js'
import type {TxLane} from '../../chain/txQueue.js'
import type {ChainWrite} from '../../chain/chainCall.js'
import type {ChainTaskRow, TaskJournal} from '../../journal/taskJournal.js'
import type {Address} from '../../protocols/address.js'
import type {ModelId} from '../../protocols/modelId.js'
import type {Heartbeat, Task} from '../../protocols/messages.js'
import {assertNever} from '../../util/assertNever.js'
import type {ActorDefinition, ActorRef, ActorSystem} from '../actorSystem.js'
import {ChainClient} from '../chain/chainClient.js'
import type {ChainEventsMessage, ChainMessage, SendReply} from '../chain/messages.js'
import type {CompleteReply, OracleMessage} from './messages.js'
import {createOracleTask, isOpen, step, upgradeTask, type OracleEffect, type OracleTask, type OracleTaskConfig, type OracleTaskEvent, type TxIntent} from './oracleTask.js'
import {pruneTasks} from './pruneTasks.js'
import {capableMiners, eligibleMiners, selectMiners, type MinerView} from './selectMiners.js'
import {applyTaskEvents, dueForSweep} from './sweeper.js'
import {VerifiedStream} from './verifiedStream.js'
import {reputationOf, type Reputation} from './reputation.js'
import type {Claim, Verdict} from '../../verify/verifier.js'
import {nodeMetrics} from '../../util/metrics.js'
import {observeOracleStep} from './oracleTaskMetrics.js'
import {requestOutcome} from './requestOutcome.js'

export interface OracleActorInit {
  system: ActorSystem
  address: Address
  chain: ActorRef<ChainMessage>
  journal: TaskJournal
  publishTask: (task: Task) => Promise<void>
  /** The chain's admission view (IAM active + ACL miner role). */
  isAdmittedMiner: (address: Address) => boolean
  escrowWei: bigint
  resultTimeoutMs: number
  precommitWindowS: number
  commitWindowS: number
  heartbeatIntervalMs: number
  /** Block the contracts were deployed at: where trail queries start. */
  deployBlock: number
  /**
   * Checks a miner's claim (in process, or by a validator). Undefined: this oracle verifies
   * nothing, and tasks answer and settle by hash majority.
   */
  verify?: (modelId: ModelId, claim: Claim, options: {reexecute: boolean, partial: boolean}) => Promise<Verdict>
  /** Classes the verifier(s) can re-execute exactly, as far as known now (a local model once loaded, live validators). */
  auditableClasses: () => readonly string[]
  /** Probability of a re-execution audit of a k=1 or competing result in the verifier's class. */
  auditRate: number
  /** A miner whose last NodeStats ping is older than this counts as offline in its reputation. */
  pingWindowS: number
}

/** Journal meta key of the last chain block whose events this oracle applied. */
export const ORACLE_WATCH_CHECKPOINT = 'watch:oracle'
/** Finished task records kept in memory for the API (older ones are read from the journal). */
const TASKS_KEPT = 10_000
/** How often expired tasks of any oracle are looked for. */
const SWEEP_INTERVAL_MS = 5_000
/** Requests waiting for free miners are looked at this often (and on every miner heartbeat). */
const STAFF_RETRY_MS = 200
/** Miners' chain records (reputation, suspension) are read again this often. */
const REPUTATION_INTERVAL_MS = 10_000
/** Requests held while every miner is busy; beyond this a request is refused at once. */
const MAX_WAITING = 1_024

/** What only the live process has for a task: the waiting client, its token sink, open streams. */
interface Live {
  replyTo?: ActorRef<CompleteReply>
  onToken?: (text: string) => void
  /** What the client sees of the miners' streams: majority-agreed, verified text only. */
  gate?: VerifiedStream
  /** Open task streams by miner: aborting one hangs up on that miner. */
  streams: Map<Address, AbortController>
}

type CompleteMessage = Extract<OracleMessage, {type: 'Complete'}>

type Internal =
  /** An event for a task's machine, from a timer or an effect's reply. */
  | {type: '$Step', taskId: string, event: OracleTaskEvent}
  /** Try again to staff the requests waiting for free miners. */
  | {type: '$Staff'}
  | {type: '$SweepTick'}
  /** Read the known miners' chain records again (reputation, suspension). */
  | {type: '$ReputationTick'}
  | {type: '$Reputation', miner: Address, reputation: Reputation}
  | {type: '$ReadReputation', miner: Address}
  | {type: '$Swept', taskId: string, reply: SendReply}

interface OracleState {
  miners: Map<Address, MinerView>
  tasks: Map<string, OracleTask>
  live: Map<string, Live>
  recentAssignments: Map<Address, number>
  /** Open tasks of every oracle on chain (the sweeper's view). */
  chainTasks: Map<string, ChainTaskRow>
  sweeping: Set<string>
  sweepTimer?: NodeJS.Timeout
  reputationTimer?: NodeJS.Timeout
  /** Chain records read so far, kept across heartbeats (a heartbeat replaces the miner's view). */
  reputations: Map<Address, Reputation>
  /** Requests no k miners were free for yet, oldest first, with when they arrived. */
  waiting: Array<{msg: CompleteMessage, since: number}>
  staffTimer?: NodeJS.Timeout
}

/**
 * The coordinator. It routes events (requests, gossip, streams, timers, chain events) to each
 * task's state machine (`oracleTask.ts`), journals every step before carrying out its effects,
 * and resumes every open task from the journal after a restart. Beside that it picks miners from
 * live heartbeats and sweeps expired tasks of any oracle off the chain.
 */
export function oracleActor (init: OracleActorInit): ActorDefinition<OracleState, OracleMessage | ChainEventsMessage | Internal> {
  const {system, journal} = init
  const chain = new ChainClient(system, init.chain)
  const maxHeartbeatAgeMs = init.heartbeatIntervalMs * 3
  // Verifier classes are learnt as models load and validators show up; until then nothing is audited.
  const taskConfig = (): OracleTaskConfig => ({
    oracle: init.address, resultTimeoutMs: init.resultTimeoutMs, retryMs: init.heartbeatIntervalMs, auditRate: init.auditRate,
    verify: init.verify != null, auditableClasses: init.verify == null ? [] : init.auditableClasses()
  })

  return {
    name: 'oracle',
    init: async (ctx) => {
      const self = ctx.self as ActorRef<Internal | ChainEventsMessage>
      const state: OracleState = {miners: new Map(), tasks: new Map(), live: new Map(), recentAssignments: new Map(), chainTasks: new Map(), sweeping: new Set(), waiting: [], reputations: new Map()}
      for (const row of journal.chainTasks()) state.chainTasks.set(row.taskId, row)
      for (const {taskId, state: task} of journal.recent<OracleTask>('oracle', TASKS_KEPT).reverse()) state.tasks.set(taskId, upgradeTask(task))
      const open = journal.openTasks<OracleTask>('oracle')
      // However old: an open task is carried to its end.
      for (const {taskId, state: task} of open) state.tasks.set(taskId, upgradeTask(task))
      if (open.length > 0) ctx.log.info({tasks: open.length}, 'resuming open tasks from the journal')
      // Carried on through the normal path, so each resumption is journaled like any step.
      for (const {taskId} of open) system.tell(self, {type: '$Step', taskId, event: {type: 'Restarted'}})
      system.tell(init.chain, {type: 'Subscribe', subscriber: self})
      state.sweepTimer = setInterval(() => { system.tell(self, {type: '$SweepTick'}) }, SWEEP_INTERVAL_MS).unref()
      state.reputationTimer = setInterval(() => { system.tell(self, {type: '$ReputationTick'}) }, REPUTATION_INTERVAL_MS).unref()
      return state
    },
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

      /** The one way a task changes: step, journal, then effects. */
      const apply = (taskId: string, event: OracleTaskEvent): void => {
        const task = state.tasks.get(taskId)
        if (task == null) return
        const stepped = step(task, event, Date.now(), taskConfig())
        if (stepped.task === task) return
        journal.record('oracle', taskId, event, stepped.task, isOpen(stepped.task))
        state.tasks.set(taskId, stepped.task)
        observeOracleStep(task.record, stepped.task.record, nodeMetrics)
        run(stepped.task, stepped.effects)
      }

      const run = (task: OracleTask, effects: OracleEffect[]): void => {
        const taskId = task.record.taskId
        for (const effect of effects) {
          switch (effect.type) {
            case 'reply': {
              // Once per task (the machine replies once): how it ended for its client.
              nodeMetrics.tasks.inc({mode: task.record.mode, outcome: requestOutcome(effect.reply)})
              const live = state.live.get(taskId)
              if (effect.reply.type === 'Answered' && effect.reply.record.answer != null) {
                if (live?.gate?.finish(effect.reply.record.answer) === false) log.warn({taskId}, 'streamed text does not begin the verified answer; the rest comes with the final event')
              } else {
                live?.gate?.close()
              }
              if (live?.replyTo != null) system.tell(live.replyTo, effect.reply)
              if (live != null) {
                live.replyTo = undefined
                live.onToken = undefined
              }
              break
            }
            case 'gossip':
              init.publishTask(effect.task).catch((err: Error) => { log.warn({taskId, err: err.message}, 'task gossip failed') })
              break
            case 'send':
              send(task, effect.tx)
              break
            case 'timer':
              setTimeout(() => { system.tell(self, {type: '$Step', taskId, event: effect.event}) }, Math.max(0, effect.atMs - Date.now())).unref()
              break
            case 'hangUp': {
              const live = state.live.get(taskId)
              for (const [miner, controller] of live?.streams ?? []) {
                if (effect.keep?.includes(miner) === true) continue
                controller.abort(new Error(effect.reason ?? 'task closed by the oracle'))
                live?.streams.delete(miner)
              }
              break
            }
            case 'readChainState':
              void chain.read({contract: 'cognitive', functionName: 'taskOf', args: [BigInt(taskId)]}).then(reply => {
                const event: OracleTaskEvent = reply.type === 'Value'
                  ? {type: 'ChainState', state: Number(reply.value.state) as TaskState}
                  : reply.error.includes('UnknownTask') ? {type: 'ChainUnknown'} : {type: 'ChainReadFailed', error: reply.error}
                system.tell(self, {type: '$Step', taskId, event})
              })
              break
            case 'queryTrail': {
              // From the block that created the task (its first event): a query that stays short as the chain grows.
              const fromBlock = task.record.txs.find(t => t.label === 'createTask')?.blockNumber ?? init.deployBlock
              void chain.events('cognitive', BigInt(taskId), fromBlock).then(reply => {
                system.tell(self, {type: '$Step', taskId, event: reply.type === 'Events' ? {type: 'Trail', events: reply.events} : {type: 'TrailFailed', error: reply.error}})
              })
              break
            }
            case 'verify': {
              const verify = init.verify
              // Restarted without a verifier: the task's checks fail (and it settles unverified at its deadline).
              if (verify == null) {
                system.tell(self, {type: '$Step', taskId, event: {type: 'VerifyFailed', miner: effect.miner, error: 'this oracle has no verifier'}})
                break
              }
              verify(effect.modelId, effect.claim, {reexecute: effect.reexecute, partial: false}).then(
                verdict => { system.tell(self, {type: '$Step', taskId, event: {type: 'Verified', miner: effect.miner, verdict: {accepted: verdict.accepted, method: verdict.method, sameClass: verdict.sameClass, reason: verdict.reason, ms: Math.round(verdict.ms)}}}) },
                (err: Error) => {
                  // No verdict: the check is asked again (each failed attempt counts).
                  nodeMetrics.verificationVerdicts.inc({verdict: 'unavailable'})
                  system.tell(self, {type: '$Step', taskId, event: {type: 'VerifyFailed', miner: effect.miner, error: err.message}})
                })
              break
            }
            case 'log':
              log[effect.level](effect.fields ?? {}, effect.msg)
              break
            default:
              assertNever(effect, 'oracle effect')
          }
        }
        if (!isOpen(task)) state.live.delete(taskId)
      }

      const send = (task: OracleTask, tx: TxIntent): void => {
        const taskId = task.record.taskId
        const {call, lane, value} = chainCall(task, tx)
        void chain.send({label: `${tx.kind} ${taskId}`, call, lane, value}).then(reply => {
          // The chain suspended a miner since its record was last read: read it now, not in 10 s.
          if (reply.type === 'Reverted' && reply.errorName === 'MinerSuspended') for (const miner of task.record.assignees) system.tell(self, {type: '$ReadReputation', miner})
          system.tell(self, {type: '$Step', taskId, event: replyEvent(tx, reply)})
        })
      }

      /** Starts the request as a task if k miners can take it now; false when they cannot (yet). */
      const start = (request: CompleteMessage): boolean => {
        const {request: r} = request
        const k = r.redundancy
        let assignees: Address[] = []
        if (r.mode === 'parallel') {
          const picked = selectMiners(selection(r.modelId, k))
          if (picked == null) return false
          assignees = picked
        } else if (eligibleMiners(selection(r.modelId, k)).length < k) {
          return false
        }
        noteAssigned(assignees)
        // The id is ours before the block: the task is gossiped at once and miners start
        // while createTask waits for the chain.
        const requestId = hexlify(randomBytes(32))
        const taskId = String(taskIdFor(init.address, requestId))
        const {task, effects} = createOracleTask({taskId, requestId, request: r, assignees, precommitWindowS: init.precommitWindowS, commitWindowS: init.commitWindowS}, Date.now(), taskConfig())
        journal.record('oracle', taskId, {type: 'Requested', request: r, assignees, requestId}, task, true)
        state.tasks.set(taskId, task)
        state.live.set(taskId, {replyTo: request.replyTo, onToken: request.onToken, streams: new Map(), gate: request.onToken == null ? undefined : streamGate(taskId, task, request.onToken)})
        pruneTasks(state.tasks, TASKS_KEPT)
        request.signal?.addEventListener('abort', () => { system.tell(self, {type: '$Step', taskId, event: {type: 'ClientGone'}}) }, {once: true})
        run(task, effects)
        return true
      }

      /** Starts waiting requests in order while miners can take them; refuses those waited too long. */
      const staff = (): void => {
        const now = Date.now()
        while (state.waiting.length > 0) {
          const {msg: request, since} = state.waiting[0] as {msg: CompleteMessage, since: number}
          const {mode, redundancy: k, modelId} = request.request
          if (request.signal?.aborted === true) {
            refuse(system, request, {type: 'Rejected', status: 499, code: 'CLIENT_GONE', error: 'cancelled: the client disconnected while waiting for miners'})
          } else if (!start(request)) {
            if (now - since < init.resultTimeoutMs) break
            const available = eligibleMiners(selection(modelId, k)).length
            refuse(system, request, {type: 'Rejected', status: 503, code: 'NO_MINER_READY', error: `${mode} mode needs ${k} free miners for model ${modelId}; ${available} free after waiting ${now - since} ms`})
          }
          state.waiting.shift()
        }
        if (state.waiting.length > 0) scheduleStaffing()
      }

      /** The client's view of the miners' streams: each released piece goes to its token sink while it listens. */
      const streamGate = (taskId: string, task: OracleTask, onToken: (text: string) => void): VerifiedStream => {
        const {record} = task
        const verify = init.verify
        let firstReleased = false
        return new VerifiedStream({
          k: record.k,
          release: (text) => {
            // Time to first token as the client sees it: the first verified (majority-agreed) text.
            if (!firstReleased) {
              firstReleased = true
              nodeMetrics.timeToFirstToken.observe({mode: record.mode}, (Date.now() - record.timings.requestedAt) / 1000)
            }
            if (state.live.get(taskId)?.onToken != null) onToken(text)
          },
          check: verify == null ? undefined : async (miner, tokenIds, output) => {
            const minerClass = state.miners.get(miner)?.models.find(m => m.id === record.modelId)?.determinismClass ?? ''
            const verdict = await verify(record.modelId, {prompt: record.prompt, params: record.params, seed: record.seed, tokenIds, output, determinismClass: minerClass, finishReason: 'length'}, {reexecute: false, partial: true})
            if (!verdict.accepted) log.warn({taskId, miner, reason: verdict.reason}, 'streamed prefix failed verification; streaming stops')
            return verdict.accepted
          }
        })
      }

      /** Reads a miner's NodeStats record; a failed read keeps the last one. */
      const readReputation = (miner: Address): void => {
        void Promise.all([
          chain.read({contract: 'nodeStats', functionName: 'statsOf', args: [miner]}),
          chain.read({contract: 'nodeStats', functionName: 'isSuspended', args: [miner]})
        ]).then(([stats, suspended]) => {
          if (stats.type !== 'Value' || suspended.type !== 'Value') return
          const s = stats.value
          const reputation = reputationOf({agreed: BigInt(s.agreed), disagreed: BigInt(s.disagreed), expired: BigInt(s.expired), rejected: BigInt(s.rejected), lastPingAt: BigInt(s.lastPingAt), suspended: suspended.value},
            Math.floor(Date.now() / 1000), init.pingWindowS)
          system.tell(self, {type: '$Reputation', miner, reputation})
        })
      }

      const scheduleStaffing = (): void => {
        state.staffTimer ??= setTimeout(() => { system.tell(self, {type: '$Staff'}) }, STAFF_RETRY_MS).unref()
      }

      switch (msg.type) {
        case 'HeartbeatSeen': {
          const hb: Heartbeat = msg.heartbeat
          if (hb.role !== 'miner') return state
          const known = state.miners.has(hb.address)
          state.miners.set(hb.address, {
            address: hb.address, peerId: hb.peerId, models: hb.models,
            freeSlots: hb.freeSlots, tokensPerSecond: hb.tokensPerSecond, seenAt: Date.now(),
            reputation: state.reputations.get(hb.address)
          })
          if (!known) readReputation(hb.address)
          if (state.waiting.length > 0) staff()
          return state
        }

        case 'Complete': {
          if (state.waiting.length === 0 && start(msg)) return state
          const {mode, redundancy: k, modelId} = msg.request
          const capable = capableMiners(selection(modelId, k)).length
          if (capable < k) {
            // Waiting cannot help: not enough miners serve the model at all.
            refuse(system, msg, {type: 'Rejected', status: 503, code: 'NO_MINER_READY', error: `${mode} mode needs ${k} ready miners for model ${modelId}; ${capable} available`})
            return state
          }
          if (state.waiting.length >= MAX_WAITING) {
            refuse(system, msg, {type: 'Rejected', status: 503, code: 'NO_MINER_READY', error: `${state.waiting.length} requests already wait for free miners`})
            return state
          }
          // Every miner is busy: hold the request a while rather than refuse it (miners free up
          // within a task's time), in arrival order.
          state.waiting.push({msg, since: Date.now()})
          scheduleStaffing()
          return state
        }

        case '$Staff':
          state.staffTimer = undefined
          staff()
          return state

        case '$Step': {
          const event = msg.event
          const task = state.tasks.get(msg.taskId)
          if (event.type === 'ResultTimeout' && task != null) {
            // The machine decides whether to replace; the actor knows who could take over.
            const exclude = new Set([...task.record.assignees, ...task.excluded])
            const replacement = selectMiners(selection(task.record.modelId, 1, exclude))?.[0]
            if (replacement != null && task.record.phase === 'running' && task.outputs[event.miner] == null) noteAssigned([replacement])
            apply(msg.taskId, {...event, replacement})
            return state
          }
          apply(msg.taskId, event)
          return state
        }

        case 'ResultReceived':
          apply(msg.result.taskId, {type: 'ResultReceived', result: msg.result, sender: msg.sender})
          return state

        case 'PrecommitSeen':
          apply(msg.precommit.taskId, {type: 'PrecommitSeen', miner: msg.precommit.miner, commitment: msg.precommit.commitment})
          return state

        case 'CommitSeen':
          apply(msg.commit.result.taskId, {type: 'CommitSeen', result: msg.commit.result})
          return state

        case 'StreamOpened': {
          const task = state.tasks.get(msg.taskId)
          const live = state.live.get(msg.taskId)
          // Unknown, finished or cancelled tasks, and miners not (or no longer) on the task: hang up.
          if (task == null || live == null || task.record.phase !== 'running' || (task.record.mode === 'parallel' && !task.record.assignees.includes(msg.miner))) {
            msg.controller.abort(new Error('task not open for this miner'))
            return state
          }
          live.streams.set(msg.miner, msg.controller)
          return state
        }

        case 'TokenReceived': {
          const live = state.live.get(msg.taskId)
          const record = state.tasks.get(msg.taskId)?.record
          if (live == null || record?.phase !== 'running') return state
          if (record.mode === 'parallel' && !record.assignees.includes(msg.miner)) return state
          if (record.timings.firstTokenAt == null) apply(msg.taskId, {type: 'FirstToken'})
          live.gate?.push(msg.miner, msg.chunk)
          return state
        }

        case 'ChainEvents': {
          const {upserts, removes} = applyTaskEvents(state.chainTasks, msg.events)
          journal.applyChainBatch(ORACLE_WATCH_CHECKPOINT, msg.toBlock, upserts, removes)
          for (const {event} of msg.events) {
            if (!state.tasks.has(event.taskId)) continue
            if (event.type === 'TaskStateChanged') apply(event.taskId, {type: 'ChainState', state: event.state})
            else if (event.type === 'TaskPrecommitted') apply(event.taskId, {type: 'PrecommitSeen', miner: event.miner, commitment: event.commitment})
            else if (event.type === 'TaskEnded' || event.type === 'TaskExpired') apply(event.taskId, {type: 'Closed'})
          }
          return state
        }

        case '$SweepTick': {
          const mine = (taskId: string): boolean => {
            const task = state.tasks.get(taskId)
            return task != null && isOpen(task)
          }
          for (const taskId of dueForSweep(state.chainTasks, Date.now(), init.address, id => mine(id) || state.sweeping.has(id))) {
            state.sweeping.add(taskId)
            log.info({taskId, oracle: state.chainTasks.get(taskId)?.oracle}, 'sweeping an expired task')
            void chain.send({label: `sweep ${taskId}`, call: {contract: 'cognitive', functionName: 'end', args: [BigInt(taskId)]}, lane: 'settlement'})
              .then(reply => { system.tell(self, {type: '$Swept', taskId, reply}) })
          }
          return state
        }

        case '$ReputationTick':
          for (const miner of state.miners.keys()) readReputation(miner)
          return state

        case '$ReadReputation':
          readReputation(msg.miner)
          return state

        case '$Reputation': {
          state.reputations.set(msg.miner, msg.reputation)
          const view = state.miners.get(msg.miner)
          if (view != null) view.reputation = msg.reputation
          return state
        }

        case '$Swept': {
          state.sweeping.delete(msg.taskId)
          // Closed (by us or first by someone else): the watcher's event drops it from the index.
          if (msg.reply.type === 'Reverted' && (msg.reply.errorName === 'WrongState' || msg.reply.errorName === 'UnknownTask')) {
            state.chainTasks.delete(msg.taskId)
            journal.applyChainBatch(ORACLE_WATCH_CHECKPOINT, Number(journal.meta(ORACLE_WATCH_CHECKPOINT) ?? init.deployBlock), [], [msg.taskId])
          } else if (msg.reply.type !== 'Mined') {
            log.warn({taskId: msg.taskId, reply: msg.reply}, 'sweep end not accepted; trying again later')
          }
          return state
        }

        case 'GetTask':
          system.tell(msg.replyTo, state.tasks.get(msg.taskId)?.record ?? journal.get<OracleTask>('oracle', msg.taskId)?.state.record ?? null)
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
    },
    dispose: async (state) => {
      clearInterval(state.sweepTimer)
      clearInterval(state.reputationTimer)
      clearTimeout(state.staffTimer)
      for (const {msg} of state.waiting.splice(0)) refuse(system, msg, {type: 'Rejected', status: 503, code: 'NODE_STOPPING', error: 'the oracle is stopping'})
    },
    failMessage: (msg, error) => {
      if (msg.type === 'Complete') refuse(system, msg, {type: 'Rejected', status: 500, code: 'ORACLE_CRASHED', error: error.message})
    }
  }

  function chainCall (task: OracleTask, tx: TxIntent): {call: ChainWrite, lane: TxLane, value?: bigint} {
    const taskId = BigInt(task.record.taskId)
    switch (tx.kind) {
      case 'createTask': {
        const r = task.record
        return {
          lane: 'user',
          value: init.escrowWei,
          call: {
            contract: 'cognitive',
            functionName: 'createTask',
            args: [task.requestId, BigInt(r.modelId), r.prompt, hexlify(toUtf8Bytes(JSON.stringify(r.params))), BigInt(r.seed), TASK_MODE_CODE[r.mode], r.k, task.createdWith,
              BigInt(task.precommitDeadline / 1000), BigInt(task.commitDeadline / 1000)]
          }
        }
      }
      case 'reassign':
        return {lane: 'user', call: {contract: 'cognitive', functionName: 'reassign', args: [taskId, tx.from, tx.to]}}
      case 'end':
        return tx.verdicts == null
          ? {lane: 'settlement', call: {contract: 'cognitive', functionName: 'end', args: [taskId]}}
          : {lane: 'settlement', call: {contract: 'cognitive', functionName: 'settle', args: [taskId, tx.verdicts.accepted, tx.verdicts.rejected]}}
      default:
        return assertNever(tx, 'oracle transaction')
    }
  }
}

/** Answers a request that never became a task (no miners, stopping, crashed); it counts among the tasks all the same. */
function refuse (system: ActorSystem, request: CompleteMessage, reply: Extract<CompleteReply, {type: 'Rejected'}>): void {
  nodeMetrics.tasks.inc({mode: request.request.mode, outcome: requestOutcome(reply)})
  system.tell(request.replyTo, reply)
}

/** A transaction's outcome as the event its task's machine expects. */
function replyEvent (tx: TxIntent, reply: SendReply): OracleTaskEvent {
  const ref = reply.type === 'Mined' ? {label: reply.tx.label, hash: reply.tx.hash, blockNumber: reply.tx.blockNumber} : undefined
  const errorName = reply.type === 'Reverted' ? reply.errorName : ''
  const error = reply.type === 'Mined' ? '' : reply.error
  switch (tx.kind) {
    case 'createTask':
      return ref != null ? {type: 'CreateMined', tx: ref} : reply.type === 'Reverted' ? {type: 'CreateRejected', errorName, error} : {type: 'CreateFailed', error}
    case 'reassign':
      return ref != null ? {type: 'ReassignMined', from: tx.from, to: tx.to, tx: ref} : reply.type === 'Reverted' ? {type: 'ReassignRejected', from: tx.from, to: tx.to, errorName, error} : {type: 'ReassignFailed', from: tx.from, to: tx.to, error}
    case 'end':
      return ref != null ? {type: 'EndMined', tx: ref} : reply.type === 'Reverted' ? {type: 'EndRejected', errorName, error} : {type: 'EndFailed', error}
    default:
      return assertNever(tx, 'oracle transaction')
  }
}
