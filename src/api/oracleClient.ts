import type {ActorRef, ActorSystem} from '../actors/actorSystem.js'
import {ASK_TIMEOUT_MS} from '../actors/askTimeouts.js'
import {ChainClient} from '../actors/chain/chainClient.js'
import type {ChainMessage} from '../actors/chain/messages.js'
import type {CompleteReply, OracleMessage, TaskRecord, TaskRequest} from '../actors/oracle/messages.js'
import type {MinerView} from '../actors/oracle/selectMiners.js'
import type {ContractAddresses} from '../chain/contracts.js'
import type {PromptTools} from '../inference/promptTools.js'
import type {ModelCatalog, RegisteredModel} from './modelCatalog.js'
import {toAddress, type Address} from '../protocols/address.js'
import type {ModelId} from '../protocols/modelId.js'
import {ApiError} from './httpApi.js'

export interface OracleClientInit {
  system: ActorSystem
  oracle: ActorRef<OracleMessage>
  /** For reads the API needs (NodeStats counters). */
  chain: ActorRef<ChainMessage>
  /** `rpcUrl`: scheme, host and port only; an API key in the operator's URL is never served. */
  network: {networkId: string, chainId: number, rpcUrl: string, contracts: ContractAddresses, deployBlock: number}
  /** The registry's models, which requests name by id or name. */
  catalog: ModelCatalog
  /** The model of a request that names none: the first in the oracle's config. */
  defaultModelId: ModelId
  /** Tokenizer and chat template of a model this oracle holds; undefined for one it has no copy of. */
  promptToolsOf: (modelId: ModelId) => Promise<PromptTools | undefined>
  /** Whether this oracle can check miners' outputs of the model (its own copy, validators, or verification off); null when it can, else why not. */
  unverifiable: (modelId: ModelId) => string | null
  /** A miner heard from within this long counts as serving its models now. */
  minerLiveMs: number
  /** The miners' context size: longer prompts are refused up front (413). */
  contextSize: number
  defaults: {defaultRedundancy: number, defaultMaxTokens: number}
  /** Longest a request may wait for its miners (reassignments included). */
  resultTimeoutMs: number
  /** The node's shutdown signal: once it aborts, waiting requests fail at once with 503 `NODE_STOPPING`. */
  signal?: AbortSignal
}

export interface MinerSummary extends MinerView {
  heartbeatAgeMs: number
  /** NodeStats on chain (null when unreadable). */
  chain: {pingCount: string, lastPingAt: string, assigned: string, precommitted: string, committed: string, agreed: string, disagreed: string, expired: string, rejected: string} | null
  /** Wei paid to this miner by the tasks this oracle settled. */
  earnedWei: string
}

/** The answer to a request the stopping node will not finish. */
const NODE_STOPPING = {status: 503, code: 'NODE_STOPPING', error: 'the node is stopping; retry on another oracle or once it is back'} as const

function nodeStopping (): ApiError {
  return new ApiError(NODE_STOPPING.status, NODE_STOPPING.code, NODE_STOPPING.error)
}

/** The oracle actor's client for every front door (router API, OpenAI routes, dashboard): asks in, API errors out. */
export class OracleClient {
  private readonly chain: ChainClient

  constructor (readonly init: OracleClientInit) {
    this.chain = new ChainClient(init.system, init.chain)
  }

  /**
   * The registered model a request names by id or name (the oracle's first model when it names
   * none): 404 for one not registered or deactivated, 503 for one this oracle cannot verify.
   */
  async resolveModel (requested: unknown, param: string): Promise<RegisteredModel> {
    if (requested != null && typeof requested !== 'string' && typeof requested !== 'number') {
      throw new ApiError(400, 'INVALID_FIELD', `"${param}" must be a model name or registry id, got ${JSON.stringify(requested)}`, param)
    }
    const model = await this.init.catalog.resolve(requested == null ? this.init.defaultModelId : String(requested), param)
    const why = this.init.unverifiable(model.id)
    if (why != null) throw new ApiError(503, 'MODEL_NOT_VERIFIABLE', `model ${model.name} (id ${model.id}) is registered, but ${why}`, param)
    return model
  }

  /** Prompt tokens as the miners of `modelId` count them; 413 when the prompt leaves no room to generate. */
  async checkPrompt (modelId: ModelId, prompt: string, param: string): Promise<number | null> {
    const tools = await this.init.promptToolsOf(modelId)
    if (tools == null) return null
    const tokens = tools.countTokens(prompt)
    if (tokens >= this.init.contextSize) {
      throw new ApiError(413, 'PROMPT_TOO_LONG', `prompt is ${tokens} tokens; the miners' context holds ${this.init.contextSize} (prompt and answer together)`, param)
    }
    return tokens
  }

