/**
 * Base of every error the project throws on purpose (Lodestar's `LodestarError`): a stable
 * machine-readable `code` plus typed details, and the original `cause` kept.
 */
export class CortensorError<T extends {code: string}> extends Error {
  readonly type: T

  constructor (type: T, message?: string, options?: {cause?: unknown}) {
    super(message ?? type.code, options)
    this.type = type
    this.name = new.target.name
  }

  get code (): T['code'] {
    return this.type.code
  }
}
