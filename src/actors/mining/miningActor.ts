import {hexlify, randomBytes} from 'ethers'
import {commitmentFor} from '../../chain/commitment.js'
import {taskStateName, TaskState} from '../../chain/enums.js'
import type {Address} from '../../protocols/address.js'
import type {ModelId} from '../../protocols/modelId.js'
import {outputHashOf, type GossipPayload, type MinerResult, type Task} from '../../protocols/messages.js'
import type {ResultStream} from '../../protocols/resultService.js'
import {GossipTopic} from '../../protocols/topic.js'
import {assertNever} from '../../util/assertNever.js'
import type {ActorDefinition, ActorRef, ActorSystem} from '../actorSystem.js'
import {ASK_TIMEOUT_MS} from '../askTimeouts.js'
import {ChainClient} from '../chain/chainClient.js'
import type {ChainMessage, ReadReply, SendReply} from '../chain/messages.js'
import type {InferenceMessage, InferenceReply} from '../inference/messages.js'
import type {MiningMessage, MiningStatus} from './messages.js'

export interface MiningActorInit {
  system: ActorSystem
  address: Address
  chain: ActorRef<ChainMessage>
  publish: <T extends GossipTopic.precommit | GossipTopic.commit>(topic: T, message: GossipPayload[T]) => Promise<void>
  /** Opens the task's private stream to its oracle: tokens as they come, then the result. */
  openResultStream: (oracle: Address, taskId: string) => Promise<ResultStream>
  /** Concurrent tasks this miner takes (its inference sequences). */
  slots: number
  /** How often to look at the chain while waiting for the reveal phase. */
  pollingIntervalMs: number
}

type Phase = 'inferring' | 'precommitting' | 'awaitingReveal' | 'committing' | 'done' | 'lost' | 'failed'

interface MinedTask {
  task: Task
  phase: Phase
  stream?: ResultStream
  /** Set once inference finished: what the oracle got and what the chain will see revealed. */
  result?: MinerResult
}

type Internal =
  | {type: '$StreamOpened', taskId: string, stream?: ResultStream}
  | {type: '$Inferred', taskId: string, reply: InferenceReply}
  | {type: '$Precommitted', taskId: string, reply: SendReply}
  | {type: '$RevealCheck', taskId: string}
  | {type: '$TaskState', taskId: string, reply: ReadReply}
  | {type: '$Committed', taskId: string, reply: SendReply}

interface MiningState {
  modelsReady: Set<ModelId>
  inference?: ActorRef<InferenceMessage>
  tasks: Map<string, MinedTask>
  completed: number
  lost: number
  failed: number
}

/** Phases in which the miner holds an inference slot or is still settling a task. */
const ACTIVE: ReadonlySet<Phase> = new Set(['inferring', 'precommitting', 'awaitingReveal', 'committing'])
/** Finished tasks are kept a while so a re-gossiped task is not mined twice. */
const FINISHED_TASKS_KEPT = 1_000

/**
 * The miner's work loop: takes tasks for a loaded model when assigned (parallel) or when it
 * has a free slot (competing), runs inference, hands the result to the oracle, precommits on
 * gossip and on chain, waits for the chain's reveal phase, then commits (reveals).
 */
