import {type FeeData, isError, Transaction, type Interface, type JsonRpcProvider, type TransactionReceipt, type TransactionRequest, type Wallet} from 'ethers'
import {appendFileSync, closeSync, mkdirSync, openSync, writeSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {dirname} from 'node:path'
import {CortensorError} from '../util/cortensorError.js'
import {createSilentLogger, type Logger} from '../util/logger.js'
import {RecentAnswer} from '../util/recentAnswer.js'
import {sleep} from '../util/sleep.js'
import {cortensorErrorInterface, decodeRevert} from './contracts.js'
import {toAddress, type Address} from '../protocols/address.js'

export type TxErrorCode =
  /** The chain refused the call: `errorName`/`errorArgs` carry the decoded custom error. */
  | 'TX_REVERTED'
  /** Transient RPC failures outlasted the retry budget. */
  | 'TX_RPC_UNAVAILABLE'
  | 'TX_RECEIPT_TIMEOUT'
  /** The nonce kept being rejected after resyncing. */
  | 'TX_NONCE_CONFLICT'
  | 'TX_ABORTED'
  | 'TX_REJECTED'
  /** Sent before the process died, and the node no longer knows it (replaced or evicted). */
  | 'TX_DROPPED'

export class TxError extends CortensorError<{
  code: TxErrorCode
  label: string
  errorName?: string
  errorArgs?: unknown[]
  hash?: string
}> {}

export interface TxRetryOptions {
  /** Attempts per RPC step (populate, broadcast, receipt poll) before giving up. */
  maxAttempts: number
  initialDelayMs: number
  maxDelayMs: number
}

/** Gas limit = estimate × this / 100. */
export const GAS_HEADROOM_PERCENT = 150n
/** Fee data younger than this is used again for the next transaction (see `TxQueue.feeData`). */
export const FEE_DATA_MAX_AGE_MS = 2_000

export const DEFAULT_TX_RETRY: TxRetryOptions = {maxAttempts: 8, initialDelayMs: 100, maxDelayMs: 5_000}

export interface TxQueueInit {
  /** The wallet this queue is the only writer of; must be connected to a provider. */
  wallet: Wallet
  provider: JsonRpcProvider
  logger?: Logger
  /** Append-only JSON-lines record of every transaction's life; none when undefined. */
  journalPath?: string
  retry?: Partial<TxRetryOptions>
  receiptPollMs?: number
  receiptTimeoutMs?: number
  /** Decodes reverts into custom error names; all project contracts' errors by default. */
  errorInterface?: Interface
}

/** Builds the transaction to send (`contract.fn.populateTransaction(...)`), called when its turn comes. */
export type PopulateTx = () => TransactionRequest | Promise<TransactionRequest>

/**
 * Which queue a send waits in. `user`: someone is waiting on it (a task to create, a node to
 * register). `settlement`: bookkeeping that may wait (reveals, ends, pings). One wallet, one
 * nonce sequence: a queued `user` send is submitted before every `settlement` send that has
 * not started submitting yet.
 */
export type TxLane = 'user' | 'settlement'

export interface SendOptions {
  /** `settlement` when undefined. */
  lane?: TxLane
  signal?: AbortSignal
  /** Called once the node accepted the transaction, before it is mined. */
  onBroadcast?: (hash: string) => void
}

type JournalEvent =
  | {event: 'intent'}
  | {event: 'signed', nonce: number, hash: string}
  | {event: 'sent', nonce: number, hash: string}
  | {event: 'receipt', hash: string, status: number | null, blockNumber: number, gasUsed: bigint}
  | {event: 'failed', code: TxErrorCode, error: string, hash?: string}

/** A send waiting for its turn to be submitted. */
interface QueuedSend {
  label: string
  populate: PopulateTx
  signal: AbortSignal | undefined
  submitted: (hash: string) => void
  failed: (err: unknown) => void
  /** Its request with gas limit and fees, worked out ahead of its turn (everything but the nonce). */
  prepared?: Promise<TransactionRequest>
}

/**
 * Sends whose gas estimate and fees are fetched while earlier ones are being signed and
 * broadcast: only nonce, signature and broadcast are serial, so a burst is not paced by two RPC
 * round trips per transaction. Each estimate sees the chain as it is then, like a serial one
 * sees it without this queue's pending transactions; the state machines only send a dependent
 * transaction once what it depends on is mined.
 */
const PREPARE_AHEAD = 8

const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT'])

/** Connection-level failures and overloaded servers; never a revert or a rejected transaction. */
export function isTransientRpcError (err: unknown): boolean {
  if (isError(err, 'NETWORK_ERROR') || isError(err, 'TIMEOUT') || isError(err, 'SERVER_ERROR')) return true
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as {code?: unknown}).code
    if (typeof code === 'string' && TRANSIENT_NODE_CODES.has(code)) return true
    if (e.message === 'fetch failed') return true
  }
  return false
}

