import type {Address} from '../../protocols/address.js'
import type {MinerResult} from '../../protocols/messages.js'

/** One miner's vote: the hash of the output it produced. */
export type ResultVote = Pick<MinerResult, 'miner' | 'outputHash'>

export type Tally =
  | {status: 'pending', received: number, needed: number}
  | {status: 'agreed', outputHash: string, agreeing: Address[], dissenting: Address[]}
  | {status: 'disagreed', outputHash: string | null, agreeing: Address[], dissenting: Address[]}

/**
 * Off-chain consensus over k results by output hash (miners of one determinism class produce
 * byte-identical greedy output). With all k in: unanimous → agreed; a strict majority →
 * agreed with the minority named; otherwise disagreed (the largest group, if unique, is
 * still reported so the user sees the most common answer).
 */
export function tallyResults (results: readonly ResultVote[], k: number): Tally {
  if (results.length < k) return {status: 'pending', received: results.length, needed: k}
  const groups = new Map<string, Address[]>()
  for (const r of results.slice(0, k)) groups.set(r.outputHash, [...(groups.get(r.outputHash) ?? []), r.miner])
  const ranked = [...groups.entries()].sort((a, b) => b[1].length - a[1].length)
  const [top, second] = ranked
  if (top == null) return {status: 'pending', received: 0, needed: k}
  const [outputHash, agreeing] = top
  const dissenting = ranked.slice(1).flatMap(([, miners]) => miners)
  if (agreeing.length * 2 > k) return {status: 'agreed', outputHash, agreeing, dissenting}
  const unique = second == null || second[1].length < agreeing.length
  return {status: 'disagreed', outputHash: unique ? outputHash : null, agreeing: unique ? agreeing : [], dissenting: unique ? dissenting : ranked.flatMap(([, m]) => m)}
}
