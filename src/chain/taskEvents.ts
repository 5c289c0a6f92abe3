import {toAddress, type Address} from '../protocols/address.js'
import type {TaskMode} from '../protocols/messages.js'
import type {DecodedEvent} from './chainWatcher.js'
import {TASK_MODE_CODE, TaskState} from './enums.js'

/**
 * The Cognitive events the task state machines (oracle, miner) act on, as one closed domain
 * union: ids and amounts as decimal strings, addresses in their one form, modes by name,
 * deadlines in unix seconds. Events the machines do not need (PayoutDeferred, Withdrawn) and
 * payloads they do not read (a commit's output) are left out.
 */
export type TaskEvent =
  /** With the prompt (`input`), the sampling params as hex bytes (UTF-8 JSON) and the seed: enough to run the task from the chain alone. */
  | {type: 'TaskCreated', taskId: string, oracle: Address, modelId: string, mode: TaskMode, k: number, input: string, params: string, seed: number, precommitDeadline: number, commitDeadline: number, escrow: string}
  | {type: 'TaskStateChanged', taskId: string, state: TaskState}
  | {type: 'MinerAssigned', taskId: string, miner: Address, slot: number}
  | {type: 'MinerReassigned', taskId: string, from: Address, to: Address}
  | {type: 'TaskPrecommitted', taskId: string, miner: Address, commitment: string}
  | {type: 'TaskCommitted', taskId: string, miner: Address, outputHash: string}
  | {type: 'TaskEnded', taskId: string, winners: Address[], payoutEach: string, refund: string}
  | {type: 'TaskExpired', taskId: string, refund: string}

export type TaskEventType = TaskEvent['type']

/** A task event with where it happened on chain; `(blockNumber, logIndex)` orders and identifies it. */
export interface WatchedEvent {
  event: TaskEvent
  blockNumber: number
  txHash: string
  logIndex: number
}

const MODE_OF_CODE = new Map<number, TaskMode>((Object.keys(TASK_MODE_CODE) as TaskMode[]).map(mode => [TASK_MODE_CODE[mode], mode]))
const TASK_STATES = new Set<number>(Object.values(TaskState))

/** Decimal text of a decoded integer (the decoder hands integers over as decimal strings). */
const dec = (value: unknown): string => BigInt(value as string | bigint | number).toString()
const num = (value: unknown): number => Number(dec(value))
const addr = (value: unknown): Address => toAddress(value as string)
const hex = (value: unknown): string => (value as string).toLowerCase()

/**
 * The domain form of a decoded Cognitive log; undefined for any other contract or event, or for
 * a mode or state code this build does not know (a newer contract), which the watcher skips.
 */
export function toTaskEvent (decoded: DecodedEvent): TaskEvent | undefined {
  if (decoded.contract !== 'cognitive') return undefined
  const a = decoded.args
  switch (decoded.name) {
    case 'TaskCreated': {
      const mode = MODE_OF_CODE.get(num(a.mode))
      if (mode === undefined) return undefined
      return {
        type: 'TaskCreated', taskId: dec(a.taskId), oracle: addr(a.oracle), modelId: dec(a.modelId), mode, k: num(a.k),
        input: String(a.input), params: hex(a.params), seed: num(a.seed), precommitDeadline: num(a.precommitDeadline), commitDeadline: num(a.commitDeadline), escrow: dec(a.escrow)
      }
    }
    case 'TaskStateChanged': {
      const state = num(a.state)
      if (!TASK_STATES.has(state)) return undefined
      return {type: 'TaskStateChanged', taskId: dec(a.taskId), state: state as TaskState}
    }
    case 'MinerAssigned':
      return {type: 'MinerAssigned', taskId: dec(a.taskId), miner: addr(a.miner), slot: num(a.slot)}
    case 'MinerReassigned':
      return {type: 'MinerReassigned', taskId: dec(a.taskId), from: addr(a.from), to: addr(a.to)}
    case 'TaskPrecommitted':
      return {type: 'TaskPrecommitted', taskId: dec(a.taskId), miner: addr(a.miner), commitment: hex(a.commitment)}
    case 'TaskCommitted':
      return {type: 'TaskCommitted', taskId: dec(a.taskId), miner: addr(a.miner), outputHash: hex(a.outputHash)}
    case 'TaskEnded':
      return {type: 'TaskEnded', taskId: dec(a.taskId), winners: (a.winners as unknown[]).map(addr), payoutEach: dec(a.payoutEach), refund: dec(a.refund)}
    case 'TaskExpired':
      return {type: 'TaskExpired', taskId: dec(a.taskId), refund: dec(a.refund)}
    default:
      return undefined
  }
}
