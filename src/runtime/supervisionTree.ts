import type {RestartPolicy} from '../actors/actorSystem.js'

/** The node's actors; the order is the start order, its reverse the stop order. */
export type ActorName = 'chain' | 'model' | 'inference' | 'stats' | 'mining' | 'oracle'

/**
 * The supervision tree, as data (OTP `ssl_sup.erl` style): every child with its restart
 * strategy, limit and window. All actors are children of the node; when one exceeds its
 * limit the crash escalates and the node exits non-zero with the reason.
 *
 * - chain: RPC hiccups are retried inside the tx queue; a crash means the provider itself is
 *   broken, so it is rebuilt, a few times, with a backoff that outlasts a short RPC outage.
 * - inference: a native failure of llama.cpp reloads the model; in-flight runs are failed
 *   explicitly (the miner reports them) and the queue survives.
 * - model / stats / mining / oracle: logic actors; a crash is a bug, restarted quickly, and
 *   a loop of them stops the node rather than hide it.
 */
export const SUPERVISION_TREE: {[K in ActorName]: RestartPolicy} = {
  chain: {strategy: 'restart', maxRestarts: 5, withinMs: 60_000, backoffMs: {initial: 500, max: 10_000}},
  model: {strategy: 'restart', maxRestarts: 3, withinMs: 60_000, backoffMs: {initial: 1_000, max: 10_000}},
  inference: {strategy: 'restart', maxRestarts: 3, withinMs: 60_000, backoffMs: {initial: 200, max: 5_000}},
  stats: {strategy: 'restart', maxRestarts: 5, withinMs: 60_000, backoffMs: {initial: 200, max: 5_000}},
  mining: {strategy: 'restart', maxRestarts: 5, withinMs: 60_000, backoffMs: {initial: 100, max: 2_000}},
  oracle: {strategy: 'restart', maxRestarts: 5, withinMs: 60_000, backoffMs: {initial: 100, max: 2_000}}
}

