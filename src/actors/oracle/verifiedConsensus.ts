import type {Address} from '../../protocols/address.js'

/** One miner's result as consensus weighs it: its output hash, declared class and verifier verdict. */
export interface WeighedResult {
  miner: Address
  outputHash: string
  determinismClass: string
  /** Undefined while the verifier has not answered. */
  accepted?: boolean
}

export type VerifiedDecision =
  | {status: 'pending', reason: string}
  /** `answerMiner`'s output is the answer; `accepted` are paid, `rejected` recorded as faults. */
  | {status: 'decided', answerMiner: Address, accepted: Address[], rejected: Address[], outvoted: Address[]}
  /** No output survived verification. */
  | {status: 'none', rejected: Address[], outvoted: Address[]}

/**
 * Consensus that a colluding majority cannot win: the verifier judges every output against
 * the model; hashes only break ties within one determinism class, where greedy output is
 * byte-identical and so a minority that differs from its own class is wrong. Across classes
 * different hashes are expected (a GPU and a CPU miner round differently) and every verified
 * output is paid; the answer is the largest group of identical verified outputs, preferring the
 * verifier's own class, then the first received.
 *
 * `k`: results expected (all must be in and judged before deciding).
 */
export function decideVerified (results: readonly WeighedResult[], k: number, verifierClass: string | undefined): VerifiedDecision {
  if (results.length < k) return {status: 'pending', reason: `${results.length} of ${k} results`}
  const considered = results.slice(0, k)
  if (considered.some(r => r.accepted === undefined)) return {status: 'pending', reason: 'verification running'}
  const rejected = considered.filter(r => r.accepted === false).map(r => r.miner)
  const passed = considered.filter(r => r.accepted === true)

  // Within a class, a strictly larger group of identical outputs outvotes the rest.
  const outvoted = new Set<Address>()
  const byClass = groupBy(passed, r => r.determinismClass)
  for (const members of byClass.values()) {
    const groups = [...groupBy(members, r => r.outputHash).values()].sort((a, b) => b.length - a.length)
    const [top, second] = groups
    if (top == null || second == null || second.length === top.length) continue
    for (const group of groups.slice(1)) for (const r of group) outvoted.add(r.miner)
  }
  const accepted = passed.filter(r => !outvoted.has(r.miner))
  if (accepted.length === 0) return {status: 'none', rejected, outvoted: [...outvoted]}
  const groups = [...groupBy(accepted, r => r.outputHash).values()]
  const own = (g: WeighedResult[]): number => g.some(r => r.determinismClass === verifierClass) ? 1 : 0
  // Stable sort: equal groups keep the order of their first result.
  groups.sort((a, b) => b.length - a.length || own(b) - own(a))
  const answer = groups[0]?.[0] as WeighedResult
  return {status: 'decided', answerMiner: answer.miner, accepted: accepted.map(r => r.miner), rejected, outvoted: [...outvoted]}
}

function groupBy<T> (items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>()
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item])
  return groups
}