function isNonceError (err: unknown): boolean {
  if (isError(err, 'NONCE_EXPIRED') || isError(err, 'REPLACEMENT_UNDERPRICED')) return true
  return err instanceof Error && /nonce too (low|high)|already known|replacement transaction underpriced/i.test(err.message)
}

/**
 * The single writer of one wallet. Sends are serialised (populate → sign → broadcast), with the
 * nonce counted locally from one `pending` fetch and resynced when the node rejects it; they
 * wait in two FIFO lanes, and the next one submitted is the oldest `user` send, else the
 * oldest `settlement` send. Receipts are awaited concurrently, so back-to-back sends pipeline. Transient RPC failures are
 * retried with exponential backoff; reverts are not, and surface as `TxError('TX_REVERTED')`
 * naming the contract's custom error. Every step is appended to the journal.
 */
export class TxQueue {
  readonly address: Address
  private readonly wallet: Wallet
  private readonly provider: JsonRpcProvider
  private readonly log: Logger
  private readonly journalPath: string | undefined
  private readonly retry: TxRetryOptions
  private readonly receiptPollMs: number
  private readonly receiptTimeoutMs: number
  private readonly errorInterface: Interface
  private nextNonce: number | undefined
  private readonly lanes: {[K in TxLane]: QueuedSend[]} = {user: [], settlement: []}
  /** Whether the pump is submitting; it runs until both lanes are empty. */
  private pumping = false
  private idleWaiters: Array<() => void> = []
  private journalFd: number | undefined
  private readonly fees = new RecentAnswer<FeeData>()
  private closed = false

  constructor (init: TxQueueInit) {
    this.wallet = init.wallet.connect(init.provider)
    this.address = toAddress(init.wallet.address)
    this.provider = init.provider
    this.log = (init.logger ?? createSilentLogger()).child({component: 'txQueue', address: this.address})
    this.journalPath = init.journalPath
    this.retry = {...DEFAULT_TX_RETRY, ...init.retry}
    this.receiptPollMs = init.receiptPollMs ?? Math.max(10, init.provider.pollingInterval)
    this.receiptTimeoutMs = init.receiptTimeoutMs ?? 120_000
    this.errorInterface = init.errorInterface ?? cortensorErrorInterface
  }

  /**
   * Sends one transaction after every earlier one of its lane (and, for a `settlement` send,
   * after every `user` send queued before it is submitted), and resolves with its successful
   * receipt.
   */
  async send (label: string, populate: PopulateTx, opts: SendOptions = {}): Promise<TransactionReceipt> {
    const hash = await new Promise<string>((resolve, reject) => {
      this.lanes[opts.lane ?? 'settlement'].push({label, populate, signal: opts.signal, submitted: resolve, failed: reject})
      void this.pump()
    })
    opts.onBroadcast?.(hash)
    return await this.waitForReceipt(label, hash, opts.signal)
  }

  /** Forgets the local nonce so the next send asks the node (after `evm_revert`, or a tx sent outside this queue). */
  forgetNonce (): void {
    this.nextNonce = undefined
  }

