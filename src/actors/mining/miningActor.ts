import {hexlify, randomBytes} from 'ethers'
import {commitmentFor} from '../../chain/commitment.js'
import {TaskState} from '../../chain/enums.js'
import type {TaskJournal} from '../../journal/taskJournal.js'
import type {Address} from '../../protocols/address.js'
import type {ModelId} from '../../protocols/modelId.js'
import {outputHashOf, type GossipPayload, type MinerResult, type Task} from '../../protocols/messages.js'
import type {ResultStream} from '../../protocols/resultService.js'
import {GossipTopic} from '../../protocols/topic.js'
import {assertNever} from '../../util/assertNever.js'
import type {ActorContext, ActorDefinition, ActorRef, ActorSystem} from '../actorSystem.js'
import {ASK_TIMEOUT_MS} from '../askTimeouts.js'
import {ChainClient} from '../chain/chainClient.js'
import type {ChainMessage, SendReply} from '../chain/messages.js'
import type {InferenceMessage, InferenceReply} from '../inference/messages.js'
import type {MiningMessage, MiningStatus} from './messages.js'
import {isFinished, minerEventOf, step, takeTask, type MinerEffect, type MinerTask, type MinerTaskEvent} from './minerTask.js'
import {taskFromChain} from './taskFromChain.js'
import type {TaskEvent} from '../../chain/taskEvents.js'
import {nodeMetrics} from '../../util/metrics.js'
import {minerTaskEnd, observeMinerStage} from './minerStages.js'

export interface MiningActorInit {
  system: ActorSystem
  address: Address
  chain: ActorRef<ChainMessage>
  /** Where every step of every task is recorded before its effects run; open tasks resume from it. */
  journal: TaskJournal
  publish: <T extends GossipTopic.precommit | GossipTopic.commit>(topic: T, message: GossipPayload[T]) => Promise<void>
  /** Opens the task's private stream to its oracle: tokens as they come, then the result. */
  openResultStream: (oracle: Address, taskId: string) => Promise<ResultStream>
  /** Concurrent tasks this miner takes (its inference sequences). */
  slots: number
  /** Each task this miner takes on (assigned, or competed for), once: the earnings ledger follows it to its end. */
  onTaken?: (task: Task) => void
}

type Internal =
  /** What an effect came back with (inference, tx, read, the oracle hanging up). */
  | {type: '$TaskEvent', taskId: string, event: MinerTaskEvent}
  | {type: '$Timer', taskId: string, event: MinerTaskEvent}

interface MiningState {
  /** Every task held, by id: open ones, and the most recent finished ones (a re-gossip is not mined twice). */
  tasks: Map<string, MinerTask>
}

/** Finished tasks kept in memory; older ones are looked up in the journal. */
const FINISHED_TASKS_KEPT = 1_000
/** Competing tasks are taken while fewer than this many runs per inference slot are under way. */
const COMPETING_BACKLOG = 2
/** TaskCreated events kept to take an assignment from the chain (its MinerAssigned follows in the same block). */
const CREATED_KEPT = 1_000

/**
 * The miner's work loop: takes tasks for a loaded model when assigned (parallel) or when it
 * has a free slot (competing), and drives each through its state machine (`minerTask.ts`):
 * inference streamed to the oracle, precommit on gossip and chain, the reveal when the chain
 * says every slot precommitted, commit. Each step is journaled before its effects run, so a
 * restart resumes precommitted work (salt and all) instead of forgetting it. Chain state comes
 * from the chain actor's watcher, never from polling.
 */
