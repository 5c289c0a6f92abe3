import {keccak256, toUtf8Bytes} from 'ethers'
import {toAddress} from './address.js'
import {ROLES} from './roles.js'
import {toModelId} from './modelId.js'
import {array, boolean, convert, float, type Infer, object, oneOf, type Schema, string, uint} from './schema.js'
import {GossipTopic} from './topic.js'

/** Field types shared by several messages. */
export const address = convert(string({minLength: 42, maxLength: 42}), toAddress, 'a 0x-prefixed 20-byte address')
export const bytes32 = string({minLength: 66, maxLength: 66, pattern: /^0x[0-9a-fA-F]{64}$/})
/** Chain task id (uint256) as a decimal string: msgpack has no integer that wide. */
export const taskId = string({minLength: 1, maxLength: 78, pattern: /^(0|[1-9][0-9]*)$/})
/** ModelRegistry id as a decimal string. */
export const modelIdSchema = convert(string({minLength: 1, maxLength: 78}), toModelId, 'a model registry id (decimal)')
/** Milliseconds since the Unix epoch. */
const unixMs = uint()

// Defined apart (no ethers behind it) for the command line; part of the wire messages' vocabulary.
export {ROLES, type Role} from './roles.js'

/** How a miner's generation ended (an aborted one is never handed in). */
export const FINISH_REASONS = ['stop', 'length'] as const
export type FinishReason = typeof FINISH_REASONS[number]

/** Parallel: the oracle assigns k miners. Competing: the first k miners to precommit take the slots. */
export const TASK_MODES = ['parallel', 'competing'] as const
export type TaskMode = typeof TASK_MODES[number]

/** Most assignees a task may have: bounds the work a single task message can ask for. */
export const MAX_TASK_REDUNDANCY = 32

/** Most models one node serves: what one heartbeat carries (and NodeStats' MAX_READY_MODELS). */
export const MAX_MODELS_PER_NODE = 32

/** The fields of every heartbeat; an oracle's adds what it hears (`oracleHeartbeatSchema`). */
const heartbeatFields = {
  role: oneOf(ROLES),
  address,
  peerId: string({minLength: 1, maxLength: 128}),
  /** Multiaddrs the node accepts connections on, so peers found through gossip can dial it. */
  addrs: array(string({minLength: 1, maxLength: 256}), {maxLength: 8}),
  /** The models the node serves now (a miner: it takes their tasks; a validator: it checks their outputs). */
  models: array(object({
    id: modelIdSchema,
    /** `<model sha256>/<build>/<backend>` (see determinismClass.ts): equal classes give byte-identical greedy output; '' while unknown. */
    determinismClass: string({maxLength: 160}),
    /** In memory now: a task for it starts without a model load. */
    loaded: boolean()
  }), {maxLength: MAX_MODELS_PER_NODE}),
  freeSlots: uint({max: 1024}),
  tokensPerSecond: float({min: 0, max: 1e7}),
  /** Strictly increasing per sender while it runs (start it at the boot time in ms). */
  seq: uint(),
  timestamp: unixMs
}

export const heartbeatSchema = object(heartbeatFields)

/** Most nodes an oracle heartbeat lists as heard. */
export const MAX_HEARD_NODES = 1024
/** Most verdicts an oracle heartbeat carries, and the longest reason of one. */
export const MAX_HEARTBEAT_VERDICTS = 32
export const MAX_VERDICT_REASON_CHARS = 200

/** An oracle's negative verdict on a miner's output: `rejected` failed verification, `disagreed` was outvoted. */
export const NEGATIVE_VERDICTS = ['rejected', 'disagreed'] as const
export type NegativeVerdict = typeof NEGATIVE_VERDICTS[number]

/**
 * An oracle's heartbeat: also what it hears, so a miner can tell why it gets no work. `heard`:
 * the nodes whose heartbeats reached it within the last few intervals; `verdicts`: its recent
 * negative verdicts on miners' outputs, each with the reason.
 */
export const oracleHeartbeatSchema = object({
  ...heartbeatFields,
  heard: array(address, {maxLength: MAX_HEARD_NODES}),
  verdicts: array(object({
    taskId,
    miner: address,
    verdict: oneOf(NEGATIVE_VERDICTS),
    reason: string({maxLength: MAX_VERDICT_REASON_CHARS})
  }), {maxLength: MAX_HEARTBEAT_VERDICTS})
})

