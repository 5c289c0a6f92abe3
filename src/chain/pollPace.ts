/** How long after the last sign of activity a poller keeps its fast pace. */
export const BUSY_WINDOW_MS = 30_000
/** The pace of an idle poller, unless the configured one is slower. */
export const IDLE_POLL_MS = 2_000

/**
 * The interval of a chain poller: `fastMs` while the chain is doing something this node cares
 * about (within `windowMs` of the last `busy()`), `idleMs` otherwise. An idle node then asks
 * the RPC endpoint for the head every 2 s rather than every 250 ms: each poll through ethers
 * costs about a millisecond of CPU, and a quiet network has nothing to report.
 */
export class PollPace {
  private busyUntil: number
  readonly idleMs: number

  constructor (readonly fastMs: number, private readonly now: () => number = Date.now, idleMs = IDLE_POLL_MS, private readonly windowMs = BUSY_WINDOW_MS) {
    this.idleMs = Math.max(fastMs, idleMs)
    // A node starting up (registering, catching up) is busy.
    this.busyUntil = this.now() + windowMs
  }

  /** Something happened (a new block with our events, a transaction of ours): poll fast for a while. */
  busy (): void {
    this.busyUntil = Math.max(this.busyUntil, this.now() + this.windowMs)
  }

  get isBusy (): boolean {
    return this.now() < this.busyUntil
  }

  interval (): number {
    return this.isBusy ? this.fastMs : this.idleMs
  }

  /**
   * Time to the next poll: to the next multiple of the interval on the clock, so a node's
   * pollers (its chain watcher and access cache) ask at the same moments and share one head
   * request (`RpcEndpoints.head`).
   */
  nextDelay (): number {
    const interval = this.interval()
    return interval - (this.now() % interval)
  }
}
