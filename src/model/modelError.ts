import {CortensorError} from '../util/cortensorError.js'

/** Why a model could not be added, fetched or verified; `expected`/`actual` name the two sides of a mismatch. */
export type ModelErrorType =
  | {code: 'HASH_MISMATCH', path: string, expected: string, actual: string}
  | {code: 'SIZE_MISMATCH', path: string, expected: number, actual: number}
  | {code: 'FILE_NOT_FOUND', path: string}
  | {code: 'INVALID_DESCRIPTOR', reason: string}
  | {code: 'NOT_A_FILE', cid: string}
  | {code: 'FETCH_ABORTED', cid: string, bytes: number, total: number}
  | {code: 'FETCH_STALLED', cid: string, bytes: number, total: number, stallTimeoutMs: number}
  | {code: 'FETCH_FAILED', cid: string}

export class ModelError extends CortensorError<ModelErrorType> {}
