import type {LlamaEngine} from '../inference/llamaEngine.js'
import {parseDeterminismClass} from '../inference/determinismClass.js'
import type {SamplingParams} from '../protocols/messages.js'
import {judgeScore} from './verificationRules.js'

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

export type VerifierEngine = Pick<LlamaEngine, 'complete' | 'scoreTokens' | 'detokenize' | 'info'>

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

    // An output that ended before maxTokens claims the model stopped there: its end token is scored too.
    const eog = this.engine.info.endOfGenerationToken
    const stopped = options.partial !== true && claim.tokenIds.length < claim.params.maxTokens && eog != null
    const scored = stopped ? [...claim.tokenIds, eog] : claim.tokenIds
    if (scored.length === 0) return verdict(true, 'teacher-forced', sameClass, '')
    const score = await this.engine.scoreTokens(claim.prompt, scored, {signal: options.signal})
    const judged = judgeScore(score, claim.params, sameClass)
    return verdict(judged.accepted, 'teacher-forced', sameClass, judged.reason, {failures: judged.failures, meanLogProbability: score.meanLogProbability})
  }
}

