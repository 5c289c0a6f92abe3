import {determinismClass} from '../inference/determinismClass.js'
import {EnginePool, type EngineLease, type PooledModel} from '../inference/enginePool.js'
import type {LlamaEngine} from '../inference/llamaEngine.js'
import type {ServedModel} from '../protocols/messages.js'
import type {ModelId} from '../protocols/modelId.js'
import type {Logger} from '../util/logger.js'
import {Verifier, type Claim, type Verdict} from './verifier.js'

export interface VerifierPoolInit {
  /** Memory the loaded models may take together (see EnginePool). */
  budgetBytes: number
  openEngine: (model: PooledModel) => Promise<LlamaEngine>
  logger: Logger
}

/**
 * A Verifier for each model a node checks (an oracle verifying in process, a validator), on
 * engines loaded on demand within one memory budget. A claim is always checked on the task's
 * model: a claim whose class names another model's file is refused by the Verifier itself.
 */
export class VerifierPool {
  private readonly pool: EnginePool<LlamaEngine>
  private readonly classes = new Map<ModelId, string>()

  constructor (init: VerifierPoolInit) {
    this.pool = new EnginePool<LlamaEngine>({
      budgetBytes: init.budgetBytes,
      open: init.openEngine,
      close: async (engine) => { await engine.dispose() },
      logger: init.logger
    })
  }

  /** A verified model file to check claims on; throws MODEL_TOO_LARGE when it can never fit the budget. */
  add (model: PooledModel): void {
    this.pool.add(model)
  }

  has (id: ModelId): boolean {
    return this.pool.has(id)
  }

  /** Loads `id` (unloading idle models if it must) and returns its class. */
  async load (id: ModelId, signal?: AbortSignal): Promise<string> {
    const lease = await this.pool.acquire(id, signal)
    try {
      return this.classOf(lease)
    } finally {
      lease.release()
    }
  }

  /** The classes this pool has checked in: a result of one of them can be audited by re-execution. */
  ownClasses (): string[] {
    return [...this.classes.values()]
  }

  /** The models as a heartbeat tells them (class '' until first loaded). */
  served (): ServedModel[] {
    const loaded = new Set(this.pool.loaded())
    return this.pool.models().map(m => ({id: m.id, determinismClass: this.classes.get(m.id) ?? '', loaded: loaded.has(m.id)}))
  }

  /** Checks `claim` on model `modelId`. */
  async check (modelId: ModelId, claim: Claim, options: {signal?: AbortSignal, reexecute?: boolean, partial?: boolean} = {}): Promise<Verdict> {
    const lease = await this.pool.acquire(modelId, options.signal)
    try {
      return await new Verifier(lease.engine, this.classOf(lease)).check(claim, options)
    } finally {
      lease.release()
    }
  }

  /** Requests running and waiting on the loaded engines. */
  activity (): {running: number, queued: number} {
    let running = 0
    let queued = 0
    for (const id of this.pool.loaded()) {
      const engine = this.pool.loadedEngine(id)
      running += engine?.running ?? 0
      queued += engine?.queued ?? 0
    }
    return {running, queued}
  }

  async dispose (): Promise<void> {
    await this.pool.dispose()
  }

  private classOf (lease: EngineLease<LlamaEngine>): string {
    let own = this.classes.get(lease.model.id)
    if (own == null) {
      own = determinismClass(lease.model.sha256, lease.engine.info.gpu)
      this.classes.set(lease.model.id, own)
    }
    return own
  }
}
