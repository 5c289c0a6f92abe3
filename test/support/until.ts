/** How `waitFor` polls: in-process conditions are cheap to check, so the default poll is short. */
export interface WaitOptions {
  /** Fail after this long (default 10 s). */
  timeoutMs?: number
  /** Check this often (default 20 ms). */
  intervalMs?: number
}

/**
 * The one polling loop behind `until` and `waitFor`: runs `probe` every `intervalMs` until it
 * returns a value; fails naming `what` after `timeoutMs`.
 */
async function poll<T> (what: string, timeoutMs: number, intervalMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

/** Polls `probe` every 200 ms (it usually asks another process) until it returns a value; fails naming `what` after `timeoutMs`. */
export async function until<T> (what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  return await poll(what, timeoutMs, 200, probe)
}

/** Polls `condition` until it holds; fails naming `what` after `opts.timeoutMs`. */
export async function waitFor (what: string, condition: () => boolean | Promise<boolean>, opts: WaitOptions = {}): Promise<void> {
  await poll(what, opts.timeoutMs ?? 10_000, opts.intervalMs ?? 20, async () => await condition() ? true : undefined)
}
