import {CortensorError} from '../util/cortensorError.js'

/**
 * Why the inference layer refused or failed a call. Sizes are carried so the API can tell a
 * user exactly how far over the limit a prompt is.
 */
export type InferenceErrorType =
  | {code: 'PROMPT_TOO_LONG', promptTokens: number, contextSize: number}
  | {code: 'INVALID_REQUEST', reason: string}
  /** Aborted before the request got a slot: it never ran. Aborts after that end with finishReason 'abort'. */
  | {code: 'ABORTED', reason: string}
  | {code: 'ENGINE_DISPOSED'}
  | {code: 'GENERATION_FAILED'}
  | {code: 'BINARY_NOT_FOUND', gpu: boolean}
  | {code: 'MODEL_LOAD_FAILED', modelPath: string}
  | {code: 'MODEL_UNAVAILABLE', uri: string, directory: string}

export class InferenceError extends CortensorError<InferenceErrorType> {}
