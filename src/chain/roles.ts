/**
 * Off-chain mirrors of the contracts' enums. The numeric values are the ABI encoding
 * (`uint8`) and must follow the declaration order in contracts/*.sol; the e2e test reads
 * them back from the chain to keep both sides in step.
 */

/** contracts/ACL.sol `Role`. */
export const Role = {None: 0, Admin: 1, Oracle: 2, Miner: 3} as const
export type Role = typeof Role[keyof typeof Role]
export type RoleName = keyof typeof Role

/** The roles a node registers in IAM with (admins administer; they run no node). */
export const NODE_ROLES = [Role.Oracle, Role.Miner] as const
export type NodeRole = typeof NODE_ROLES[number]

/** contracts/Cognitive.sol `TaskState`. */
export const TaskState = {None: 0, Created: 1, Assigned: 2, Precommitted: 3, Committed: 4, Ended: 5, Expired: 6} as const
export type TaskState = typeof TaskState[keyof typeof TaskState]

/** contracts/Cognitive.sol `Mode`. */
export const TaskMode = {Parallel: 0, Competing: 1} as const
export type TaskMode = typeof TaskMode[keyof typeof TaskMode]

/** contracts/Cognitive.sol `SlotState`: one miner's progress within a task. */
export const SlotState = {Empty: 0, Assigned: 1, Precommitted: 2, Committed: 3} as const
export type SlotState = typeof SlotState[keyof typeof SlotState]

/** contracts/NodeStats.sol `Counter`. */
export const Counter = {Assigned: 0, Precommitted: 1, Committed: 2, Agreed: 3, Disagreed: 4, Expired: 5} as const
export type Counter = typeof Counter[keyof typeof Counter]

function nameOf<T extends Record<string, number>> (table: T, value: number | bigint): keyof T {
  const entry = Object.entries(table).find(([, v]) => v === Number(value))
  if (entry === undefined) throw new RangeError(`unknown enum value ${value}`)
  return entry[0] as keyof T
}

/** Chain values arrive as bigint from ethers; these turn them into names for logs and errors. */
export const roleName = (value: number | bigint): RoleName => nameOf(Role, value)
export const taskStateName = (value: number | bigint): keyof typeof TaskState => nameOf(TaskState, value)
export const taskModeName = (value: number | bigint): keyof typeof TaskMode => nameOf(TaskMode, value)

export function parseRole (name: string): Role {
  const key = (Object.keys(Role) as RoleName[]).find((k) => k.toLowerCase() === name.toLowerCase())
  if (key === undefined) throw new RangeError(`unknown role "${name}" (expected one of ${Object.keys(Role).join(', ')})`)
  return Role[key]
}

export function isNodeRole (role: Role): role is NodeRole {
  return role === Role.Oracle || role === Role.Miner
}