  /**
   * Finds what became of the transactions the journal shows sent but never settled (the process
   * died waiting for them) and journals it: the receipt once mined, `TX_DROPPED` when the node no
   * longer knows the hash. Run once at start, beside new sends.
   */
  async recover (signal?: AbortSignal): Promise<number> {
    if (this.journalPath === undefined) return 0
    const text = await readFile(this.journalPath, 'utf8').catch(() => '')
    const open = new Map<string, string>()
    for (const line of text.split('\n')) {
      if (line.length === 0) continue
      let entry: {label?: string, event?: string, hash?: string, from?: string}
      try {
        entry = JSON.parse(line) as typeof entry
      } catch {
        continue // a line cut short by the crash
      }
      if (entry.hash == null || entry.from !== this.address) continue
      if (entry.event === 'sent') open.set(entry.hash, entry.label ?? 'unknown')
      else if (entry.event === 'receipt' || entry.event === 'failed') open.delete(entry.hash)
    }
    await Promise.all([...open].map(async ([hash, label]) => {
      try {
        if (await this.withRetry(label, signal, async () => await this.provider.getTransaction(hash)) === null) {
          await this.journal(label, {event: 'failed', code: 'TX_DROPPED', error: `${label}: ${hash} is unknown to the node`, hash})
          return
        }
        await this.waitForReceipt(label, hash, signal)
      } catch (err) {
        // A revert or a timeout is journaled by waitForReceipt; nobody waits on the outcome.
        this.log.debug({label, hash, err: (err as Error).message}, 'recovered transaction did not succeed')
      }
    }))
    if (open.size > 0) this.log.info({transactions: open.size}, 'settled transactions sent before a restart')
    return open.size
  }

  async chainId (): Promise<number> {
    return Number((await this.provider.getNetwork()).chainId)
  }

  /** Resolves once every send queued so far has been broadcast (or failed), and the lanes are empty. */
  async drained (): Promise<void> {
    if (!this.pumping) return
    await new Promise<void>((resolve) => { this.idleWaiters.push(resolve) })
  }

