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
  /** The pool's use count at its last acquire or release: the least recently used has the lowest. */
  lastUsedAt: number
}

/**
 * The engines of the models a node serves, loaded on demand within a memory budget: a model
 * that does not fit unloads the least recently used idle one; when every loaded model is busy,
 * the caller waits for one to be released. Several models that fit together stay loaded, so
 * a node serving many models pays a load only when its working set changes.
 */
export class EnginePool<E> {
  private readonly entries = new Map<ModelId, Entry<E>>()
  private changed = Promise.withResolvers<void>()
  private disposed = false
  /** A use counter, not a clock: two uses within one millisecond still have an order. */
  private uses = 0

  constructor (private readonly init: EnginePoolInit<E>) {}

  /** Makes a model servable. A model larger than the whole budget could never load: MODEL_TOO_LARGE. */
  add (model: PooledModel): void {
    if (model.sizeBytes > this.init.budgetBytes) {
      throw new EnginePoolError({code: 'MODEL_TOO_LARGE', modelId: model.id}, `model ${model.id} takes ${mib(model.sizeBytes)} MiB; the memory budget is ${mib(this.init.budgetBytes)} MiB (inference.memoryBudgetMiB)`)
    }
    if (!this.entries.has(model.id)) this.entries.set(model.id, {model, leases: 0, lastUsedAt: 0})
  }

  has (id: ModelId): boolean {
    return this.entries.has(id)
  }

  models (): PooledModel[] {
    return [...this.entries.values()].map(e => e.model)
  }

  /** The model whose file has this sha256 (a claim names its model by the sha in its class). */
  modelBySha (sha256: string): PooledModel | undefined {
    const bare = (s: string): string => s.toLowerCase().replace(/^0x/, '')
    return this.models().find(m => bare(m.sha256) === bare(sha256))
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
    this.startLoading(entry).catch(() => {})
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
      if (entry.engine != null) return this.lease(entry, entry.engine)
      if (entry.loading != null) {
        await wait(entry.loading)
        continue
      }
      if (this.makeRoom(entry)) {
        await wait(this.startLoading(entry))
        continue
      }
      // Every model in the way is busy (or still closing): wait for a release, then look again.
      await wait(this.changed.promise)
    }
  }

  /** Unloads every engine, busy or not (the owner aborts what runs on them first); later acquires fail POOL_DISPOSED. */
  async dispose (): Promise<void> {
    this.disposed = true
    this.notify()
    const closing: Array<Promise<unknown>> = []
    for (const entry of this.entries.values()) {
      if (entry.loading != null) closing.push(entry.loading.then(async e => { await this.init.close(e) }, () => {}))
      else if (entry.engine != null) closing.push(this.init.close(entry.engine))
      if (entry.closing != null) closing.push(entry.closing)
      entry.engine = undefined
    }
    await Promise.allSettled(closing)
  }

  private lease (entry: Entry<E>, engine: E): EngineLease<E> {
    entry.leases++
    entry.lastUsedAt = ++this.uses
    let released = false
    return {
      engine,
      model: entry.model,
      release: () => {
        if (released) return
        released = true
        entry.leases--
        entry.lastUsedAt = ++this.uses
        this.notify()
      }
    }
  }

  private usedBytes (): number {
    let used = 0
    for (const e of this.entries.values()) if (e.engine != null || e.loading != null || e.closing != null) used += e.model.sizeBytes
    return used
  }

  /**
   * Unloads least recently used idle models until `entry` fits. False when it cannot fit yet
   * (busy models, or memory still being freed): the caller waits for a change.
   */
  private makeRoom (entry: Entry<E>): boolean {
    const budget = this.init.budgetBytes
    const need = entry.model.sizeBytes
    // Memory of engines already closing is as good as free: it is waited for, not unloaded again.
    while (this.usedBytes() - this.closingBytes() + need > budget) {
      const idle = [...this.entries.values()].filter(e => e !== entry && e.engine != null && e.leases === 0).sort((a, b) => a.lastUsedAt - b.lastUsedAt)
      const victim = idle[0]
      if (victim == null) return false
      this.unload(victim)
    }
    return this.usedBytes() + need <= budget
  }

  private closingBytes (): number {
    let closing = 0
    for (const e of this.entries.values()) if (e.closing != null) closing += e.model.sizeBytes
    return closing
  }

  private unload (entry: Entry<E>): void {
    const engine = entry.engine as E
    entry.engine = undefined
    this.init.logger.info({modelId: entry.model.id}, 'unloading the least recently used model to make room')
    entry.closing = this.init.close(engine).catch((err: Error) => { this.init.logger.warn({err, modelId: entry.model.id}, 'unloading a model failed') }).finally(() => {
      entry.closing = undefined
      this.notify()
    })
  }

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
