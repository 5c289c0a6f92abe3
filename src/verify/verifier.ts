import type {LlamaEngine} from '../inference/llamaEngine.js'
import {parseDeterminismClass} from '../inference/determinismClass.js'
import type {FinishReason, SamplingParams} from '../protocols/messages.js'
import type {TokenScore} from '../inference/scoreTokens.js'
import {judgeScore, VERIFICATION_RULES} from './verificationRules.js'

/** What a miner claims it generated for a task. */
export interface Claim {
  prompt: string
  params: SamplingParams
  seed: number
  /** The generated token ids: scored as they are, never re-tokenized from the text. */
  tokenIds: readonly number[]
  /** The text the miner hashed and revealed; it must be what `tokenIds` decode to. */
  output: string
  /** The class the miner declared for the work (`<model sha256>/<build>/<backend>`). */
  determinismClass: string
  /** `stop`: the miner says the model ended the text (its end token is scored); `length`: it ran out of room. */
  finishReason: FinishReason
}

/**
 * `teacher-forced`: one evaluation of prompt + output, judged by `verificationRules.ts`.
 * `re-execution`: the verifier ran the task itself (same class only) and compared token ids.
 */
export type VerificationMethod = 'teacher-forced' | 're-execution' | 'none'

export interface Verdict {
  accepted: boolean
  method: VerificationMethod
  /** The miner's class is the verifier's: the check was exact. */
  sameClass: boolean
  /** Why it was refused; empty when accepted. */
  reason: string
  tokens: number
  failures: number
  meanLogProbability: number | null
  /** Time the check took (queueing for the engine included). */
  ms: number
}

export type VerifierEngine = Pick<LlamaEngine, 'complete' | 'scoreTokens' | 'detokenize' | 'countTokens' | 'info'>

/**
 * Checks miners' claimed outputs against the model it holds: exactly when the miner's
 * determinism class is its own (greedy tokens must be its argmax; an audit re-executes the
 * task), within calibrated tolerances when it is not. Owned by an oracle that verifies in
 * process, or by a validator node serving oracles over a stream.
 */
export class Verifier {
  constructor (private readonly engine: VerifierEngine, readonly ownClass: string) {
    if (parseDeterminismClass(ownClass) == null) throw new TypeError(`verifier class ${JSON.stringify(ownClass)} is not <model sha256>/<build>/<backend>`)
  }