  /** Submits queued sends one at a time, `user` first, until both lanes are empty. */
  private async pump (): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      for (let next = this.nextQueued(); next !== undefined; next = this.nextQueued()) {
        this.prepareAhead()
        try {
          next.submitted(await this.submit(next.label, next.populate, next.signal, next.prepared))
        } catch (err) {
          next.failed(err)
        }
      }
    } finally {
      this.pumping = false
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const resolve of waiters) resolve()
    }
  }

  private nextQueued (): QueuedSend | undefined {
    return this.lanes.user.shift() ?? this.lanes.settlement.shift()
  }

  /** Starts estimating the sends next in line (in submission order). */
  private prepareAhead (): void {
    for (const item of [...this.lanes.user, ...this.lanes.settlement].slice(0, PREPARE_AHEAD)) {
      if (item.prepared != null || item.signal?.aborted === true) continue
      item.prepared = (async () => await this.withRetry(item.label, item.signal, async () => await this.estimate(await item.populate())))()
      // Awaited (and its error surfaced) when the send's turn comes.
      item.prepared.catch(() => {})
    }
  }

  private async submit (label: string, populate: PopulateTx, signal?: AbortSignal, prepared?: Promise<TransactionRequest>): Promise<string> {
    await this.journal(label, {event: 'intent'})
    try {
      for (let nonceAttempt = 0; ; nonceAttempt++) {
        this.checkAborted(label, signal)
        // A retry after a nonce conflict estimates afresh: the chain moved under the first one.
        const request = prepared != null && nonceAttempt === 0
          ? await prepared
          : await this.withRetry(label, signal, async () => await this.estimate(await populate()))
        const nonce = this.nextNonce ?? await this.withRetry(label, signal, async () => await this.provider.getTransactionCount(this.address, 'pending'))
        const populated = await this.wallet.populateTransaction({...request, nonce})
        this.checkAborted(label, signal)
        const raw = await this.wallet.signTransaction(populated)
        const hash = Transaction.from(raw).hash!
        await this.journal(label, {event: 'signed', nonce, hash})
        try {
          await this.broadcast(label, raw, hash, signal)
        } catch (err) {
          if (isNonceError(err) && nonceAttempt < 3) {
            this.log.warn({label, nonce, err: (err as Error).message}, 'nonce rejected; resyncing from the node')
            this.nextNonce = undefined
            continue
          }
          if (isNonceError(err)) throw new TxError({code: 'TX_NONCE_CONFLICT', label, hash}, `${label}: nonce still rejected after resyncing`, {cause: err})
          // The node may or may not hold the transaction: learn the nonce afresh next time.
          this.nextNonce = undefined
          throw err
        }
        this.nextNonce = nonce + 1
        await this.journal(label, {event: 'sent', nonce, hash})
        this.log.debug({label, nonce, hash}, 'tx sent')
        return hash
      }
    } catch (err) {
      const error = this.toTxError(label, err)
      await this.journal(label, {event: 'failed', code: error.code, error: error.message, ...(error.type.hash !== undefined ? {hash: error.type.hash} : {})})
      throw error
    }
  }

  /**
   * Gas limit and fees. ethers asks for the estimate and then the fee data, one after the other;
   * neither depends on the other, so they go out together: one RPC round trip less before every
   * broadcast (the time a user waits for a task to be gossiped).
   */
  private async estimate (request: TransactionRequest): Promise<TransactionRequest> {
    const [gasLimit, fees] = await Promise.all([
      // The estimate is taken against today's state; another account's transaction landing
      // first can send ours down a costlier path (the last reveal also closes the phase).
      request.gasLimit ?? this.wallet.estimateGas(request).then(gas => gas * GAS_HEADROOM_PERCENT / 100n),
      request.maxFeePerGas != null || request.gasPrice != null ? undefined : this.feeData()
    ])
    const pricing = fees == null
      ? {}
      : fees.maxFeePerGas != null && fees.maxPriorityFeePerGas != null
        ? {maxFeePerGas: fees.maxFeePerGas, maxPriorityFeePerGas: fees.maxPriorityFeePerGas}
        : {gasPrice: fees.gasPrice}
    return {...request, gasLimit, ...pricing}
  }

  /**
   * The fee data, asked again once it is `FEE_DATA_MAX_AGE_MS` old: ethers builds it from three
   * requests (the latest block, the gas price, the priority fee), and transactions sent close
   * together need it once. Its max fee is twice the base fee, headroom for several full blocks.
   */
  private async feeData (): Promise<FeeData> {
    return await this.fees.get(FEE_DATA_MAX_AGE_MS, async () => await this.provider.getFeeData())
  }

  /**
   * Broadcasts a signed transaction, resending the same bytes after transient failures: a
   * resend is idempotent, and "already known"/"nonce too low" after a lost reply means the
   * first copy got through, which the node confirms by returning it.
   */
  private async broadcast (label: string, raw: string, hash: string, signal?: AbortSignal): Promise<void> {
    let resent = false
    await this.withRetry(label, signal, async () => {
      try {
        // Not `broadcastTransaction`: it also asks for the block number and recovers the sender
        // from the signature in pure JS (~6 ms of CPU per transaction) to build a response we
        // never read. Errors map to the same codes (ethers' getRpcError keys on the method).
        await this.provider.send('eth_sendRawTransaction', [raw])
      } catch (err) {
        if (isTransientRpcError(err)) resent = true
        else if (resent && isNonceError(err) && await this.provider.getTransaction(hash) !== null) return
        throw err
      }
    })
  }

  private async waitForReceipt (label: string, hash: string, signal?: AbortSignal): Promise<TransactionReceipt> {
    const deadline = Date.now() + this.receiptTimeoutMs
    try {
      for (;;) {
        this.checkAborted(label, signal, hash)
        const receipt = await this.withRetry(label, signal, async () => await this.provider.getTransactionReceipt(hash))
        if (receipt !== null) {
          await this.journal(label, {event: 'receipt', hash, status: receipt.status, blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed})
          if (receipt.status !== 1) throw await this.minedRevert(label, receipt)
          return receipt
        }
        if (Date.now() > deadline) throw new TxError({code: 'TX_RECEIPT_TIMEOUT', label, hash}, `${label}: no receipt for ${hash} within ${this.receiptTimeoutMs} ms`)
        await sleep(this.receiptPollMs, signal)
      }
    } catch (err) {
      const error = this.toTxError(label, err, hash)
      if (error.code !== 'TX_REVERTED') {
        await this.journal(label, {event: 'failed', code: error.code, error: error.message, hash})
      }
      throw error
    }
  }

  /** A transaction that passed estimation but reverted when mined: replay it to learn why. */
  private async minedRevert (label: string, receipt: TransactionReceipt): Promise<TxError> {
    let name: string | undefined
    let args: unknown[] | undefined
    try {
      const tx = await this.provider.getTransaction(receipt.hash)
      if (tx !== null) await this.provider.call({...tx, blockTag: receipt.blockNumber - 1})
    } catch (err) {
      const decoded = decodeRevert((err as {data?: string}).data, this.errorInterface)
      name = decoded?.name
      args = decoded?.args
    }
    return new TxError({code: 'TX_REVERTED', label, hash: receipt.hash, errorName: name, errorArgs: args},
      `${label}: transaction ${receipt.hash} reverted in block ${receipt.blockNumber}${name !== undefined ? `: ${name}` : ''}`)
  }

  private async withRetry<T> (label: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      this.checkAborted(label, signal)
      try {
        return await fn()
      } catch (err) {
        if (!isTransientRpcError(err)) throw err
        if (attempt >= this.retry.maxAttempts) {
          throw new TxError({code: 'TX_RPC_UNAVAILABLE', label}, `${label}: RPC unavailable after ${attempt} attempts: ${(err as Error).message}`, {cause: err})
        }
        const delayMs = Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (attempt - 1))
        this.log.warn({label, attempt, delayMs, err: (err as Error).message}, 'transient RPC error; retrying')
        try {
          await sleep(delayMs, signal)
        } catch {
          this.checkAborted(label, signal)
        }
      }
    }
  }

  private checkAborted (label: string, signal: AbortSignal | undefined, hash?: string): void {
    if (signal?.aborted === true) {
      throw new TxError({code: 'TX_ABORTED', label, hash}, `${label}: aborted${hash !== undefined ? ` (tx ${hash} already sent)` : ''}`, {cause: signal.reason})
    }
  }

  private toTxError (label: string, err: unknown, hash?: string): TxError {
    if (err instanceof TxError) return err
    if (isError(err, 'CALL_EXCEPTION')) {
      const decoded = decodeRevert(err.data, this.errorInterface)
      const why = decoded?.signature ?? err.reason ?? err.shortMessage
      return new TxError({code: 'TX_REVERTED', label, hash, errorName: decoded?.name ?? err.reason ?? undefined, errorArgs: decoded?.args},
        `${label} reverted: ${why}`, {cause: err})
    }
    return new TxError({code: 'TX_REJECTED', label, hash}, `${label} failed: ${(err as Error).message}`, {cause: err})
  }

  /**
   * Appends one line, synchronously, to a file kept open: a line is on disk (in the page cache,
   * which a killed process does not lose) before the step it records goes on, and an append
   * costs one write, not an open, a write and a close (~0.5 ms of CPU each, four per transaction).
   */
  private async journal (label: string, entry: JournalEvent): Promise<void> {
    if (this.journalPath === undefined) return
    const line = JSON.stringify({ts: new Date().toISOString(), from: this.address, label, ...entry},
      (_key, value: unknown) => typeof value === 'bigint' ? value.toString() : value) + '\n'
    if (this.journalFd === undefined && !this.closed) {
      mkdirSync(dirname(this.journalPath), {recursive: true})
      this.journalFd = openSync(this.journalPath, 'a')
    }
    // After `close`, a send still finishing (aborted, failed) records its end the slow way.
    if (this.journalFd === undefined) appendFileSync(this.journalPath, line)
    else writeSync(this.journalFd, line)
  }

  /** Closes the journal file; later lines (sends still finishing) are appended one by one. */
  close (): void {
    this.closed = true
    if (this.journalFd !== undefined) closeSync(this.journalFd)
    this.journalFd = undefined
  }
}
