/**
 * Keys seen recently, forgotten after `ttlMs` and bounded to `maxEntries` (oldest first), so
 * duplicate detection cannot grow without limit under a flood.
 */
export class SeenCache {
  private readonly entries = new Map<string, number>()

  constructor (private readonly ttlMs: number, private readonly maxEntries: number) {}

  has (key: string, now: number): boolean {
    const at = this.entries.get(key)
    return at != null && now - at < this.ttlMs
  }

  add (key: string, now: number): void {
    this.entries.delete(key)
    this.entries.set(key, now)
    this.prune(now)
  }

  get size (): number {
    return this.entries.size
  }

  private prune (now: number): void {
    // Map iterates in insertion order, and `add` re-inserts, so the first entries are the oldest.
    for (const [key, at] of this.entries) {
      if (this.entries.size <= this.maxEntries && now - at < this.ttlMs) break
      this.entries.delete(key)
    }
  }
}
