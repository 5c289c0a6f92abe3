import type {ModelId} from '../protocols/modelId.js'
import {abortable} from '../util/abortable.js'
import {CortensorError} from '../util/cortensorError.js'
import type {Logger} from '../util/logger.js'

/** A verified model file a pool may load. */
export interface PooledModel {
  id: ModelId
  path: string
  /** sha256 of the file (0x-prefixed or bare hex): with the engine's backend, the model's determinism class. */
  sha256: string
  /** What it takes in memory, counted against the budget: the file's size (llama.cpp maps the weights whole). */
  sizeBytes: number
}

export class EnginePoolError extends CortensorError<{code: 'MODEL_NOT_SERVED' | 'MODEL_TOO_LARGE' | 'POOL_DISPOSED', modelId: ModelId}> {}

export interface EnginePoolInit<E> {
  /** Memory the loaded models may take together. */
  budgetBytes: number
  open: (model: PooledModel) => Promise<E>
  close: (engine: E) => Promise<void>
  logger: Logger
}

/** An engine held for one use; `release` lets the pool unload it again once idle. */
export interface EngineLease<E> {
  engine: E
  model: PooledModel
  release: () => void
}

interface Entry<E> {
  model: PooledModel
  engine?: E
  loading?: Promise<E>
  /** An engine being unloaded still holds its memory until `close` returns. */
  closing?: Promise<void>
  leases: number
  /**
   * Another model waits for this one's memory: no new lease is handed out, so that a model in
   * steady use cannot keep a waiting one out for ever. Cleared once nobody waits for room.
   */
  draining: boolean
  /** The pool's use count at its last acquire or release: the least recently used has the lowest. */
  lastUsedAt: number
}

/**
 * The engines of the models a node serves, loaded on demand within a memory budget: a model
 * that does not fit unloads the least recently used idle one; when every loaded model is busy,
 * the caller waits for one to be released (and the ones it waits for take no new work
 * meanwhile). Several models that fit together stay loaded, so a node serving many models pays
 * a load only when its working set changes.
 */
export class EnginePool<E> {
  private readonly entries = new Map<ModelId, Entry<E>>()
  private changed = Promise.withResolvers<void>()
  private disposed = false
  /** A use counter, not a clock: two uses within one millisecond still have an order. */
  private uses = 0
  /** Callers waiting for memory to load their model. */
  private roomWaiters = 0
  /** Removed models whose engines still hold memory (in use, or closing). */
  private readonly retired = new Set<Entry<E>>()

  constructor (private readonly init: EnginePoolInit<E>) {}

  /** Makes a model servable. A model larger than the whole budget could never load: MODEL_TOO_LARGE. */
  add (model: PooledModel): void {
    if (model.sizeBytes > this.init.budgetBytes) {
      throw new EnginePoolError({code: 'MODEL_TOO_LARGE', modelId: model.id}, `model ${model.id} takes ${mib(model.sizeBytes)} MiB; the memory budget is ${mib(this.init.budgetBytes)} MiB (inference.memoryBudgetMiB)`)
    }
    if (!this.entries.has(model.id)) this.entries.set(model.id, {model, leases: 0, draining: false, lastUsedAt: 0})
  }

  /** Stops serving a model that cannot be served (its engine, if any, is unloaded once idle). */
  remove (id: ModelId): void {
    const entry = this.entries.get(id)
    if (entry == null) return
    this.entries.delete(id)
    if (entry.engine == null && entry.closing == null) return
    this.retired.add(entry)
    if (entry.engine != null && entry.leases === 0) this.unload(entry)
  }

  has (id: ModelId): boolean {
    return this.entries.has(id)
  }

  models (): PooledModel[] {
    return [...this.entries.values()].map(e => e.model)
  }

  /** The engine of a loaded model, without holding it (status, class). */
  loadedEngine (id: ModelId): E | undefined {
    return this.entries.get(id)?.engine
  }

  loaded (): ModelId[] {
    return [...this.entries.values()].filter(e => e.engine != null).map(e => e.model.id)
  }

  /** Loads `id` now if it fits beside what is loaded, without unloading anything; true when it is (being) loaded. */
  preload (id: ModelId): boolean {
    const entry = this.entries.get(id)
    if (entry == null) return false
    if (entry.engine != null || entry.loading != null) return true
    if (this.usedBytes() + entry.model.sizeBytes > this.init.budgetBytes) return false
    this.startLoading(entry).then(() => { this.releaseOne(entry) }, (err: Error) => {
      this.init.logger.warn({err, modelId: id}, 'preloading a model failed; its first task tries again')
    })
    return true
  }

