import type {ActorRef, ActorSystem} from '../actors/actorSystem.js'
import {ASK_TIMEOUT_MS} from '../actors/askTimeouts.js'
import {ChainClient} from '../actors/chain/chainClient.js'
import type {ChainMessage} from '../actors/chain/messages.js'
import type {CompleteReply, OracleMessage, TaskRecord, TaskRequest} from '../actors/oracle/messages.js'
import type {MinerView} from '../actors/oracle/selectMiners.js'
import type {ContractAddresses} from '../chain/contracts.js'
import type {PromptTools} from '../inference/promptTools.js'
import {toAddress, type Address} from '../protocols/address.js'
import type {ModelId} from '../protocols/modelId.js'
import {ApiError} from './httpApi.js'

/** The model the oracle serves: the registry's record and the oracle's verified copy. */
export interface ServedModel {
  name: string
  path: string
  quantization: string
  sizeBytes: number
  cid: string
}

export interface OracleClientInit {
  system: ActorSystem
  oracle: ActorRef<OracleMessage>
  /** For reads the API needs (NodeStats counters). */
  chain: ActorRef<ChainMessage>
  network: {networkId: string, chainId: number, rpcUrl: string, contracts: ContractAddresses, deployBlock: number}
  modelId: ModelId
  /** Resolves once the oracle holds the verified model (undefined when it has none). */
  model: Promise<ServedModel | undefined>
  /** Tokenizer and chat template of the served model; undefined when the oracle has no copy. */
  promptTools: Promise<PromptTools | undefined>
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

  /** Accepts the registry id or the model's name; anything else is a 404 naming what is served. */
  async resolveModel (requested: unknown, param: string): Promise<ModelId> {
    const served = await this.init.model
    if (requested == null) return this.init.modelId
    if (typeof requested === 'string' && (requested === this.init.modelId || requested === served?.name)) return this.init.modelId
    throw new ApiError(404, 'UNKNOWN_MODEL', `model ${JSON.stringify(requested)} is not served here; this oracle serves ${served?.name ?? 'model'} (id ${this.init.modelId})`, param)
  }

  /** Prompt tokens as the miners count them; 413 when the prompt leaves no room to generate. */
  async checkPrompt (prompt: string, param: string): Promise<number | null> {
    const tools = await this.init.promptTools
    if (tools == null) return null
    const tokens = tools.countTokens(prompt)
    if (tokens >= this.init.contextSize) {
      throw new ApiError(413, 'PROMPT_TOO_LONG', `prompt is ${tokens} tokens; the miners' context holds ${this.init.contextSize} (prompt and answer together)`, param)
    }
    return tokens
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
    const [views, tasks] = await Promise.all([
      this.init.system.ask<OracleMessage, MinerView[]>(this.init.oracle, replyTo => ({type: 'ListMiners', replyTo}), ASK_TIMEOUT_MS.status),
      this.tasks()
    ])
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
    const model = await this.init.model
    return {
      network: this.init.network.networkId,
      chain: {chainId: this.init.network.chainId, rpcUrl: this.init.network.rpcUrl, deployBlock: this.init.network.deployBlock},
      contracts: this.init.network.contracts,
      models: [{id: this.init.modelId, name: model?.name ?? null, cid: model?.cid ?? null, quantization: model?.quantization ?? null, sizeBytes: model?.sizeBytes ?? null, contextSize: this.init.contextSize}]
    }
  }

  /** Tokens the winning miner generated (what `usage.completion_tokens` reports). */
  completionTokens (record: TaskRecord): number {
    const winner = record.agreement?.agreeing[0]
    return record.results.find(r => r.miner === winner)?.tokens ?? 0
  }
}