export function miningActor (init: MiningActorInit): ActorDefinition<MiningState, MiningMessage | Internal> {
  const {system, journal, address} = init
  const chain = new ChainClient(system, init.chain)

  // Outside the actor's state on purpose: the loaded model, live streams, timers and the
  // counters belong to the process, and survive a crash-restart of this actor (whose state is
  // rebuilt from the journal).
  const models = new Set<ModelId>()
  let inference: ActorRef<InferenceMessage> | undefined
  /** The oracle stream of each task still inferring (not serialisable, so not in the task). */
  const streams = new Map<string, Promise<ResultStream | undefined>>()
  const timers = new Set<NodeJS.Timeout>()
  /** The tasks of the current incarnation's state: the chain watcher fetches their events. */
  let held: ReadonlyMap<string, MinerTask> = new Map()
  const counts = {completed: 0, lost: 0, failed: 0}
  const recentlyCreated = new Map<string, Extract<TaskEvent, {type: 'TaskCreated'}>>()
  const rememberCreated = (event: Extract<TaskEvent, {type: 'TaskCreated'}>): void => {
    recentlyCreated.set(event.taskId, event)
    if (recentlyCreated.size > CREATED_KEPT) recentlyCreated.delete(recentlyCreated.keys().next().value as string)
  }

  return {
    name: 'mining',
    init: async (ctx) => {
      const tasks = new Map<string, MinerTask>()
      held = tasks
      // Events from now on, of the tasks held and of assignments to us only: a miner need not read
      // every task of the network. What changed while this node was down, the Restarted steps ask for.
      chain.subscribe(ctx.self, {assignee: address, taskIds: () => held.keys()})
      for (const entry of journal.openTasks<MinerTask>('miner')) {
        tasks.set(entry.taskId, entry.state)
        // Handled once init is done (messages to a starting actor are stashed, in order).
        system.tell(self(ctx), {type: '$TaskEvent', taskId: entry.taskId, event: {type: 'Restarted'}})
      }
      if (tasks.size > 0) ctx.log.info({open: tasks.size}, 'resuming journaled tasks')
      return {tasks}
    },
    dispose: () => {
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
    },
    receive: (state, msg, ctx) => {
      switch (msg.type) {
        case 'ModelReady':
          models.add(msg.modelId)
          inference = msg.inference
          ctx.log.info({modelId: msg.modelId}, 'mining enabled for model')
          return state

        case 'TaskReceived':
          receiveTask(state, msg.task, ctx)
          return state

        case 'ChainEvents':
          for (const {event} of msg.events) {
            if (event.type === 'TaskCreated') rememberCreated(event)
            // Assigned to us on chain without the gossip (lost with a crashed oracle): take it from the chain.
            if (event.type === 'MinerAssigned' && event.miner === address && !state.tasks.has(event.taskId)) {
              const created = recentlyCreated.get(event.taskId)
              const task = created == null ? undefined : taskFromChain(created, address, Date.now())
              if (task != null) {
                ctx.log.info({taskId: event.taskId}, 'assigned on chain before (or without) its gossip: taking it from the chain')
                receiveTask(state, task, ctx)
              }
            }
            // Events of every task on chain arrive here; only the ones this miner holds matter.
            if (!state.tasks.has(event.taskId)) continue
            const minerEvent = minerEventOf(event, address)
            if (minerEvent !== undefined) apply(state, event.taskId, minerEvent, ctx)
          }
          return state

        case '$TaskEvent':
        case '$Timer':
          apply(state, msg.taskId, msg.event, ctx)
          return state

        case 'GetStatus': {
          const held = [...state.tasks.values()]
          const status: MiningStatus = {
            modelsReady: [...models],
            active: held.filter(t => !isFinished(t)).length,
            ...counts,
            // Only inference takes a slot: a task waiting on the chain costs nothing.
            freeSlots: Math.max(0, init.slots - inferring(state))
          }
          system.tell(msg.replyTo, status)
          return state
        }

        default:
          return assertNever(msg, 'mining message')
      }
    }
  }

  function receiveTask (state: MiningState, task: Task, ctx: ActorContext<MiningMessage | Internal>): void {
    const log = ctx.log
    // Not our model, or not loaded yet: ignore.
    if (!models.has(task.modelId) || inference == null) { log.debug({taskId: task.taskId}, 'task for a model not loaded here'); return }
    // Parallel tasks go to their assignees only (a reassignment to us comes as a re-gossip).
    if (task.mode === 'parallel' && !task.assignees.includes(address)) return
    // A task is taken once, also across restarts (the journal remembers finished ones).
    if (state.tasks.has(task.taskId) || journal.get('miner', task.taskId) !== undefined) return
    if (task.deadline <= Date.now()) { log.debug({taskId: task.taskId}, 'task already past its deadline'); return }
    // A busy miner still competes while its queue is short: a competing task nobody takes is
    // never offered again, and the first k precommits win whoever started first.
    if (task.mode === 'competing' && inferring(state) >= init.slots * COMPETING_BACKLOG) { log.debug({taskId: task.taskId}, 'queue full: not competing'); return }
    const {task: taken, effects} = takeTask(task, address, Date.now())
    journal.record('miner', task.taskId, {type: 'Taken', task}, taken, true)
    state.tasks.set(task.taskId, taken)
    init.onTaken?.(task)
    run(task.taskId, taken, effects, ctx)
  }

  /** The one way a task changes: step, journal, then effects. */
  function apply (state: MiningState, taskId: string, event: MinerTaskEvent, ctx: ActorContext<MiningMessage | Internal>): void {
    const old = state.tasks.get(taskId)
    if (old === undefined) return
    const now = Date.now()
    const {task, effects} = step(old, event, now)
    // An event that changes nothing (duplicate, stale timer, out of phase) is not journaled.
    if (task !== old) {
      journal.record('miner', taskId, event, task, !isFinished(task))
      state.tasks.set(taskId, task)
      observeMinerStage(old, task, now, nodeMetrics)
      if (!isFinished(old) && isFinished(task)) finished(state, task)
    }
    run(taskId, task, effects, ctx)
  }

  function finished (state: MiningState, task: MinerTask): void {
    const end = minerTaskEnd(task)
    if (end != null) nodeMetrics.minerTaskEnds.inc(end)
    if (task.phase === 'done') counts.completed++
    else if (task.phase === 'lost') counts.lost++
    else if (task.phase === 'failed') counts.failed++
    let finishedHeld = 0
    for (const t of state.tasks.values()) if (isFinished(t)) finishedHeld++
    // Oldest first (insertion order); open tasks are never dropped.
    for (const [id, t] of state.tasks) {
      if (finishedHeld <= FINISHED_TASKS_KEPT) break
      if (isFinished(t)) { state.tasks.delete(id); finishedHeld-- }
    }
  }

  function run (taskId: string, task: MinerTask, effects: MinerEffect[], ctx: ActorContext<MiningMessage | Internal>): void {
    for (const effect of effects) runEffect(taskId, task, effect, ctx)
    // The stream carries tokens and the result only: once past inference, nothing else uses it.
    if (task.phase !== 'inferring') streams.delete(taskId)
  }

  function runEffect (taskId: string, task: MinerTask, effect: MinerEffect, ctx: ActorContext<MiningMessage | Internal>): void {
    const log = ctx.log
    const tell = (event: MinerTaskEvent): void => { system.tell(self(ctx), {type: '$TaskEvent', taskId, event}) }
    switch (effect.type) {
      case 'openStream': {
        // Without a stream the work still counts on chain; the oracle just cannot hear it early.
        const opened = init.openResultStream(task.task.oracle, taskId).then(
          stream => {
            // The oracle hanging up (its client left) frees this slot at once.
            stream.cancelled.addEventListener('abort', () => { tell({type: 'Cancelled'}) }, {once: true})
            return stream
          },
          (err: Error) => { log.warn({taskId, err: err.message}, 'no stream to the oracle; mining without it'); return undefined })
        streams.set(taskId, opened)
        return
      }
      case 'runInference': {
        const engine = inference
        if (engine == null) { tell({type: 'InferenceFailed', code: 'NO_MODEL', error: 'no inference actor'}); return }
        const {modelId, prompt, seed, params} = task.task
        // Inference starts now, while the stream to the oracle is still being opened (a dial or a
        // protocol negotiation): tokens made meanwhile wait here and go out, in order, once it is.
        const opened = streams.get(taskId) ?? Promise.resolve(undefined)
        let stream: ResultStream | undefined
        let early: Array<{text: string, tokens: readonly number[]}> | undefined = []
        void opened.then(s => {
          stream = s
          for (const chunk of early ?? []) s?.token(chunk)
          early = undefined
        })
        void system.ask<InferenceMessage, InferenceReply>(engine, replyTo => ({
          type: 'Run',
          job: {jobId: taskId, modelId, prompt, seed, params},
          replyTo,
          onToken: (_text, chunk) => { if (early != null) early.push(chunk); else stream?.token(chunk) }
        }), ASK_TIMEOUT_MS.inferenceRun)
          .catch((err: Error): InferenceReply => ({type: 'Failed', jobId: taskId, code: 'ASK_FAILED', error: err.message}))
          .then(reply => { tell(inferenceEvent(taskId, reply)) })
        return
      }
      case 'cancelInference':
        if (inference != null) system.tell(inference, {type: 'Cancel', jobId: taskId})
        return
      case 'deliverResult':
        void streams.get(taskId)?.then(stream => stream?.finish(effect.result))
          .catch((err: Error) => { log.warn({taskId, err: err.message}, 'could not deliver the result to the oracle') })
        return
      case 'abortStream':
        void streams.get(taskId)?.then(stream => { stream?.abort(new Error(effect.reason)) })
        return
      case 'gossipPrecommit':
        init.publish(GossipTopic.precommit, {taskId, miner: address, commitment: effect.commitment, timestamp: Date.now()})
          .catch((err: Error) => { log.warn({taskId, err: err.message}, 'precommit gossip failed') })
        return
      case 'gossipCommit':
        init.publish(GossipTopic.commit, {result: effect.result, timestamp: Date.now()})
          .catch((err: Error) => { log.warn({taskId, err: err.message}, 'commit gossip failed') })
        return
      case 'sendPrecommit':
        void chain.send({label: `precommit ${taskId}`, call: {contract: 'cognitive', functionName: 'precommit', args: [BigInt(taskId), effect.commitment]}, lane: 'user'})
          .then(reply => { tell(txEvent(reply, 'Precommit')) })
        return
      case 'sendCommit':
        void chain.send({label: `commit ${taskId}`, call: {contract: 'cognitive', functionName: 'commit', args: [BigInt(taskId), effect.output, effect.salt]}, lane: 'user'})
          .then(reply => { tell(txEvent(reply, 'Commit')) })
        return
      case 'readChainState':
        void chain.read({contract: 'cognitive', functionName: 'taskOf', args: [BigInt(taskId)]}).then(reply => {
          if (reply.type === 'Failed') { tell({type: 'ChainReadFailed', error: reply.error}); return }
          const code = Number(reply.value.state)
          if (!(Object.values(TaskState) as number[]).includes(code)) { tell({type: 'ChainReadFailed', error: `unknown task state ${code}`}); return }
          tell({type: 'ChainState', state: code as TaskState})
        })
        return
      case 'timer': {
        const timer = setTimeout(() => {
          timers.delete(timer)
          system.tell(self(ctx), {type: '$Timer', taskId, event: effect.event})
        }, Math.max(0, effect.atMs - Date.now()))
        timer.unref()
        timers.add(timer)
        return
      }
      case 'log':
        log[effect.level]({taskId, ...effect.fields}, effect.msg)
        return
      default:
        assertNever(effect, 'miner effect')
    }
  }

  /** The inference reply as a task event; the salt and commitment are made here (the state machine takes no randomness). */
  function inferenceEvent (taskId: string, reply: InferenceReply): MinerTaskEvent {
    if (reply.type === 'Failed') return {type: 'InferenceFailed', code: reply.code, error: reply.error}
    const outcome = reply.outcome
    // Cut short because the oracle (or we) cancelled: a partial answer is never committed.
    if (outcome.finishReason === 'abort') return {type: 'Cancelled'}
    const salt = hexlify(randomBytes(32))
    const outputHash = outputHashOf(outcome.text)
    const commitment = commitmentFor(BigInt(taskId), address, outputHash, salt)
    const timings = {promptMs: outcome.timeToFirstTokenMs, generateMs: Math.max(0, outcome.durationMs - outcome.timeToFirstTokenMs)}
    const result: MinerResult = {taskId, miner: address, output: outcome.text, salt, outputHash, commitment, tokenIds: outcome.tokens, finishReason: outcome.finishReason, determinismClass: outcome.determinismClass, timings}
    return {type: 'Inferred', result}
  }

  function inferring (state: MiningState): number {
    let n = 0
    for (const t of state.tasks.values()) if (t.phase === 'inferring') n++
    return n
  }
}

function txEvent (reply: SendReply, tx: 'Precommit' | 'Commit'): MinerTaskEvent {
  switch (reply.type) {
    case 'Mined': return {type: `${tx}Mined`}
    case 'Reverted': return {type: `${tx}Rejected`, errorName: reply.errorName}
    case 'Failed': return {type: `${tx}Failed`, error: `${reply.code}: ${reply.error}`}
    default: return assertNever(reply, 'send reply')
  }
}

function self (ctx: {self: ActorRef<any>}): ActorRef<Internal> {
  return ctx.self
}
