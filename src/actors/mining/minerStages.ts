import type {NodeMetrics} from '../../util/metrics.js'
import {isFinished, type FinishedPhase, type MinerTask} from './minerTask.js'

/**
 * The stages of a task on a miner, each timed from when it took the task (the `stage` label of
 * `cortensor_task_stage_seconds`; the oracle's are in oracle/oracleTaskMetrics.ts): inference done
 * and the result on its way to the oracle, the precommit mined, the reveal (commit) mined.
 */
export type MinerStage = 'result_sent' | 'precommitted' | 'committed'

/** The stage a step of the task's machine reached, if any: a phase left or entered. */
export function minerStageOf (before: MinerTask, after: MinerTask): MinerStage | undefined {
  if (before.phase === after.phase) return undefined
  if (before.phase === 'inferring' && after.phase === 'precommitting') return 'result_sent'
  if (before.phase === 'precommitting' && (after.phase === 'awaitingReveal' || after.phase === 'committing')) return 'precommitted'
  if (after.phase === 'done') return 'committed'
  return undefined
}

export function observeMinerStage (before: MinerTask, after: MinerTask, now: number, metrics: NodeMetrics): void {
  const stage = minerStageOf(before, after)
  if (stage != null) metrics.taskStageSeconds.observe({stage}, Math.max(0, now - after.takenAt) / 1000)
}

/** How a finished task ended here: revealed (`done`), lost and why, or failed; undefined while it is still worked on. */
export function minerTaskEnd (task: MinerTask): {outcome: FinishedPhase, reason: string} | undefined {
  if (!isFinished(task)) return undefined
  // A failure's code comes from the engine or the chain: the label stays one value, the log has the code.
  return {outcome: task.phase, reason: task.phase === 'lost' ? task.reason : task.phase}
}
