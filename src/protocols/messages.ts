import {keccak256, toUtf8Bytes} from 'ethers'
import {array, float, type Infer, object, oneOf, type Schema, string, uint} from './schema.js'
import {GossipTopic} from './topic.js'

/** Field types shared by several messages. */
export const address = string({minLength: 42, maxLength: 42, pattern: /^0x[0-9a-fA-F]{40}$/})
export const bytes32 = string({minLength: 66, maxLength: 66, pattern: /^0x[0-9a-fA-F]{64}$/})
/** Chain task id (uint256) as a decimal string: msgpack has no integer that wide. */
export const taskId = string({minLength: 1, maxLength: 78, pattern: /^(0|[1-9][0-9]*)$/})
/** Model id as registered on chain (decimal id or name). */
const modelId = string({minLength: 1, maxLength: 128})
/** Milliseconds since the Unix epoch. */
const unixMs = uint()

export const NODE_ROLES = ['oracle', 'miner'] as const
export type NodeRole = typeof NODE_ROLES[number]

export const TASK_MODES = ['parallel', 'competing'] as const
export type TaskMode = typeof TASK_MODES[number]

/** Most assignees a task may have: bounds the work a single task message can ask for. */
export const MAX_TASK_REDUNDANCY = 32

export const heartbeatSchema = object({
  role: oneOf(NODE_ROLES),
  address,
  peerId: string({minLength: 1, maxLength: 128}),
  /** Multiaddrs the node accepts connections on, so peers found through gossip can dial it. */
  addrs: array(string({minLength: 1, maxLength: 256}), {maxLength: 8}),
  modelsReady: array(modelId, {maxLength: 32}),
  freeSlots: uint({max: 1024}),
  tokensPerSecond: float({min: 0, max: 1e7}),
  /** Inference build + hardware class, e.g. `llama.cpp-b1234/cpu-x64`: equal classes give byte-identical greedy output. */
  determinismClass: string({minLength: 1, maxLength: 128}),
  /** Strictly increasing per sender while it runs (start it at the boot time in ms). */
  seq: uint(),
  timestamp: unixMs
})

export const samplingParamsSchema = object({
  maxTokens: uint({min: 1, max: 1 << 16}),
  temperature: float({min: 0, max: 10}),
  topK: uint({max: 1000}),
  topP: float({min: 0, max: 1})
})

export const taskSchema = object({
  taskId,
  modelId,
  prompt: string({minLength: 1, maxLength: 100_000}),
  params: samplingParamsSchema,
  seed: uint({max: 0xffff_ffff}),
  mode: oneOf(TASK_MODES),
  /** Miners wanted: the assignees in parallel mode, the first k precommits in competing mode. */
  k: uint({min: 1, max: MAX_TASK_REDUNDANCY}),
  /** Parallel mode: exactly k miners. Competing mode: empty (any ready miner may compete). */
  assignees: array(address, {maxLength: MAX_TASK_REDUNDANCY}),
  deadline: unixMs,
  oracle: address,
  createdAt: unixMs
})

export const precommitSchema = object({
  taskId,
  miner: address,
  /** keccak256(taskId, miner, outputHash, salt), as checked by the Cognitive contract at commit. */
  commitment: bytes32,
  timestamp: unixMs
})

export const commitSchema = object({
  taskId,
  miner: address,
  output: string({maxLength: 200_000}),
  salt: bytes32,
  /** `outputHashOf(output)`. */
  outputHash: bytes32,
  /** Tokens generated. */
  tokens: uint({max: 1 << 20}),
  timings: object({
    promptMs: float({min: 0, max: 86_400_000}),
    generateMs: float({min: 0, max: 86_400_000})
  }),
  timestamp: unixMs
})

export type Heartbeat = Infer<typeof heartbeatSchema>
export type SamplingParams = Infer<typeof samplingParamsSchema>
export type Task = Infer<typeof taskSchema>
export type Precommit = Infer<typeof precommitSchema>
export type Commit = Infer<typeof commitSchema>

/** The payload type of each topic. */
export interface GossipPayload {
  [GossipTopic.heartbeat]: Heartbeat
  [GossipTopic.task]: Task
  [GossipTopic.precommit]: Precommit
  [GossipTopic.commit]: Commit
}

export const GOSSIP_SCHEMAS: {[K in GossipTopic]: Schema<GossipPayload[K]>} = {
  [GossipTopic.heartbeat]: heartbeatSchema,
  [GossipTopic.task]: taskSchema,
  [GossipTopic.precommit]: precommitSchema,
  [GossipTopic.commit]: commitSchema
}

/** The output hash revealed at commit and bound by the precommit: keccak256 of the UTF-8 output. */
export function outputHashOf (output: string): string {
  return keccak256(toUtf8Bytes(output))
}
