import {Type} from 'typebox'
import {MAX_TASK_REDUNDANCY, TASK_MODES} from '../protocols/messages.js'
import {nullable, optionalField} from './requestSchema.js'

/**
 * The router API's schemas: what `/api/v1/*` takes and answers. Requests are validated against
 * them; every schema lands in `/openapi.json`. Objects accept fields they do not name.
 */
/** The network's knobs and sampling settings, shared by the router API and the OpenAI routes. */
export const networkFieldSchemas = {
  mode: optionalField(Type.Union(TASK_MODES.map(mode => Type.Literal(mode)), {description: 'parallel: k miners answer and the majority wins; competing: the first answer wins'})),
  redundancy: optionalField(Type.Integer({minimum: 1, maximum: MAX_TASK_REDUNDANCY, description: 'How many miners run the task (k)'})),
  seed: optionalField(Type.Integer({minimum: 0, maximum: 0xffff_ffff})),
  temperature: optionalField(Type.Number({minimum: 0, maximum: 10})),
  top_k: optionalField(Type.Integer({minimum: 0, maximum: 1000})),
  top_p: optionalField(Type.Number({minimum: 0, maximum: 1})),
  stream: optionalField(Type.Boolean({description: 'Answer with server-sent events as verified text arrives'}))
}

/** A model by its registry name or id; the oracle's first model when left out. */
export const ModelFieldSchema = optionalField(Type.Union([Type.String({minLength: 1}), Type.Integer({minimum: 0})], {description: 'Registry name or id of the model'}))

export const MAX_TOKENS_LIMIT = 4096

export const RouterCompletionRequestSchema = Type.Object({
  prompt: Type.String({minLength: 1}),
  model: ModelFieldSchema,
  max_tokens: optionalField(Type.Integer({minimum: 1, maximum: MAX_TOKENS_LIMIT})),
  ...networkFieldSchemas
}, {title: 'RouterCompletionRequest'})

const TxRefSchema = Type.Object({label: Type.String(), hash: Type.String(), blockNumber: Type.Integer()})
const AgreementSchema = Type.Object({
  status: Type.Union([Type.Literal('agreed'), Type.Literal('disagreed')]),
  agreeing: Type.Array(Type.String()),
  dissenting: Type.Array(Type.String()),
  verified: Type.Boolean(),
  rejected: Type.Array(Type.String())
})
const ReassignmentSchema = Type.Object({from: Type.String(), to: Type.String(), reason: Type.String()})

export const RouterCompletionSchema = Type.Object({
  task_id: Type.String(),
  answer: nullable(Type.String()),
  mode: Type.Union(TASK_MODES.map(mode => Type.Literal(mode))),
  redundancy: Type.Integer(),
  miners: Type.Array(Type.String()),
  agreement: nullable(AgreementSchema),
  reassignments: Type.Array(ReassignmentSchema),
  completion_tokens: Type.Integer({minimum: 0}),
  timings: Type.Object({total_ms: Type.Number(), gossip_ms: nullable(Type.Number()), first_token_ms: nullable(Type.Number()), first_result_ms: nullable(Type.Number())}),
  txs: Type.Array(TxRefSchema)
}, {title: 'RouterCompletion'})

export const TaskRecordSchema = Type.Object({
  taskId: Type.String(),
  phase: Type.Union(['running', 'settling', 'ended', 'expired', 'failed'].map(p => Type.Literal(p))),
  mode: Type.Union(TASK_MODES.map(mode => Type.Literal(mode))),
  k: Type.Integer(),
  modelId: Type.String(),
  prompt: Type.String(),
  params: Type.Object({maxTokens: Type.Integer(), temperature: Type.Number(), topK: Type.Integer(), topP: Type.Number()}),
  seed: Type.Integer(),
  assignees: Type.Array(Type.String()),
  reassignments: Type.Array(ReassignmentSchema),
  precommits: Type.Array(Type.Object({miner: Type.String(), commitment: Type.String(), at: Type.Number()})),
  results: Type.Array(Type.Object({miner: Type.String(), outputHash: Type.String(), tokens: Type.Integer(), determinismClass: Type.String(), receivedAt: Type.Number()})),
  reveals: Type.Array(Type.Object({miner: Type.String(), outputHash: Type.String(), at: Type.Number()})),
  answer: Type.Optional(Type.String()),
  agreement: Type.Optional(AgreementSchema),
  timings: Type.Object({requestedAt: Type.Number()}, {description: 'Epoch milliseconds of each step reached: requestedAt, broadcastAt, createdAt, firstTokenAt, firstResultAt, answeredAt, settledAt'}),
  txs: Type.Array(TxRefSchema),
  trail: Type.Array(Type.Object({contract: Type.String(), name: Type.String(), args: Type.Object({}), txHash: Type.String(), blockNumber: Type.Integer(), logIndex: Type.Integer()}), {description: 'The task\'s contract events, decoded, in chain order'}),
  error: Type.Optional(Type.String())
}, {title: 'TaskRecord'})

export const TaskParamsSchema = Type.Object({id: Type.String({description: 'The task id (a decimal number)'})})

const ServedModelSchema = Type.Object({id: Type.String(), loaded: Type.Boolean()})

export const MinerSummarySchema = Type.Object({
  address: Type.String(),
  peerId: Type.String(),
  models: Type.Array(ServedModelSchema),
  freeSlots: Type.Integer(),
  tokensPerSecond: Type.Number(),
  seenAt: Type.Number(),
  heartbeatAgeMs: Type.Number(),
  chain: nullable(Type.Object({}, {description: 'NodeStats counters on chain, as decimal strings'})),
  earnedWei: Type.String({description: 'Wei paid to this miner by the tasks this oracle settled'})
}, {title: 'MinerSummary'})

export const ModelStatusSchema = Type.Object({
  id: Type.String(), name: Type.String(), cid: Type.String(), sha256: Type.String(), sizeBytes: Type.Integer(), quantization: Type.String(), active: Type.Boolean(),
  miners: Type.Integer({description: 'Live miners serving it'}), loaded: Type.Integer({description: 'Of them, those holding it in memory'}), verifiable: Type.Boolean()
})

export const InfoSchema = Type.Object({
  network: Type.String(),
  chain: Type.Object({chainId: Type.Integer(), rpcUrl: Type.String(), deployBlock: Type.Integer()}),
  contracts: Type.Record(Type.String(), Type.String()),
  defaultModel: Type.String(),
  contextSize: Type.Integer(),
  models: Type.Array(ModelStatusSchema)
}, {title: 'NetworkInfo'})
