/**
 * The only file that touches nact. nact is CommonJS and unmaintained: named ESM imports
 * fail at run time, `spawnStateless` ignores `onCrash`, and its state reset is synchronous.
 * Everything else in the project sees this typed surface: spawn an actor from a
 * definition, `tell` it, `ask` it with a named timeout, stop it.
 */
import nact from 'nact'
import {CortensorError} from '../util/cortensorError.js'
import type {Logger} from '../util/logger.js'
import {sleep} from '../util/sleep.js'

/** Typed address of an actor; travels inside messages as `replyTo`. */
export type ActorRef<M> = nact.Ref<M>

/** How a crashing actor is treated (one entry of the supervision tree, src/runtime). */
export interface RestartPolicy {
  /** `restart`: dispose the resource, re-run `init`, keep the mailbox. `stop`: stop the actor. */
  strategy: 'restart' | 'stop'
  /** More crashes than this within `withinMs` escalate: the node stops with the reason. */
  maxRestarts: number
  withinMs: number
  /** Delay before restart number n is `min(backoffMs.max, backoffMs.initial * 2^(n-1))`. */
  backoffMs: {initial: number, max: number}
}

export interface ActorContext<M> {
  self: ActorRef<M>
  name: string
  log: Logger
}

/**
 * One actor: an async `init` that acquires its resource (messages that arrive meanwhile are
 * stashed and handled in order once it is ready), a `receive` per message, and `dispose`
 * that releases the resource on crash and on stop.
 */
export interface ActorDefinition<S, M> {
  name: string
  init: (ctx: ActorContext<M>) => Promise<S>
  receive: (state: S, msg: M, ctx: ActorContext<M>) => S | Promise<S>
  dispose?: (state: S) => void | Promise<void>
  /**
   * Called with the message whose handling crashed: the actor answers its `replyTo` with a
   * failure, so in-flight work is failed explicitly, never silently dropped.
   */
  failMessage?: (msg: M, error: Error) => void
}

export class ActorError extends CortensorError<
  | {code: 'ASK_TIMEOUT', actor: string, message: string, timeoutMs: number}
  | {code: 'ACTOR_STOPPED', actor: string}
  | {code: 'CRASH_LOOP', actor: string, crashes: number, withinMs: number}
> {}

/** Called once when an actor's crashes escalate; the daemon stops with a non-zero exit. */
export type FatalHandler = (error: ActorError, cause: Error) => void

type Internal<S> =
  | {$internal: 'ready', state: S, generation: number}
  | {$internal: 'initFailed', error: Error, generation: number}

function isInternal<S> (msg: unknown): msg is Internal<S> {
  return typeof msg === 'object' && msg != null && '$internal' in msg
}

export class ActorSystem {
  private readonly root = nact.start()
  private readonly stopped = new WeakSet<object>()
  private readonly disposers = new Map<string, () => Promise<void>>()

  constructor (private readonly log: Logger, private readonly onFatal: FatalHandler) {}

