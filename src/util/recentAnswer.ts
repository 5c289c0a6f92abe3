/**
 * One request's answer shared by every caller for a while: a caller asking within `maxAgeMs`
 * of the last request (or while it is still in flight) gets that request's answer. A failed
 * request is forgotten at once, so the next caller asks again.
 */
export class RecentAnswer<T> {
  private last: {at: number, value: Promise<T>} | undefined

  async get (maxAgeMs: number, ask: () => Promise<T>): Promise<T> {
    const now = performance.now()
    if (this.last == null || now - this.last.at >= maxAgeMs) {
      const entry = {at: now, value: ask()}
      this.last = entry
      entry.value.catch(() => { if (this.last === entry) this.last = undefined })
    }
    return await this.last.value
  }
}