export const samplingParamsSchema = object({
  maxTokens: uint({min: 1, max: 1 << 16}),
  temperature: float({min: 0, max: 10}),
  topK: uint({max: 1000}),
  topP: float({min: 0, max: 1})
})

export const taskSchema = object({
  taskId,
  modelId: modelIdSchema,
  prompt: string({minLength: 1, maxLength: 100_000}),
  params: samplingParamsSchema,
  seed: uint({max: 0xffff_ffff}),
  mode: oneOf(TASK_MODES),
  /** Miners wanted: the assignees in parallel mode, the first k precommits in competing mode. */
  k: uint({min: 1, max: MAX_TASK_REDUNDANCY}),
  /** Parallel mode: exactly k miners. Competing mode: empty (any ready miner may compete). */
  assignees: array(address, {maxLength: MAX_TASK_REDUNDANCY}),
  /** The chain's precommit deadline: past it, a miner that precommitted may reveal though slots stayed empty. */
  precommitDeadline: unixMs,
  /** The chain's commit deadline: no work on the task counts after it. */
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

const timings = object({
  promptMs: float({min: 0, max: 86_400_000}),
  generateMs: float({min: 0, max: 86_400_000})
})

/** A miner's finished work on a task: what it hands its oracle, and later reveals on chain. */
export const minerResultSchema = object({
  taskId,
  miner: address,
  output: string({maxLength: 200_000}),
  salt: bytes32,
  /** `outputHashOf(output)`. */
  outputHash: bytes32,
  /** keccak256(taskId, miner, outputHash, salt): the precommitment it opens. */
  commitment: bytes32,
  /** The generated token ids: what a verifier scores (`output` must be exactly what they decode to). */
  tokenIds: array(uint({max: 1 << 24}), {maxLength: 1 << 16}),
  /**
   * Why generation ended: `stop`, the model chose to (its end token is checked); `length`,
   * maxTokens or the context was reached.
   */
  finishReason: oneOf(FINISH_REASONS),
  /** The class the work ran in, declared by the miner (its stream and reveal are authenticated): outputs of one class must match exactly. */
  determinismClass: string({minLength: 1, maxLength: 160}),
  timings
})

/** The reveal, gossiped once the miner's commit transaction is mined. */
export const commitSchema = object({
  result: minerResultSchema,
  timestamp: unixMs
})

export type Heartbeat = Infer<typeof heartbeatSchema>
export type OracleHeartbeat = Infer<typeof oracleHeartbeatSchema>
/** What an oracle's heartbeat adds to a heartbeat. */
export type OracleHearing = Pick<OracleHeartbeat, 'heard' | 'verdicts'>
export type HeartbeatVerdict = OracleHeartbeat['verdicts'][number]
/** One model a node serves, as its heartbeat tells it. */
export type ServedModel = Heartbeat['models'][number]
/** How tokens are chosen: the one shape of the sampling settings, from the API to the engine. */
export type SamplingParams = Infer<typeof samplingParamsSchema>
export type Task = Infer<typeof taskSchema>
export type Precommit = Infer<typeof precommitSchema>
export type MinerResult = Infer<typeof minerResultSchema>
export type Commit = Infer<typeof commitSchema>

/** Greedy decoding of up to `maxTokens` tokens: deterministic, byte-identical across runs. */
export function greedy (maxTokens: number): SamplingParams {
  return {maxTokens, temperature: 0, topK: 0, topP: 1}
}

/** The payload type of each topic. */
export interface GossipPayload {
  [GossipTopic.heartbeat]: Heartbeat
  [GossipTopic.oracleHeartbeat]: OracleHeartbeat
  [GossipTopic.task]: Task
  [GossipTopic.precommit]: Precommit
  [GossipTopic.commit]: Commit
}

export const GOSSIP_SCHEMAS: {[K in GossipTopic]: Schema<GossipPayload[K]>} = {
  [GossipTopic.heartbeat]: heartbeatSchema,
  [GossipTopic.oracleHeartbeat]: oracleHeartbeatSchema,
  [GossipTopic.task]: taskSchema,
  [GossipTopic.precommit]: precommitSchema,
  [GossipTopic.commit]: commitSchema
}

/** The output hash revealed at commit and bound by the precommit: keccak256 of the UTF-8 output. */
export function outputHashOf (output: string): string {
  return keccak256(toUtf8Bytes(output))
}
