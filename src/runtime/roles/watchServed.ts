import type {ModelId} from '../../protocols/modelId.js'
import type {NodeComponents} from './nodeRole.js'

/**
 * Watches a node's models on their way to being served: one that cannot be served is logged and
 * the others go on; a node that can serve none of its models stops, naming every reason.
 */
export function watchServed (node: Pick<NodeComponents, 'log' | 'signal' | 'fail' | 'config'>, served: Array<Promise<ModelId>>): Array<Promise<ModelId>> {
  for (const s of served) s.catch((err: Error) => { if (!node.signal.aborted) node.log.error({err: err.message}, 'a listed model is not served') })
  const first = Promise.any(served)
  first.catch((err: AggregateError) => {
    if (node.signal.aborted) return
    const reasons = err.errors.map(e => (e as Error).message).join('; ')
    node.fail(`this ${node.config.role} can serve none of its models: ${reasons}`, new Error(reasons))
  })
  return served
}

/** One listed model on its way into service, as the earning report reads it. */
export interface ModelServing {
  served: boolean
  /** Why the role could not serve it. */
  error?: string
}

/** A live view of which listed models the role serves, and why not where it could not. */
export function trackServing (modelIds: readonly ModelId[], served: Array<Promise<ModelId>>): ReadonlyMap<ModelId, ModelServing> {
  const serving = new Map<ModelId, ModelServing>(modelIds.map(id => [id, {served: false}]))
  served.forEach((s, i) => {
    const id = modelIds[i]
    if (id == null) return
    s.then(() => { serving.set(id, {served: true}) }, (err: Error) => { serving.set(id, {served: false, error: err.message}) })
  })
  return serving
}
