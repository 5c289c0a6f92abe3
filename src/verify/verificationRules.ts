import type {TokenScore} from '../inference/scoreTokens.js'
import type {SamplingParams} from '../protocols/messages.js'

/**
 * The thresholds of the teacher-forced check, in one place. Calibrated on the two model files
 * in ../shared/models (README, "Verification"): the F32 model verifying 64-token outputs of
 * 40 story prompts (`npm run bench -- verify` reports the rates over more).
 *
 * | output scored by F32           | tokens not top-1 | worst gap to top-1 | rank ≥ 10 | mean ln p    |
 * | honest, F32 (same class)       | 0–1              | ≤ 0.001            | 0         | −0.74…−0.44  |
 * | honest, Q4 (another class)     | 3–22             | 0.48–4.1           | 0–1       | −1.01…−0.46  |
 * | another prompt's answer        | 2–14             | 1.0–13             | 0–4       | −1.17…−0.61  |
 * | every 5th token a random word  | 30–45            | ≥ 15               | 19–30     | −6.0…−4.2    |
 * | random words                   | 61–64            | ≥ 16               | 57–64     | −11…−9       |
 */
export const VERIFICATION_RULES = {
  /**
   * Same class, greedy: every token must be the verifier's own argmax. A miss whose ln p is
   * within this of the top token is a tie that batch shape can flip (measured ≤ 0.001); a
   * different model or precision misses by ≥ 0.48.
   */
  tieEpsilon: 0.01,
  /** Another class: a token the verifier ranks this low or lower counts as a failure. */
  failRank: 10,
  /** Another class: failures allowed, as a fraction of the tokens (at least `minFailures`). */
  failureFraction: 0.05,
  minFailures: 2,
  /** Another class, greedy: the mean ln p an honest output stays above (honest Q4 ≥ −1.01, edited ≤ −4.2). */
  minMeanLogProbability: -2.5,
  /** Sampled tasks: the mean ln p floor drops this much per unit of temperature. */
  meanLogProbabilityPerTemperature: -1.5,
  /** Another class, sampled: how far past the task's top-k rank and top-p mass a token may fall. */
  topKSlack: 2,
  topPSlack: 0.1
} as const

export interface Judgement {
  accepted: boolean
  /** Tokens that broke a rule. */
  failures: number
  /** Failures the rules allow for this many tokens. */
  allowed: number
  /** Why it failed, in words; empty when accepted. */
  reason: string
}

/**
 * Judges a claimed output from its teacher-forced score under the task's sampling settings.
 * `sameClass`: the claim comes from the verifier's own determinism class, so greedy output
 * must match exactly (ties aside) and sampled tokens must lie strictly within top-k/top-p;
 * otherwise the looser cross-class tolerances apply.
 */
export function judgeScore (score: TokenScore, params: SamplingParams, sameClass: boolean): Judgement {
  const R = VERIFICATION_RULES
  const n = score.scoredTokens
  const greedy = params.temperature === 0
  let failures = 0
  let first = -1
  for (let i = 0; i < n; i++) {
    const rank = score.ranks[i] ?? Infinity
    const gap = (score.topLogProbabilities[i] ?? 0) - (score.tokenLogProbabilities[i] ?? -Infinity)
    const mass = score.massAbove[i] ?? 1
    let failed: boolean
    if (greedy) {
      failed = sameClass ? rank > 0 && gap > R.tieEpsilon : rank >= R.failRank
    } else {
      const kSlack = sameClass ? 1 : R.topKSlack
      const pSlack = sameClass ? 1e-6 : R.topPSlack
      failed = (params.topK > 0 && rank >= params.topK * kSlack) || (params.topP < 1 && mass > params.topP + pSlack)
    }
    if (failed) {
      failures++
      if (first < 0) first = i
    }
  }
  // The verifier's own class computes the same distributions: an honest token never breaks a rule (0 of 6,400 measured).
  const allowed = sameClass ? 0 : Math.max(R.minFailures, Math.floor(n * R.failureFraction))
  if (failures > allowed) {
    const what = greedy ? (sameClass ? 'not the model\'s own choice' : `ranked ≥ ${R.failRank} by the model`) : 'outside the task\'s top-k/top-p'
    return {accepted: false, failures, allowed, reason: `${failures} of ${n} tokens ${what} (at most ${allowed} allowed; first at token ${first})`}
  }
  const floor = R.minMeanLogProbability + R.meanLogProbabilityPerTemperature * params.temperature
  if (!(greedy && sameClass) && score.meanLogProbability < floor) {
    return {accepted: false, failures, allowed, reason: `mean ln p ${score.meanLogProbability.toFixed(2)} below ${floor.toFixed(2)}`}
  }
  return {accepted: true, failures, allowed, reason: ''}
}
