/** Settles as `promise` does, or rejects with the signal's reason as soon as it aborts first. */
export async function abortable<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, {once: true})
    })])
  } finally {
    if (onAbort != null) signal.removeEventListener('abort', onAbort)
  }
}

/** Resolves once `signal` aborts (at once if it already has). */
export async function aborted (signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await new Promise<void>(resolve => { signal.addEventListener('abort', () => { resolve() }, {once: true}) })
}

/** `own`, or `own` and the caller's `signal` together when there is one: aborted by either. */
export function withCallerSignal (own: AbortSignal, signal: AbortSignal | null | undefined): AbortSignal {
  return signal == null ? own : AbortSignal.any([signal, own])
}
