import type {TaskPhase, TaskRecord} from './messages.js'

/** Phases after which nothing more happens to a task: its record is kept only for the API. */
const FINISHED: ReadonlySet<TaskPhase> = new Set(['ended', 'expired', 'failed'])

/**
 * Drops the oldest finished tasks (insertion order) until at most `keep` remain; running and
 * settling tasks are never dropped, so a burst of live work may exceed `keep` for a while.
 */
export function pruneTasks (tasks: Map<string, {record: Pick<TaskRecord, 'phase'>}>, keep: number): void {
  if (tasks.size <= keep) return
  for (const [id, task] of tasks) {
    if (FINISHED.has(task.record.phase)) tasks.delete(id)
    if (tasks.size <= keep) return
  }
}
