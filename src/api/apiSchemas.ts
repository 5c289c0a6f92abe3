import {Type} from 'typebox'

/** OpenAI's error shape, which every route answers failures with (see `errorBody`). */
export const ErrorBodySchema = Type.Object({
  error: Type.Object({
    message: Type.String({description: 'One line naming what was wrong'}),
    type: Type.String({description: 'OpenAI\'s error type: invalid_request_error, authentication_error, not_found_error, unavailable_error, server_error…'}),
    param: Type.Union([Type.String(), Type.Null()], {description: 'The request field at fault, e.g. max_tokens or messages[0].role'}),
    code: Type.String({description: 'Stable machine-readable code, e.g. INVALID_FIELD, TOO_MANY_REQUESTS, RATE_LIMITED'})
  })
}, {title: 'Error'})

export const ClientUsageSchema = Type.Object({
  token: Type.String({description: 'The token\'s id (tok_ and 8 hex digits of its SHA-256), or the client\'s IP when the node takes no tokens'}),
  requests: Type.Integer({minimum: 0}),
  prompt_tokens: Type.Integer({minimum: 0}),
  completion_tokens: Type.Integer({minimum: 0})
}, {title: 'ClientUsage'})

/** The calling token's usage, or, on a node that takes no tokens, every client's. */
export const UsageReportSchema = Type.Union([
  ClientUsageSchema,
  Type.Object({clients: Type.Array(ClientUsageSchema)})
])