export function miningActor (init: MiningActorInit): ActorDefinition<MiningState, MiningMessage | Internal> {
  const {system} = init
  const chain = new ChainClient(system, init.chain)
  const self = (ctx: {self: ActorRef<any>}): ActorRef<Internal> => ctx.self

  return {
    name: 'mining',
    init: async () => ({modelsReady: new Set(), tasks: new Map(), completed: 0, lost: 0, failed: 0}),
    receive: (state, msg, ctx) => {
      const log = ctx.log
      const finish = (taskId: string, phase: 'done' | 'lost' | 'failed'): void => {
        const entry = state.tasks.get(taskId)
        if (entry == null) return
        entry.phase = phase
        if (phase === 'done') state.completed++
        else if (phase === 'lost') state.lost++
        else state.failed++
        if (state.tasks.size > FINISHED_TASKS_KEPT) {
          for (const [id, t] of state.tasks) {
            if (!ACTIVE.has(t.phase)) { state.tasks.delete(id); break }
          }
        }
      }
      const active = (): number => [...state.tasks.values()].filter(t => ACTIVE.has(t.phase)).length
      // Only inference takes a slot: a task waiting for the chain's reveal phase costs nothing.
      const inferring = (): number => [...state.tasks.values()].filter(t => t.phase === 'inferring').length

      switch (msg.type) {
        case 'ModelReady':
          state.modelsReady.add(msg.modelId)
          state.inference = msg.inference
          log.info({modelId: msg.modelId}, 'mining enabled for model')
          return state

        case 'TaskReceived': {
          const task = msg.task
          const assigned = task.assignees.includes(init.address)
          // A task is taken once; a re-gossiped task (reassignment) only matters to new assignees.
          if (state.tasks.has(task.taskId)) return state
          if (!state.modelsReady.has(task.modelId) || state.inference == null) { log.debug({taskId: task.taskId}, 'task for a model not loaded here'); return state }
          if (task.mode === 'parallel' && !assigned) return state
          if (task.deadline <= Date.now()) { log.debug({taskId: task.taskId}, 'task already past its deadline'); return state }
          if (task.mode === 'competing' && inferring() >= init.slots) { log.debug({taskId: task.taskId}, 'no free slot to compete'); return state }
          state.tasks.set(task.taskId, {task, phase: 'inferring'})
          log.info({taskId: task.taskId, mode: task.mode}, 'task taken')
          // The stream comes first so the oracle sees tokens as they are generated; without it
          // the work still counts on chain, the oracle just cannot hear about it early.
          init.openResultStream(task.oracle, task.taskId).then(
            stream => { system.tell(self(ctx), {type: '$StreamOpened', taskId: task.taskId, stream}) },
            (err: Error) => {
              log.warn({taskId: task.taskId, err: err.message}, 'no stream to the oracle; mining without it')
              system.tell(self(ctx), {type: '$StreamOpened', taskId: task.taskId})
            })
          return state
        }

        case '$StreamOpened': {
          const entry = state.tasks.get(msg.taskId)
          const inference = state.inference
          if (entry == null || inference == null) { msg.stream?.abort(new Error('task dropped')); return state }
          const {task} = entry
          const stream = msg.stream
          entry.stream = stream
          // The oracle hanging up (its client left) frees this slot at once.
          stream?.cancelled.addEventListener('abort', () => { system.tell(inference, {type: 'Cancel', jobId: task.taskId}) }, {once: true})
          system.ask<InferenceMessage, InferenceReply>(inference, replyTo => ({
            type: 'Run',
            job: {jobId: task.taskId, prompt: task.prompt, seed: task.seed, params: task.params},
            replyTo,
            onToken: stream == null ? undefined : (text: string) => { stream.token(text) }
          }), ASK_TIMEOUT_MS.inferenceRun).then(
            reply => { system.tell(self(ctx), {type: '$Inferred', taskId: task.taskId, reply}) },
            (err: Error) => { system.tell(self(ctx), {type: '$Inferred', taskId: task.taskId, reply: {type: 'Failed', jobId: task.taskId, code: 'ASK_FAILED', error: err.message}}) })
          return state
        }

        case '$Inferred': {
          const entry = state.tasks.get(msg.taskId)
          if (entry == null) return state
          if (msg.reply.type === 'Failed') {
            log.warn({taskId: msg.taskId, code: msg.reply.code, error: msg.reply.error}, 'inference failed; the oracle will reassign')
            entry.stream?.abort(new Error(`inference failed: ${msg.reply.code}`))
            finish(msg.taskId, 'failed')
            return state
          }
          const outcome = msg.reply.outcome
          if (outcome.finishReason === 'abort') {
            // Cut short because the oracle cancelled: a partial answer is never committed.
            log.info({taskId: msg.taskId}, 'task cancelled by the oracle')
            entry.stream?.abort(new Error('cancelled'))
            finish(msg.taskId, 'lost')
            return state
          }
          const salt = hexlify(randomBytes(32))
          const outputHash = outputHashOf(outcome.text)
          const commitment = commitmentFor(BigInt(msg.taskId), init.address, outputHash, salt)
          const task = entry.task
          const timings = {promptMs: outcome.timeToFirstTokenMs, generateMs: Math.max(0, outcome.durationMs - outcome.timeToFirstTokenMs)}
          const result: MinerResult = {taskId: task.taskId, miner: init.address, output: outcome.text, salt, outputHash, commitment, tokens: outcome.completionTokens, timings}
          entry.result = result
          entry.phase = 'precommitting'
          entry.stream?.finish(result)
            .catch((err: Error) => { log.warn({taskId: task.taskId, err: err.message}, 'could not deliver result to the oracle') })
          init.publish(GossipTopic.precommit, {taskId: task.taskId, miner: init.address, commitment, timestamp: Date.now()})
            .catch((err: Error) => { log.warn({taskId: task.taskId, err: err.message}, 'precommit gossip failed') })
          sendTx(ctx, msg.taskId, 'precommit', [BigInt(msg.taskId), commitment], '$Precommitted')
          return state
        }

        case '$Precommitted': {
          const entry = state.tasks.get(msg.taskId)
          if (entry == null) return state
          // Tasks are gossiped before their creation is mined: try again once the block is in.
          if (msg.reply.type === 'Reverted' && msg.reply.errorName === 'UnknownTask' && Date.now() < entry.task.deadline) {
            setTimeout(() => { sendTx(ctx, msg.taskId, 'precommit', [BigInt(msg.taskId), entry.result?.commitment], '$Precommitted') }, init.pollingIntervalMs)
            return state
          }
          if (msg.reply.type !== 'Mined') {
            // In competing mode other miners filled the slots first: an expected loss, not an error.
            const level = msg.reply.type === 'Reverted' && msg.reply.errorName === 'SlotsFull' ? 'info' : 'warn'
            log[level]({taskId: msg.taskId, reply: msg.reply}, 'precommit not accepted')
            finish(msg.taskId, 'lost')
            return state
          }
          entry.phase = 'awaitingReveal'
          system.tell(self(ctx), {type: '$RevealCheck', taskId: msg.taskId})
          return state
        }

        case '$RevealCheck': {
          void chain.read('cognitive', 'taskOf', [BigInt(msg.taskId)]).then(reply => { system.tell(self(ctx), {type: '$TaskState', taskId: msg.taskId, reply}) })
          return state
        }

        case '$TaskState': {
          const entry = state.tasks.get(msg.taskId)
          if (entry?.phase !== 'awaitingReveal') return state
          const taskState = msg.reply.type === 'Value' ? Number((msg.reply.value as {state: bigint}).state) : undefined
          if (taskState === TaskState.Precommitted) {
            entry.phase = 'committing'
            sendTx(ctx, msg.taskId, 'commit', [BigInt(msg.taskId), entry.result?.output ?? '', entry.result?.salt], '$Committed')
            return state
          }
          if (taskState != null && taskState >= TaskState.Committed) {
            log.warn({taskId: msg.taskId, taskState: taskStateName(taskState)}, 'task moved on without our reveal')
            finish(msg.taskId, 'lost')
            return state
          }
          if (Date.now() > entry.task.deadline) {
            log.warn({taskId: msg.taskId}, 'reveal phase never opened before the deadline')
            finish(msg.taskId, 'lost')
            return state
          }
          setTimeout(() => { system.tell(self(ctx), {type: '$RevealCheck', taskId: msg.taskId}) }, init.pollingIntervalMs)
          return state
        }

        case '$Committed': {
          const entry = state.tasks.get(msg.taskId)
          if (entry == null) return state
          if (msg.reply.type !== 'Mined') {
            log.warn({taskId: msg.taskId, reply: msg.reply}, 'commit not accepted')
            finish(msg.taskId, 'lost')
            return state
          }
          // Only a task with a result gets this far (precommit and commit send it).
          if (entry.result != null) {
            init.publish(GossipTopic.commit, {result: entry.result, timestamp: Date.now()})
              .catch((err: Error) => { log.warn({taskId: msg.taskId, err: err.message}, 'commit gossip failed') })
          }
          log.info({taskId: msg.taskId, tx: msg.reply.tx.hash}, 'task committed')
          finish(msg.taskId, 'done')
          return state
        }

        case 'GetStatus': {
          const status: MiningStatus = {modelsReady: [...state.modelsReady], active: active(), completed: state.completed, lost: state.lost, failed: state.failed, freeSlots: Math.max(0, init.slots - inferring())}
          system.tell(msg.replyTo, status)
          return state
        }

        default:
          return assertNever(msg, 'mining message')
      }
    }
  }

  function sendTx (ctx: {self: ActorRef<any>}, taskId: string, method: 'precommit' | 'commit', args: unknown[], replyType: '$Precommitted' | '$Committed'): void {
    void chain.send({label: `${method} ${taskId}`, contract: 'cognitive', method, args}).then(reply => { system.tell(self(ctx), {type: replyType, taskId, reply}) })
  }
}