  /** Every registered model with how many live miners serve it now (and hold it in memory). */
  async models (): Promise<Array<RegisteredModel & {miners: number, loaded: number, verifiable: boolean}>> {
    const [models, views] = await Promise.all([this.init.catalog.list(), this.minerViews()])
    const now = Date.now()
    const live = views.filter(v => now - v.seenAt <= this.init.minerLiveMs)
    return models.map(model => {
      const serving = live.map(v => v.models.find(m => m.id === model.id)).filter(m => m != null)
      return {...model, miners: serving.length, loaded: serving.filter(m => m.loaded).length, verifiable: this.init.unverifiable(model.id) == null}
    })
  }

  /**
   * Runs one request through the network; rejections become API errors with their status. A
   * node that stops meanwhile answers 503 `NODE_STOPPING` at once: the wait is ended by
   * answering it ourselves, which also clears the ask's timer (none is left behind).
   */
  async complete (request: TaskRequest, options: {signal?: AbortSignal, onToken?: (text: string) => void} = {}): Promise<TaskRecord> {
    const stopping = this.init.signal
    if (stopping?.aborted === true) throw nodeStopping()
    let pending: ActorRef<CompleteReply> | undefined
    const onStop = (): void => {
      if (pending != null) this.init.system.tell<CompleteReply>(pending, {type: 'Rejected', ...NODE_STOPPING})
    }
    stopping?.addEventListener('abort', onStop, {once: true})
    try {
      const reply = await this.init.system.ask<OracleMessage, CompleteReply>(this.init.oracle,
        replyTo => {
          pending = replyTo
          return {type: 'Complete', request, replyTo, signal: options.signal, onToken: options.onToken}
        },
        this.init.resultTimeoutMs + ASK_TIMEOUT_MS.chainSend)
      if (reply.type === 'Rejected') throw new ApiError(reply.status, reply.code, reply.error)
      return reply.record
    } finally {
      stopping?.removeEventListener('abort', onStop)
    }
  }

  async tasks (): Promise<TaskRecord[]> {
    return await this.init.system.ask<OracleMessage, TaskRecord[]>(this.init.oracle, replyTo => ({type: 'ListTasks', replyTo}), ASK_TIMEOUT_MS.status)
  }

  async task (id: string): Promise<TaskRecord> {
    if (!/^\d{1,78}$/.test(id)) throw new ApiError(400, 'INVALID_TASK_ID', `task id must be a decimal number, got "${id}"`)
    const record = await this.init.system.ask<OracleMessage, TaskRecord | null>(this.init.oracle, replyTo => ({type: 'GetTask', taskId: id, replyTo}), ASK_TIMEOUT_MS.status)
    if (record == null) throw new ApiError(404, 'TASK_NOT_FOUND', `no task ${id} on this oracle`)
    return record
  }

  /** Live miners (heartbeats) with their on-chain counters and what they earned here. */
  async miners (): Promise<MinerSummary[]> {
    const [views, tasks] = await Promise.all([this.minerViews(), this.tasks()])
    const earned = new Map<Address, bigint>()
    for (const task of tasks) {
      for (const event of task.trail) {
        if (event.name !== 'TaskEnded') continue
        for (const winner of event.args.winners as string[]) {
          const key = toAddress(winner)
          earned.set(key, (earned.get(key) ?? 0n) + BigInt(String(event.args.payoutEach)))
        }
      }
    }
    const now = Date.now()
    return await Promise.all(views.map(async (view): Promise<MinerSummary> => {
      const read = await this.chain.read({contract: 'nodeStats', functionName: 'statsOf', args: [view.address]})
      const s = read.type === 'Value' ? read.value : undefined
      const str = (key: keyof NonNullable<typeof s>): string => String(s?.[key] ?? 0n)
      return {
        ...view,
        heartbeatAgeMs: now - view.seenAt,
        chain: s == null ? null : {pingCount: str('pingCount'), lastPingAt: str('lastPingAt'), assigned: str('assigned'), precommitted: str('precommitted'), committed: str('committed'), agreed: str('agreed'), disagreed: str('disagreed'), expired: str('expired'), rejected: str('rejected')},
        earnedWei: String(earned.get(view.address) ?? 0n)
      }
    }))
  }

  async info (): Promise<unknown> {
    return {
      network: this.init.network.networkId,
      chain: {chainId: this.init.network.chainId, rpcUrl: this.init.network.rpcUrl, deployBlock: this.init.network.deployBlock},
      contracts: this.init.network.contracts,
      defaultModel: this.init.defaultModelId,
      contextSize: this.init.contextSize,
      models: await this.models()
    }
  }

  /** Every miner the oracle has heard, as its latest heartbeat said. */
  private async minerViews (): Promise<MinerView[]> {
    return await this.init.system.ask<OracleMessage, MinerView[]>(this.init.oracle, replyTo => ({type: 'ListMiners', replyTo}), ASK_TIMEOUT_MS.status)
  }

  /** Tokens the winning miner generated (what `usage.completion_tokens` reports). */
  completionTokens (record: TaskRecord): number {
    const winner = record.agreement?.agreeing[0]
    return record.results.find(r => r.miner === winner)?.tokens ?? 0
  }
}
