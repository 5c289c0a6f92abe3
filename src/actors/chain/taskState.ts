/** Cognitive's `TaskState` enum, by value (contracts/Cognitive.sol). */
export const TASK_STATE = {
  None: 0,
  Created: 1,
  Assigned: 2,
  Precommitted: 3,
  Committed: 4,
  Ended: 5,
  Expired: 6
} as const

export type TaskStateName = keyof typeof TASK_STATE

export function taskStateName (value: number): TaskStateName | 'Unknown' {
  const entry = Object.entries(TASK_STATE).find(([, v]) => v === value)
  return (entry?.[0] as TaskStateName | undefined) ?? 'Unknown'
}
