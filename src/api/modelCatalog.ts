import {ChainClient} from '../actors/chain/chainClient.js'
import type {ActorRef, ActorSystem} from '../actors/actorSystem.js'
import type {ChainMessage} from '../actors/chain/messages.js'
import {toModelId, type ModelId} from '../protocols/modelId.js'
import {ApiError} from './httpApi.js'

/** A model of the chain's ModelRegistry, as the API shows it. */
export interface RegisteredModel {
  id: ModelId
  name: string
  cid: string
  sha256: string
  sizeBytes: number
  quantization: string
  active: boolean
}

/** Registry reads are cached this long: a new model shows up within it, and a busy API costs no extra reads. */
const CATALOG_TTL_MS = 10_000

/**
 * The registered models, read from the chain (ModelRegistry `modelCount`, then `modelOf` of
 * each, for its `active` flag and updates), at most every 10 s. During a chain outage the last
 * list read keeps serving: answers do not wait for the chain, and neither does naming a model.
 * Requests name a model by registry id (first) or by name.
 */
export class ModelCatalog {
  private readonly chain: ChainClient
  private refreshing?: Promise<RegisteredModel[]>
  private last?: {at: number, models: RegisteredModel[]}

  constructor (system: ActorSystem, chain: ActorRef<ChainMessage>) {
    this.chain = new ChainClient(system, chain)
  }

  /** Every registered model, by id (deactivated ones included, flagged). */
  async list (): Promise<RegisteredModel[]> {
    const last = this.last
    if (last != null && Date.now() - last.at <= CATALOG_TTL_MS) return last.models
    this.refreshing ??= this.read().then(models => {
      this.last = {at: Date.now(), models}
      return models
    }).finally(() => { this.refreshing = undefined })
    if (last == null) return await this.refreshing
    // A list already read answers now; the refresh lands for the next request, and a failed one keeps this list.
    this.refreshing.catch(() => {})
    return last.models
  }

  /**
   * The active model `requested` names, by id or name (a name registered twice means its
   * latest registration). 404 naming what is registered when there is none.
   */
  async resolve (requested: string, param: string): Promise<RegisteredModel> {
    const models = await this.list()
    const match = models.find(m => m.id === requested) ?? models.filter(m => m.name === requested).at(-1)
    if (match == null) {
      const names = models.filter(m => m.active).map(m => `${m.name} (id ${m.id})`).join(', ')
      throw new ApiError(404, 'UNKNOWN_MODEL', `model ${JSON.stringify(requested)} is not registered on this network; registered: ${names === '' ? 'none' : names}`, param)
    }
    if (!match.active) throw new ApiError(404, 'MODEL_INACTIVE', `model ${match.name} (id ${match.id}) is deactivated in the registry`, param)
    return match
  }

  private async read (): Promise<RegisteredModel[]> {
    const count = await this.chain.read({contract: 'modelRegistry', functionName: 'modelCount', args: []})
    if (count.type !== 'Value') throw new ApiError(503, 'REGISTRY_UNREADABLE', `cannot read the model registry: ${count.error}`)
    const ids = Array.from({length: Number(count.value)}, (_, i) => BigInt(i + 1))
    return await Promise.all(ids.map(async (id): Promise<RegisteredModel> => {
      const read = await this.chain.read({contract: 'modelRegistry', functionName: 'modelOf', args: [id]})
      if (read.type !== 'Value') throw new ApiError(503, 'REGISTRY_UNREADABLE', `cannot read model ${id} from the registry: ${read.error}`)
      const m = read.value
      return {id: toModelId(id), name: m.name, cid: m.cid, sha256: m.sha256Digest, sizeBytes: Number(m.sizeBytes), quantization: m.quantization, active: m.active}
    }))
  }
}
