import type {Address} from '../../protocols/address.js'
import type {StreamedChunk} from '../../protocols/resultService.js'

export interface VerifiedStreamInit {
  /** Miners expected to stream: a chunk goes out once a majority of them sent it. */
  k: number
  /**
   * Checks that `tokens` (a prefix of the answer, as streamed by `miner`) is the model's work.
   * Undefined without a verifier: the majority prefix goes out unchecked.
   */
  check?: (miner: Address, tokens: number[], text: string) => Promise<boolean>
  /** Hands text on to the client. */
  release: (text: string) => void
  /** Tokens streamed before the first check (later checks at each doubling). */
  firstCheckTokens?: number
}

/** The first check waits for this many tokens: a shorter prefix says too little to judge. */
const FIRST_CHECK_TOKENS = 8

/**
 * What a client sees while miners generate: only text that a majority of the task's miners
 * streamed identically (k ≥ 2) and that the verifier accepted as a prefix of the model's work.
 * Checks run when the agreed prefix has doubled since the last one, so their total cost stays
 * below twice one check of the whole output, and the first waits for a few tokens only. A
 * failed check stops the stream: the answer then comes whole, from the verified consensus.
 */
export class VerifiedStream {
  private readonly chunks = new Map<Address, StreamedChunk[]>()
  /** The chunks a majority agrees on, in order. */
  private readonly agreed: StreamedChunk[] = []
  /** Miners whose stream so far matches `agreed`. */
  private followers: Set<Address> | undefined
  private agreedTokens = 0
  /** Tokens, and chunks, of `agreed` the verifier accepted as a prefix. */
  private verifiedTokens = 0
  private verifiedChunks = 0
  private releasedChunks = 0
  private released = ''
  private checking = false
  private closed = false
  private finished = false
  private readonly majority: number
  private readonly firstCheck: number

  constructor (private readonly init: VerifiedStreamInit) {
    this.majority = Math.floor(init.k / 2) + 1
    this.firstCheck = init.firstCheckTokens ?? FIRST_CHECK_TOKENS
  }

  /** The text the client has seen. */
  get text (): string {
    return this.released
  }

  push (miner: Address, chunk: StreamedChunk): void {
    // Text without tokens is text no check covers: it never reaches the client.
    if (this.closed || chunk.tokens.length === 0) return
    const list = this.chunks.get(miner) ?? []
    list.push(chunk)
    this.chunks.set(miner, list)
    // A miner behind the majority leaves it once it sends a chunk the majority did not.
    const agreed = this.agreed[list.length - 1]
    if (agreed != null && this.followers?.has(miner) === true && !sameChunk(agreed, chunk)) this.followers.delete(miner)
    this.advance()
  }

  /**
   * The task answered: the rest of the verified answer goes out (also after a failed check
   * stopped the stream). Should what was streamed not begin the answer (miners whose reveal
   * differs from their stream), nothing more is streamed and this returns false; the final
   * event carries the answer.
   */
  finish (answer: string): boolean {
    if (this.finished) return false
    this.finished = true
    this.closed = true
    if (!answer.startsWith(this.released)) return false
    const rest = answer.slice(this.released.length)
    if (rest !== '') this.emit(rest)
    return true
  }

  close (): void {
    this.closed = true
  }

  private advance (): void {
    for (;;) {
      const i = this.agreed.length
      const votes = new Map<string, {chunk: StreamedChunk, miners: Address[]}>()
      for (const [miner, list] of this.chunks) {
        if (this.followers != null && !this.followers.has(miner)) continue
        const chunk = list[i]
        if (chunk == null) continue
        const key = chunkKey(chunk)
        const vote = votes.get(key) ?? {chunk, miners: []}
        vote.miners.push(miner)
        votes.set(key, vote)
      }
      const winner = [...votes.values()].find(v => v.miners.length >= this.majority)
      if (winner == null) break
      this.agreed.push(winner.chunk)
      this.agreedTokens += winner.chunk.tokens.length
      // Miners that sent another chunk here left the majority for good; those behind may still join.
      const dissenters = new Set([...votes.values()].filter(v => v !== winner).flatMap(v => v.miners))
      this.followers = new Set([...this.chunks.keys()].filter(m => !dissenters.has(m) && (this.followers == null || this.followers.has(m))))
    }
    if (this.init.check == null) {
      this.verifiedTokens = this.agreedTokens
      this.verifiedChunks = this.agreed.length
      this.releaseVerified()
      return
    }
    this.maybeCheck()
  }

  private maybeCheck (): void {
    if (this.checking || this.closed || this.init.check == null) return
    if (this.agreedTokens < Math.max(this.firstCheck, 2 * this.verifiedTokens)) return
    const upTo = this.agreed.length
    const tokens = this.agreed.slice(0, upTo).flatMap(c => c.tokens)
    const text = this.agreed.slice(0, upTo).map(c => c.text).join('')
    const miner = [...(this.followers ?? [])][0]
    if (miner == null) return
    this.checking = true
    this.init.check(miner, tokens, text).then(ok => {
      this.checking = false
      if (this.closed) return
      if (!ok) {
        this.closed = true
        return
      }
      this.verifiedTokens = tokens.length
      this.verifiedChunks = upTo
      this.releaseVerified()
      this.maybeCheck()
    }, () => {
      // The verifier could not answer: nothing more streams; the verified answer comes whole.
      this.checking = false
      this.closed = true
    })
  }

  /** Releases exactly the chunks the last passing check covered. */
  private releaseVerified (): void {
    let text = ''
    while (this.releasedChunks < this.verifiedChunks) {
      text += (this.agreed[this.releasedChunks] as StreamedChunk).text
      this.releasedChunks++
    }
    if (text !== '') this.emit(text)
  }

  private emit (text: string): void {
    this.released += text
    this.init.release(text)
  }
}

function chunkKey (chunk: StreamedChunk): string {
  return `${chunk.tokens.join(',')}|${chunk.text}`
}

function sameChunk (a: StreamedChunk, b: StreamedChunk): boolean {
  return chunkKey(a) === chunkKey(b)
}