  spawn<S, M> (def: ActorDefinition<S, M>, policy: RestartPolicy): ActorRef<M> {
    const log = this.log.child({actor: def.name})
    // Lives outside nact's state so that a reset keeps the stash and the crash history.
    const box: {phase: 'init' | 'ready' | 'stopped', state?: S, current?: M, stash: M[], crashes: number[], generation: number} =
      {phase: 'init', stash: [], crashes: [], generation: 0}
    let self: ActorRef<M> | undefined

    const startInit = (ref: ActorRef<M>): void => {
      box.phase = 'init'
      const generation = ++box.generation
      const ctx = {self: ref, name: def.name, log}
      def.init(ctx).then(
        state => { this.tellUnchecked(ref, {$internal: 'ready', state, generation}) },
        (error: Error) => { this.tellUnchecked(ref, {$internal: 'initFailed', error, generation}) }
      )
    }

    const disposeState = async (): Promise<void> => {
      const state = box.state
      box.state = undefined
      if (state !== undefined && def.dispose != null) {
        try {
          await def.dispose(state)
        } catch (err) {
          log.warn({err}, 'dispose failed')
        }
      }
    }

    const handle = async (msg: M | Internal<S>, ctx: ActorContext<M>): Promise<void> => {
      if (isInternal<S>(msg)) {
        // A late answer from an init that a restart superseded: drop its resource.
        if (msg.generation !== box.generation) {
          if (msg.$internal === 'ready' && def.dispose != null) await def.dispose(msg.state)
          return
        }
        if (msg.$internal === 'initFailed') throw msg.error
        box.state = msg.state
        box.phase = 'ready'
        log.debug({stashed: box.stash.length}, 'ready')
        while (box.stash.length > 0) await receive(box.stash.shift() as M, ctx)
        return
      }
      if (box.phase !== 'ready') {
        box.stash.push(msg)
        return
      }
      await receive(msg, ctx)
    }

    // Remembers the user message in hand, so a crash fails that one (a stashed message may be
    // replayed while nact believes it is handling the internal 'ready').
    const receive = async (msg: M, ctx: ActorContext<M>): Promise<void> => {
      box.current = msg
      box.state = await def.receive(box.state as S, msg, ctx)
      box.current = undefined
    }

    const onCrash = async (_msg: unknown, error: Error | undefined, ctx: any): Promise<symbol> => {
      const cause = error ?? new Error('unknown crash')
      log.error({err: cause, message: describe(box.current)}, 'actor crashed')
      const now = Date.now()
      box.crashes = [...box.crashes.filter(t => now - t < policy.withinMs), now]
      const giveUp = policy.strategy === 'stop' || box.crashes.length > policy.maxRestarts
      // The verdict on the node comes before the answers, so whoever hears "failed" can
      // already see that the node is going down.
      if (giveUp) {
        box.phase = 'stopped'
        if (self != null) this.stopped.add(self)
        if (policy.strategy === 'restart') {
          this.onFatal(new ActorError({code: 'CRASH_LOOP', actor: def.name, crashes: box.crashes.length, withinMs: policy.withinMs},
            `actor ${def.name} crashed ${box.crashes.length} times within ${policy.withinMs} ms; last: ${cause.message}`, {cause}), cause)
        }
      }
      if (box.current !== undefined) def.failMessage?.(box.current, cause)
      box.current = undefined
      if (giveUp) {
        for (const stashed of box.stash) def.failMessage?.(stashed, cause)
        box.stash = []
      }
      await disposeState()
      if (giveUp) return ctx.stop
      const delay = Math.min(policy.backoffMs.max, policy.backoffMs.initial * 2 ** (box.crashes.length - 1))
      log.warn({restart: box.crashes.length, delayMs: delay}, 'restarting actor')
      await sleep(delay)
      return ctx.reset
    }

    self = nact.spawn(this.root, async (_state: null, msg: M | Internal<S>, nactCtx: any) => {
      await handle(msg, {self: nactCtx.self, name: def.name, log})
      return null
    }, def.name, {
      initialStateFunc: (nactCtx: any) => {
        startInit(nactCtx.self)
        return null
      },
      onCrash: onCrash as any,
      afterStop: async () => {
        box.phase = 'stopped'
        await disposeState()
      }
    }) as ActorRef<M>

    this.disposers.set(def.name, async () => {
      if (self == null || this.stopped.has(self)) return
      this.stopped.add(self)
      box.phase = 'stopped'
      nact.stop(self)
      await disposeState()
    })
    return self
  }

  /** Fire and forget. Telling a stopped actor is a no-op that is logged, never a crash. */
  tell<M> (ref: ActorRef<M>, msg: M): void {
    this.tellUnchecked(ref, msg)
  }

  /** Request/response with an explicit timeout; the reply is the message's own reply union. */
  async ask<M, R> (ref: ActorRef<M>, makeMessage: (replyTo: ActorRef<R>) => M, timeoutMs: number): Promise<R> {
    if (this.stopped.has(ref)) throw new ActorError({code: 'ACTOR_STOPPED', actor: refName(ref)})
    let sent: M | undefined
    try {
      return await nact.query(ref, (tempRef: ActorRef<R>) => {
        sent = makeMessage(tempRef)
        return sent
      }, timeoutMs) as R
    } catch (err) {
      if ((err as Error).message === 'Query Timeout') {
        throw new ActorError({code: 'ASK_TIMEOUT', actor: refName(ref), message: describe(sent), timeoutMs},
          `${refName(ref)} did not answer ${describe(sent)} within ${timeoutMs} ms`)
      }
      if ((err as Error).message.startsWith('Actor stopped')) {
        throw new ActorError({code: 'ACTOR_STOPPED', actor: refName(ref)}, `${refName(ref)} has stopped`, {cause: err})
      }
      throw err
    }
  }

  /** Stops actors in the given order (dependents first), awaiting each one's dispose. */
  async stop (order: string[]): Promise<void> {
    for (const name of order) await this.disposers.get(name)?.()
    for (const dispose of this.disposers.values()) await dispose()
  }

  private tellUnchecked (ref: ActorRef<any>, msg: unknown): void {
    if (this.stopped.has(ref)) {
      this.log.debug({actor: refName(ref), message: describe(msg)}, 'message to stopped actor dropped')
      return
    }
    try {
      nact.dispatch(ref, msg)
    } catch {
      // nact asserts on dispatch to an actor that stopped itself (crash loop): not our crash.
      this.log.debug({actor: refName(ref), message: describe(msg)}, 'message to stopped actor dropped')
    }
  }
}

function refName (ref: unknown): string {
  return String((ref as {path?: {parts?: string[]}}).path?.parts?.join('/') ?? 'actor')
}

function describe (msg: unknown): string {
  if (typeof msg === 'object' && msg != null) {
    if ('type' in msg) return String(msg.type)
    if ('$internal' in msg) return `$${String(msg.$internal)}`
  }
  return typeof msg
}
