/** A miner's record on chain (NodeStats counters), as the oracle reads it. */
export interface MinerRecord {
  agreed: bigint
  disagreed: bigint
  expired: bigint
  /** Outputs that failed verification or an audit: proven lies. */
  rejected: bigint
  /** Seconds since the Unix epoch of its last NodeStats ping (0: never). */
  lastPingAt: bigint
  /** The contract's rule: too many proven faults, no more work until an admin reinstates it. */
  suspended: boolean
}

export interface Reputation {
  /** 0…1: the chance-like score miners are picked by (1 = a long clean record, online). */
  score: number
  suspended: boolean
}

/** How much one proven lie weighs against agreed work: cheating must cost more than it earns. */
const LIE_WEIGHT = 10
/** Prior: a new miner starts at 1/2 and earns its way up. */
const PRIOR_GOOD = 1
const PRIOR_BAD = 1

/**
 * Reputation from the chain's counters and ping uptime: good work over all work, with missed
 * tasks counted once and proven lies ten times, halved when the miner has not pinged within
 * `pingWindowS` (a node that stopped reporting is less likely to be there). Pure, so selection
 * and the API agree on it.
 */
export function reputationOf (r: MinerRecord, nowS: number, pingWindowS: number): Reputation {
  const good = Number(r.agreed) + PRIOR_GOOD
  const bad = Number(r.disagreed) + Number(r.expired) + LIE_WEIGHT * Number(r.rejected) + PRIOR_BAD
  const online = r.lastPingAt > 0n && nowS - Number(r.lastPingAt) <= pingWindowS ? 1 : 0.5
  return {score: r.suspended ? 0 : (good / (good + bad)) * online, suspended: r.suspended}
}
