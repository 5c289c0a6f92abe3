import type {Address} from '../../protocols/address.js'
import type {ServedModel} from '../../protocols/messages.js'
import type {ModelId} from '../../protocols/modelId.js'
import type {Reputation} from './reputation.js'

/** What the oracle knows of a miner from its latest gossip heartbeat. */
export interface MinerView {
  address: Address
  peerId: string
  /** The models it serves, each with its class and whether it is loaded. */
  models: ServedModel[]
  freeSlots: number
  tokensPerSecond: number
  /** Local receive time of the latest heartbeat (ms). */
  seenAt: number
  /** From its chain record (reputation.ts); undefined until first read. */
  reputation?: Reputation
}

export interface SelectionInput {
  miners: Iterable<MinerView>
  modelId: ModelId
  k: number
  now: number
  /** Heartbeats older than this mean the miner is gone. */
  maxHeartbeatAgeMs: number
  /** The chain's view (IAM active + ACL miner role), from the access cache. */
  isAdmitted: (address: Address) => boolean
  exclude?: ReadonlySet<Address>
  /** Tasks handed to each miner recently; spreads work instead of hammering the fastest. */
  recentAssignments: ReadonlyMap<Address, number>
}

/** Live, admitted miners serving the model, busy or not: whether waiting for a free one can help. */
export function capableMiners (input: SelectionInput): MinerView[] {
  const capable: MinerView[] = []
  for (const miner of input.miners) {
    if (input.exclude?.has(miner.address) === true) continue
    if (input.now - miner.seenAt > input.maxHeartbeatAgeMs) continue
    if (!miner.models.some(m => m.id === input.modelId)) continue
    if (!input.isAdmitted(miner.address)) continue
    if (miner.reputation?.suspended === true) continue
    capable.push(miner)
  }
  return capable
}

/** Reputation steps that outrank load: a miner in a lower step is picked only when better ones are busy. */
const REPUTATION_STEPS = 4

/**
 * The miners able to take a task now, best first: by reputation step, then those with the
 * model in memory (no load before the first token), then least loaded.
 */
export function eligibleMiners (input: SelectionInput): MinerView[] {
  const eligible = capableMiners(input).filter(m => m.freeSlots > 0)
  const load = (m: MinerView): number => input.recentAssignments.get(m.address) ?? 0
  // Unknown yet (no chain read): the score of a new miner.
  const step = (m: MinerView): number => Math.round((m.reputation?.score ?? 0.5) * REPUTATION_STEPS)
  const loaded = (m: MinerView): number => m.models.some(s => s.id === input.modelId && s.loaded) ? 1 : 0
  return eligible.sort((a, b) => step(b) - step(a) || loaded(b) - loaded(a) || load(a) - load(b) || b.freeSlots - a.freeSlots || b.tokensPerSecond - a.tokensPerSecond || a.address.localeCompare(b.address))
}

/** Picks k distinct miners for a parallel task, or null when fewer than k can take it. */
export function selectMiners (input: SelectionInput): Address[] | null {
  const eligible = eligibleMiners(input)
  if (eligible.length < input.k) return null
  return eligible.slice(0, input.k).map(m => m.address)
}
