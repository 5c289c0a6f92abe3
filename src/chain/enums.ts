import type {Role, TaskMode} from '../protocols/messages.js'

/**
 * Off-chain mirrors of the contracts' enums: the uint8 each value is ABI-encoded as. The
 * values must follow the declaration order in contracts/*.sol; the e2e test reads them back
 * from the chain to keep both sides in step. In process, roles and modes are names (`Role`,
 * `TaskMode`); these tables are used only where a call or an event crosses the ABI.
 */

/** contracts/ACL.sol `Role`: the node roles plus the admin, who administers and runs no node. */
export const AclRole = {None: 0, Admin: 1, Oracle: 2, Miner: 3, Validator: 4} as const
export type AclRole = typeof AclRole[keyof typeof AclRole]

/** A node role as the ACL and IAM encode it. */
export const ROLE_CODE: {[K in Role]: AclRole} = {oracle: AclRole.Oracle, miner: AclRole.Miner, validator: AclRole.Validator}

/** contracts/Cognitive.sol `Mode`. */
export const TASK_MODE_CODE: {[K in TaskMode]: number} = {parallel: 0, competing: 1}

/** contracts/Cognitive.sol `TaskState`. */
export const TaskState = {None: 0, Created: 1, Assigned: 2, Precommitted: 3, Committed: 4, Ended: 5, Expired: 6} as const
export type TaskState = typeof TaskState[keyof typeof TaskState]

/** States of a competing task in which every slot is taken: the contract leaves Created when a precommit takes the k-th slot. */
export const COMPETING_SLOTS_TAKEN: ReadonlySet<TaskState> = new Set([TaskState.Assigned, TaskState.Precommitted, TaskState.Committed])

/** contracts/Cognitive.sol `SlotState`: one miner's progress within a task. */
export const SlotState = {Empty: 0, Assigned: 1, Precommitted: 2, Committed: 3} as const
export type SlotState = typeof SlotState[keyof typeof SlotState]

/** contracts/NodeStats.sol `Counter`; `Rejected` is a proven fault and counts toward suspension. */
export const Counter = {Assigned: 0, Precommitted: 1, Committed: 2, Agreed: 3, Disagreed: 4, Expired: 5, Rejected: 6} as const
export type Counter = typeof Counter[keyof typeof Counter]

/** The node role an ACL/IAM role code stands for; undefined for the admin and none. */
export function roleOfCode (code: number | bigint): Role | undefined {
  return (Object.keys(ROLE_CODE) as Role[]).find(role => ROLE_CODE[role] === Number(code))
}

/** A chain task state by name, for logs and errors (ethers hands it over as a bigint). */
export function taskStateName (value: number | bigint): keyof typeof TaskState {
  const entry = Object.entries(TaskState).find(([, v]) => v === Number(value))
  if (entry === undefined) throw new RangeError(`unknown task state ${value}`)
  return entry[0] as keyof typeof TaskState
}
