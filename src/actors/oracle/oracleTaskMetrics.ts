import type {NodeMetrics} from '../../util/metrics.js'
import type {TaskRecord} from './messages.js'

/**
 * The stages of a task on its oracle, each timed from the request (the `stage` label of
 * `cortensor_task_stage_seconds`; a miner's stages are in mining/minerStages.ts): createTask
 * mined, the first miner's result in, the client answered, the task settled on chain.
 */
export type OracleStage = 'created' | 'first_result' | 'answered' | 'settled'

const STAGE_TIMINGS: {[K in OracleStage]: keyof TaskRecord['timings']} = {
  created: 'createdAt',
  first_result: 'firstResultAt',
  answered: 'answeredAt',
  settled: 'settledAt'
}
const STAGES = Object.keys(STAGE_TIMINGS) as OracleStage[]

/**
 * What one step of a task's machine did that the metrics count: each stage it reached (a timing
 * it set) and each miner's output it judged (a verdict it set: an identical output judged once
 * gets its verdict copied, and counts as judged all the same).
 */
export function observeOracleStep (before: TaskRecord, after: TaskRecord, metrics: NodeMetrics): void {
  if (before.timings !== after.timings) {
    for (const stage of STAGES) {
      const key = STAGE_TIMINGS[stage]
      const at = after.timings[key]
      if (at != null && before.timings[key] == null) metrics.taskStageSeconds.observe({stage}, Math.max(0, at - after.timings.requestedAt) / 1000)
    }
  }
  for (const result of after.results) {
    if (result.verdict == null) continue
    if (before.results.find(r => r.miner === result.miner)?.verdict != null) continue
    metrics.verificationVerdicts.inc({verdict: result.verdict.accepted ? 'accepted' : 'rejected'})
  }
}