  /** `reexecute`: an audit; in the verifier's own class the task is run again and must give the same tokens. */
  async check (claim: Claim, options: {signal?: AbortSignal, reexecute?: boolean, partial?: boolean} = {}): Promise<Verdict> {
    const startedAt = performance.now()
    const verdict = (accepted: boolean, method: VerificationMethod, sameClass: boolean, reason: string, extra: {failures?: number, meanLogProbability?: number} = {}): Verdict => ({
      accepted, method, sameClass, reason, tokens: claim.tokenIds.length, failures: extra.failures ?? 0, meanLogProbability: extra.meanLogProbability ?? null, ms: performance.now() - startedAt
    })
    const declared = parseDeterminismClass(claim.determinismClass)
    const ownModel = parseDeterminismClass(this.ownClass)?.modelSha256 ?? ''
    if (declared == null) return verdict(false, 'none', false, `declared determinism class ${JSON.stringify(claim.determinismClass.slice(0, 140))} is malformed`)
    if (declared.modelSha256 !== ownModel) return verdict(false, 'none', false, `declares model ${declared.modelSha256.slice(0, 12)}…, not the task's ${ownModel.slice(0, 12)}…`)
    const sameClass = claim.determinismClass === this.ownClass
    // Checked before anything reaches llama.cpp: an id outside the vocabulary aborts the process there.
    const vocabulary = this.engine.info.vocabularySize
    const outside = claim.tokenIds.find(t => !Number.isInteger(t) || t < 0 || t >= vocabulary)
    if (outside !== undefined) return verdict(false, 'none', sameClass, `token id ${outside} is not in the model's vocabulary of ${vocabulary}`)
    const decoded = this.engine.detokenize(claim.tokenIds)
    if (decoded !== claim.output) return verdict(false, 'none', sameClass, 'the output text is not what its token ids decode to')
    if (claim.tokenIds.length > claim.params.maxTokens) return verdict(false, 'none', sameClass, `${claim.tokenIds.length} tokens claimed; the task allows ${claim.params.maxTokens}`)

    if (options.reexecute === true && sameClass && options.partial !== true) {
      const rerun = await this.engine.complete({prompt: claim.prompt, seed: claim.seed, params: claim.params}, {signal: options.signal})
      // Cut short (stopping, cancelled): no verdict rather than a false accusation.
      if (rerun.finishReason === 'abort') throw new Error('re-execution aborted before it finished')
      const firstDiff = rerun.tokens.findIndex((t, i) => claim.tokenIds[i] !== t)
      const same = rerun.tokens.length === claim.tokenIds.length && firstDiff < 0
      return verdict(same, 're-execution', true, same ? '' : `re-execution differs from token ${firstDiff < 0 ? Math.min(rerun.tokens.length, claim.tokenIds.length) : firstDiff}`)
    }

    const partial = options.partial === true
    // Out of room means maxTokens, or the context (prompt + output) full: a shorter "length" is a truncated answer.
    const room = this.engine.info.contextSize - this.engine.countTokens(claim.prompt)
    if (!partial && claim.finishReason === 'length' && claim.tokenIds.length < Math.min(claim.params.maxTokens, room)) {
      return verdict(false, 'none', sameClass, `${claim.tokenIds.length} tokens claimed as cut at the length limit, which is ${Math.min(claim.params.maxTokens, room)}`)
    }
    // A claimed stop is scored with the model's end token after the text.
    const eog = this.engine.info.endOfGenerationToken
    const stopped = !partial && claim.finishReason === 'stop' && eog != null
    const scored = stopped ? [...claim.tokenIds, eog] : [...claim.tokenIds]
    if (scored.length === 0) return verdict(true, 'teacher-forced', sameClass, '')
    const score = await this.engine.scoreTokens(claim.prompt, scored, {signal: options.signal})
    const text = stopped ? withoutLast(score) : score
    const judged = judgeScore(text, claim.params, sameClass)
    const extra = {failures: judged.failures, meanLogProbability: text.scoredTokens > 0 ? text.meanLogProbability : undefined}
    if (!judged.accepted) return verdict(false, 'teacher-forced', sameClass, judged.reason, extra)
    // A little lenient on the end itself: a chat model may end on another end-of-generation
    // token (end of turn) than the one scored, which then ranks second.
    const endRank = stopped ? score.ranks[score.ranks.length - 1] ?? 0 : 0
    const maxEndRank = sameClass ? 1 : VERIFICATION_RULES.failRank - 1
    if (endRank > maxEndRank) return verdict(false, 'teacher-forced', sameClass, `claimed to stop, but the model ranks its end token ${endRank} there (at most ${maxEndRank})`, extra)
    return verdict(true, 'teacher-forced', sameClass, '', extra)
  }
}

/** The score of the tokens before the last (the appended end token is judged on its own). */
function withoutLast (score: TokenScore): TokenScore {
  const n = score.scoredTokens - 1
  const logs = score.tokenLogProbabilities.slice(0, n)
  return {
    meanLogProbability: n > 0 ? logs.reduce((a, b) => a + b, 0) / n : 0,
    tokenLogProbabilities: logs,
    ranks: score.ranks.slice(0, n),
    topLogProbabilities: score.topLogProbabilities.slice(0, n),
    massAbove: score.massAbove.slice(0, n),
    promptTokens: score.promptTokens,
    scoredTokens: n
  }
}
