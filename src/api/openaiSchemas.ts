import {Type} from 'typebox'
import {MAX_TOKENS_LIMIT, ModelFieldSchema, networkFieldSchemas} from './oracleSchemas.js'
import {nullable, optionalField} from './requestSchema.js'

/**
 * The OpenAI routes' schemas, as OpenAI documents its own (the fields this network reads; the
 * rest an OpenAI client sends is accepted and ignored). The network's knobs (`mode`,
 * `redundancy`) may ride along; its facts come back in the `cortensor` field.
 */
const sharedRequestFields = {
  model: ModelFieldSchema,
  max_tokens: optionalField(Type.Integer({minimum: 1, maximum: MAX_TOKENS_LIMIT})),
  n: optionalField(Type.Integer({description: 'Must be 1: each choice is a task of its own on this network'})),
  stream_options: optionalField(Type.Object({include_usage: optionalField(Type.Boolean())})),
  ...networkFieldSchemas
}

export const CompletionRequestSchema = Type.Object({
  prompt: Type.Union([Type.String({minLength: 1}), Type.Array(Type.String({minLength: 1}), {minItems: 1, maxItems: 1})]),
  ...sharedRequestFields
}, {title: 'CompletionRequest'})

const ChatMessageSchema = Type.Object({
  role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant')]),
  content: Type.Union([Type.String(), Type.Array(Type.Object({type: Type.Optional(Type.String()), text: Type.Optional(Type.String())}))])
})

export const ChatCompletionRequestSchema = Type.Object({
  messages: Type.Array(ChatMessageSchema, {minItems: 1}),
  max_completion_tokens: optionalField(Type.Integer({minimum: 1, maximum: MAX_TOKENS_LIMIT})),
  ...sharedRequestFields
}, {title: 'ChatCompletionRequest'})

const UsageSchema = Type.Object({prompt_tokens: Type.Integer({minimum: 0}), completion_tokens: Type.Integer({minimum: 0}), total_tokens: Type.Integer({minimum: 0})})
const FinishReasonSchema = Type.Union([Type.Literal('stop'), Type.Literal('length')])
const NetworkFieldsSchema = Type.Object({
  task_id: Type.String(), mode: Type.String(), redundancy: Type.Integer(), miners: Type.Array(Type.String()),
  agreement: nullable(Type.Object({status: Type.String()})), reassignments: Type.Array(Type.Object({})), txs: Type.Array(Type.Object({label: Type.String(), hash: Type.String()}))
}, {description: 'The network\'s facts: task, miners, their agreement and the transactions'})

export const CompletionSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('text_completion'),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(Type.Object({index: Type.Integer(), text: Type.String(), logprobs: Type.Null(), finish_reason: FinishReasonSchema})),
  usage: UsageSchema,
  cortensor: NetworkFieldsSchema
}, {title: 'Completion'})

export const ChatCompletionSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('chat.completion'),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(Type.Object({
    index: Type.Integer(),
    message: Type.Object({role: Type.Literal('assistant'), content: Type.String(), refusal: Type.Null()}),
    logprobs: Type.Null(),
    finish_reason: FinishReasonSchema
  })),
  usage: UsageSchema,
  cortensor: NetworkFieldsSchema
}, {title: 'ChatCompletion'})

export const ModelListSchema = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(Type.Object({
    id: Type.String({description: 'The name requests use'}),
    object: Type.Literal('model'),
    created: Type.Integer(),
    owned_by: Type.String(),
    cortensor: Type.Object({
      model_id: Type.String(), quantization: Type.String(), size_bytes: Type.Integer(), cid: Type.String(),
      miners: Type.Integer(), miners_loaded: Type.Integer(), verifiable: Type.Boolean()
    })
  }))
}, {title: 'ModelList'})
