import type {AbortOptions} from '@libp2p/interface'
import type {Address} from '../protocols/address.js'
import type {Heartbeat, ServedModel} from '../protocols/messages.js'
import type {ModelId} from '../protocols/modelId.js'
import {VerifyExchangeError, type VerifyOptions} from '../protocols/verifyService.js'
import {CortensorError} from '../util/cortensorError.js'
import type {Logger} from '../util/logger.js'
import type {Claim, Verdict} from './verifier.js'

/** What an oracle knows of a validator from its latest gossip heartbeat. */
export interface ValidatorView {
  address: Address
  peerId: string
  /** The models it checks, each with its class. */
  models: readonly ServedModel[]
  /** Local receive time of the latest heartbeat (ms). */
  seenAt: number
}

export interface ValidatorChoice {
  validators: Iterable<ValidatorView>
  modelId: ModelId
  /** The class the claim declares: a validator of that class checks exactly, and can re-execute. */
  claimClass: string
  now: number
  /** Heartbeats older than this mean the validator is gone. */
  maxHeartbeatAgeMs: number
  /** The chain's view (IAM active + ACL validator role), from the access cache. */
  isAdmitted: (address: Address) => boolean
  /** Successive checks pass a growing turn: each starts at the next validator, spreading the load. */
  turn: number
}

/**
 * The validators to ask for one check, in order: live, admitted and serving the model; those
 * of the claim's class first; within each group round-robin from `turn`.
 */
export function orderValidators (input: ValidatorChoice): ValidatorView[] {
  const live: ValidatorView[] = []
  for (const v of input.validators) {
    if (input.now - v.seenAt > input.maxHeartbeatAgeMs) continue
    if (!v.models.some(m => m.id === input.modelId)) continue
    if (!input.isAdmitted(v.address)) continue
    live.push(v)
  }
  const classOf = (v: ValidatorView): string | undefined => v.models.find(m => m.id === input.modelId)?.determinismClass
  // A fixed order first, so the rotation is the same whatever order heartbeats came in.
  live.sort((a, b) => a.address.localeCompare(b.address))
  const rotate = (group: ValidatorView[]): ValidatorView[] => {
    const start = group.length === 0 ? 0 : input.turn % group.length
    return [...group.slice(start), ...group.slice(0, start)]
  }
  return [...rotate(live.filter(v => classOf(v) === input.claimClass)), ...rotate(live.filter(v => classOf(v) !== input.claimClass))]
}

export class ValidatorPoolError extends CortensorError<{code: 'NO_VALIDATOR', modelId: ModelId, tried: number}> {}

/** Heartbeats a validator may miss before it counts as gone (as for miners). */
const HEARTBEATS_MISSED = 3

export interface ValidatorPoolInit {
  /** Asks one validator (the verify protocol's `check`, given its peer id). */
  ask: (validator: ValidatorView, claim: Claim, options: VerifyOptions, abort: AbortOptions) => Promise<Verdict>
  isAdmitted: (address: Address) => boolean
  heartbeatIntervalMs: number
  logger: Logger
  now?: () => number
}

/**
 * The validators an oracle in `validators` mode checks claims with, learnt from their
 * heartbeats. A check goes to one of them, and to the next when one cannot answer (it is
 * unreachable, refuses, or answers a verdict it did not sign).
 */
export class ValidatorPool {
  private readonly validators = new Map<Address, ValidatorView>()
  private readonly now: () => number
  private turn = 0

  constructor (private readonly init: ValidatorPoolInit) {
    this.now = init.now ?? Date.now
  }

  /** A validated heartbeat: a validator's is remembered, any other ignored. */
  heartbeat (hb: Heartbeat): void {
    if (hb.role !== 'validator') return
    this.validators.set(hb.address, {address: hb.address, peerId: hb.peerId, models: hb.models, seenAt: this.now()})
  }

  /**
   * Determinism classes the live validators hold, of every model: the classes whose results can
   * be audited by re-execution (a class names its model's sha256, so models never mix).
   */
  classes (): string[] {
    const maxAge = this.maxAgeMs()
    const now = this.now()
    const live = [...this.validators.values()].filter(v => now - v.seenAt <= maxAge && this.init.isAdmitted(v.address))
    return [...new Set(live.flatMap(v => v.models.map(m => m.determinismClass)).filter(c => c !== ''))]
  }

  /** Checks `claim` with a live validator of `modelId`; NO_VALIDATOR when none could answer. */
  async check (claim: Claim, options: VerifyOptions & {modelId: ModelId, signal?: AbortSignal}): Promise<Verdict> {
    const {modelId, signal, reexecute, partial} = options
    this.forgetGone()
    const order = orderValidators(this.choice(modelId, claim.determinismClass, this.turn++))
    let last: VerifyExchangeError | undefined
    for (const validator of order) {
      signal?.throwIfAborted()
      try {
        return await this.init.ask(validator, claim, {modelId, reexecute, partial}, {signal})
      } catch (err) {
        // Only a validator's failure is worth another validator: an abort or a claim the
        // protocol cannot carry would fail the same everywhere.
        if (!(err instanceof VerifyExchangeError) || signal?.aborted === true) throw err
        this.init.logger.warn({validator: validator.address, code: err.code, reason: err.type.reason}, 'validator failed; trying the next')
        last = err
      }
    }
    const tried = order.length === 0 ? '' : `; ${order.length} failed, the last: ${last?.message ?? ''}`
    throw new ValidatorPoolError({code: 'NO_VALIDATOR', modelId, tried: order.length}, `no live validator for model ${modelId}${tried}`, {cause: last})
  }

  private choice (modelId: ModelId, claimClass: string, turn: number): ValidatorChoice {
    return {validators: this.validators.values(), modelId, claimClass, now: this.now(), maxHeartbeatAgeMs: this.maxAgeMs(), isAdmitted: this.init.isAdmitted, turn}
  }

  private maxAgeMs (): number {
    return this.init.heartbeatIntervalMs * HEARTBEATS_MISSED
  }

  /** Validators silent for long are dropped: the map holds only nodes that may come back soon. */
  private forgetGone (): void {
    const now = this.now()
    for (const [address, v] of this.validators) if (now - v.seenAt > 10 * this.maxAgeMs()) this.validators.delete(address)
  }
}
