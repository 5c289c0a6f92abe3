/** What a node runs as: a validator holds a model and checks miners' outputs for oracles. */
export const ROLES = ['oracle', 'miner', 'validator'] as const
export type Role = typeof ROLES[number]
