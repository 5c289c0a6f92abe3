import {InferenceError} from './inferenceError.js'

interface Waiter<T> {
  resolve: (slot: T) => void
  reject: (err: Error) => void
  signal?: AbortSignal
  onAbort: () => void
}

function abortReason (signal: AbortSignal): string {
  const reason: unknown = signal.reason
  return reason instanceof Error ? reason.message : String(reason)
}

/**
 * A fixed set of slots handed out first come, first served. Bounds concurrency without
 * polling: a released slot goes straight to the oldest waiter. A waiter whose signal aborts
 * leaves the queue at once with an `ABORTED` error and never receives a slot.
 */
export class SlotPool<T> {
  private readonly free: T[]
  private readonly size: number
  private readonly waiters: Array<Waiter<T>> = []
  private closed = false

  constructor (slots: readonly T[]) {
    this.free = [...slots]
    this.size = slots.length
  }

  /** Slots held right now. */
  get inUse (): number {
    return this.size - this.free.length
  }

  /** Requests waiting for a slot. */
  get queued (): number {
    return this.waiters.length
  }

  async acquire (signal?: AbortSignal): Promise<T> {
    if (this.closed) throw new InferenceError({code: 'ENGINE_DISPOSED'})
    if (signal?.aborted === true) throw new InferenceError({code: 'ABORTED', reason: abortReason(signal)}, 'aborted before a slot was free')
    // FIFO fairness: a free slot only exists when nobody waits, so taking it never jumps the queue.
    const slot = this.free.shift()
    if (slot !== undefined) return slot
    return await new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          this.remove(waiter)
          reject(new InferenceError({code: 'ABORTED', reason: abortReason(signal as AbortSignal)}, 'aborted while queued for a slot'))
        }
      }
      signal?.addEventListener('abort', waiter.onAbort, {once: true})
      this.waiters.push(waiter)
    })
  }

  release (slot: T): void {
    const next = this.waiters.shift()
    if (next === undefined) {
      this.free.push(slot)
      return
    }
    next.signal?.removeEventListener('abort', next.onAbort)
    next.resolve(slot)
  }

  /** Refuses new requests and fails every waiter; slots in use are the holders' business. */
  close (): void {
    this.closed = true
    for (const waiter of this.waiters.splice(0)) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort)
      waiter.reject(new InferenceError({code: 'ENGINE_DISPOSED'}, 'engine disposed while the request was queued'))
    }
  }

  private remove (waiter: Waiter<T>): void {
    const index = this.waiters.indexOf(waiter)
    if (index >= 0) this.waiters.splice(index, 1)
  }
}
