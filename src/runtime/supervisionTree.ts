import type {RestartPolicy} from '../actors/actorSystem.js'

/** The node's actors. */
export type ActorName = 'chain' | 'model' | 'earnings' | 'inference' | 'mining' | 'oracle' | 'stats'

/**
 * The supervision tree, as data (OTP `ssl_sup.erl` style): every child with its restart
 * strategy, limit and window, in start order; a node stops its actors in the reverse order.
 * All actors are children of the node; when one exceeds its limit the crash escalates and the
 * node exits non-zero with the reason. A role starts only its own children (`roles/`).
 *
 * - chain: RPC hiccups are retried inside the tx queue; a crash means the provider itself is
 *   broken, so it is rebuilt, a few times, with a backoff that outlasts a short RPC outage.
 * - inference: a native failure of llama.cpp reloads the model; in-flight runs are failed
 *   explicitly (the miner reports them) and the queue survives.
 * - earnings: the ledger of a miner's tasks and the node's wallet view; after model so a role's
 *   actors can tell it what they see, before them so it stops after them.
 * - model / earnings / mining / oracle / stats: logic actors; a crash is a bug, restarted quickly, and
 *   a loop of them stops the node rather than hide it.
 * - stats comes last, so a stopping node first stops announcing itself.
 */
export const SUPERVISION_TREE: ReadonlyArray<{name: ActorName, policy: RestartPolicy}> = [
  {name: 'chain', policy: {strategy: 'restart', maxRestarts: 5, withinMs: 60_000, backoffMs: {initial: 500, max: 10_000}}},
  {name: 'model', policy: {strategy: 'restart', maxRestarts: 3, withinMs: 60_000, backoffMs: {initial: 1_000, max: 10_000}}},
  {name: 'earnings', policy: {strategy: 'restart', maxRestarts: 5, withinMs: 60_000, backoffMs: {initial: 200, max: 5_000}}},
  {name: 'inference', policy: {strategy: 'restart', maxRestarts: 3, withinMs: 60_000, backoffMs: {initial: 200, max: 5_000}}},
  {name: 'mining', policy: {strategy: 'restart', maxRestarts: 5, withinMs: 60_000, backoffMs: {initial: 100, max: 2_000}}},
  {name: 'oracle', policy: {strategy: 'restart', maxRestarts: 5, withinMs: 60_000, backoffMs: {initial: 100, max: 2_000}}},
  {name: 'stats', policy: {strategy: 'restart', maxRestarts: 5, withinMs: 60_000, backoffMs: {initial: 200, max: 5_000}}}
]

export function restartPolicy (name: ActorName): RestartPolicy {
  const child = SUPERVISION_TREE.find(c => c.name === name)
  if (child == null) throw new Error(`actor ${name} is not in the supervision tree`)
  return child.policy
}