  /** Waits until `id` is loaded (unloading idle models if it must) and holds it until `release`. */
  async acquire (id: ModelId, signal?: AbortSignal): Promise<EngineLease<E>> {
    const entry = this.entries.get(id)
    if (entry == null) throw new EnginePoolError({code: 'MODEL_NOT_SERVED', modelId: id}, `model ${id} is not served here`)
    const wait = async <T>(promise: Promise<T>): Promise<T> => signal == null ? await promise : await abortable(promise, signal)
    for (;;) {
      if (this.disposed) throw new EnginePoolError({code: 'POOL_DISPOSED', modelId: id}, 'the engines are being unloaded')
      signal?.throwIfAborted()
      if (entry.draining && this.roomWaiters === 0) entry.draining = false
      if (entry.engine != null && !entry.draining) {
        entry.leases++
        return this.lease(entry, entry.engine)
      }
      if (entry.loading != null) {
        await wait(entry.loading)
        continue
      }
      if (entry.engine == null && this.makeRoom(entry)) {
        // The load comes with a lease for this caller, taken before anyone else wakes up: a
        // caller waiting for another model cannot unload it between the load and this lease.
        const loading = this.startLoading(entry)
        try {
          return this.lease(entry, await wait(loading))
        } catch (err) {
          if (signal?.aborted === true) loading.then(() => { this.releaseOne(entry) }, () => {})
          throw err
        }
      }
      // Here either no room yet (this caller needs memory) or the model is draining (it waits for the reload).
      const needsRoom = entry.engine == null
      if (needsRoom) this.roomWaiters++
      try {
        await wait(this.changed.promise)
      } catch (err) {
        // A caller that gives up may have been what kept a model draining.
        this.notify()
        throw err
      } finally {
        if (needsRoom) this.roomWaiters--
      }
    }
  }

  /** Unloads every engine, busy or not (the owner aborts what runs on them first); later acquires fail POOL_DISPOSED. */
  async dispose (): Promise<void> {
    this.disposed = true
    this.notify()
    const closing: Array<Promise<unknown>> = []
    for (const entry of this.allEntries()) {
      // A load still running closes its own engine when it sees the pool disposed.
      if (entry.loading != null) closing.push(entry.loading.catch(() => {}))
      if (entry.engine != null) closing.push(this.init.close(entry.engine))
      if (entry.closing != null) closing.push(entry.closing)
      entry.engine = undefined
    }
    await Promise.allSettled(closing)
  }

  /** A lease over one use already counted in `entry.leases`. */
  private lease (entry: Entry<E>, engine: E): EngineLease<E> {
    entry.lastUsedAt = ++this.uses
    let released = false
    return {
      engine,
      model: entry.model,
      release: () => {
        if (released) return
        released = true
        this.releaseOne(entry)
      }
    }
  }

  private releaseOne (entry: Entry<E>): void {
    entry.leases--
    entry.lastUsedAt = ++this.uses
    // A model removed while in use goes once its last use ends.
    if (entry.leases === 0 && entry.engine != null && this.retired.has(entry)) this.unload(entry)
    this.notify()
  }

  private usedBytes (): number {
    let used = 0
    for (const e of this.allEntries()) if (e.engine != null || e.loading != null || e.closing != null) used += e.model.sizeBytes
    return used
  }

  private closingBytes (): number {
    let closing = 0
    for (const e of this.allEntries()) if (e.closing != null) closing += e.model.sizeBytes
    return closing
  }

  /** Entries, and removed ones still holding memory (it counts until freed). */
  private allEntries (): Array<Entry<E>> {
    return [...this.entries.values(), ...this.retired]
  }

  /**
   * Unloads least recently used idle models until `entry` fits. False when it cannot fit yet:
   * the busy models in the way are marked draining (they take no new work until released and
   * unloaded), and the caller waits for a change.
   */
  private makeRoom (entry: Entry<E>): boolean {
    const budget = this.init.budgetBytes
    const need = entry.model.sizeBytes
    const others = [...this.entries.values()].filter(e => e !== entry && e.engine != null).sort((a, b) => a.lastUsedAt - b.lastUsedAt)
    // Memory of engines already closing is as good as free: it is waited for, not unloaded again.
    for (const victim of others) {
      if (this.usedBytes() - this.closingBytes() + need <= budget) break
      if (victim.leases === 0) this.unload(victim)
    }
    let short = this.usedBytes() - this.closingBytes() + need - budget
    if (short > 0) {
      for (const busy of others) {
        if (short <= 0) break
        if (busy.engine == null) continue
        busy.draining = true
        short -= busy.model.sizeBytes
      }
      return false
    }
    return this.usedBytes() + need <= budget
  }

  private unload (entry: Entry<E>): void {
    const engine = entry.engine as E
    entry.engine = undefined
    entry.draining = false
    this.init.logger.info({modelId: entry.model.id}, 'unloading model')
    entry.closing = this.init.close(engine).catch((err: Error) => { this.init.logger.warn({err, modelId: entry.model.id}, 'unloading a model failed') }).finally(() => {
      entry.closing = undefined
      this.retired.delete(entry)
      this.notify()
    })
  }

  /** Loads the entry's engine; on success it holds one lease for whoever started the load. */
  private async startLoading (entry: Entry<E>): Promise<E> {
    const startedAt = performance.now()
    this.init.logger.info({modelId: entry.model.id, path: entry.model.path}, 'loading model')
    entry.loading = this.init.open(entry.model)
    try {
      const engine = await entry.loading
      if (this.disposed) {
        await this.init.close(engine)
        throw new EnginePoolError({code: 'POOL_DISPOSED', modelId: entry.model.id}, 'the engines are being unloaded')
      }
      entry.engine = engine
      entry.leases++
      this.init.logger.info({modelId: entry.model.id, ms: Math.round(performance.now() - startedAt)}, 'model loaded')
      return engine
    } finally {
      entry.loading = undefined
      this.notify()
    }
  }

  private notify (): void {
    this.changed.resolve()
    this.changed = Promise.withResolvers<void>()
  }
}

function mib (bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1)
}
