/** Why a request was not let in: its client's share is taken, or the node's. */
export type ConcurrencyRefusal = 'client' | 'total'

/**
 * Requests in flight per client and in all. A request takes its slots when it arrives and gives
 * them back when its response closes, so a client dripping its bodies uses up its own share only.
 */
export class ConcurrencyLimiter {
  private readonly inFlight = new Map<string, number>()
  private total = 0

  constructor (readonly perClient: number, readonly maxTotal: number) {}

  /** Takes a slot for `client`, or says which limit is reached; `release` once for each taken. */
  acquire (client: string): ConcurrencyRefusal | null {
    const held = this.inFlight.get(client) ?? 0
    if (held >= this.perClient) return 'client'
    if (this.total >= this.maxTotal) return 'total'
    this.inFlight.set(client, held + 1)
    this.total++
    return null
  }

  release (client: string): void {
    const held = this.inFlight.get(client) ?? 0
    if (held <= 0) return
    // Clients with nothing in flight leave no entry: the map stays as small as the live load.
    if (held === 1) this.inFlight.delete(client)
    else this.inFlight.set(client, held - 1)
    this.total--
  }

  held (client: string): number {
    return this.inFlight.get(client) ?? 0
  }
}
