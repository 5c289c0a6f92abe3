import {FetchRequest, JsonRpcProvider, type JsonRpcPayload, type JsonRpcResult} from 'ethers'
import {CortensorError} from '../util/cortensorError.js'
import {createSilentLogger, type Logger} from '../util/logger.js'
import {RecentAnswer} from '../util/recentAnswer.js'
import {rpcUrlForLogs} from './accessCache.js'

export interface ProviderOptions {
  /** How often ethers polls for blocks/logs; small on loopback, seconds on a public chain. */
  pollingIntervalMs?: number
}

/**
 * How long one JSON-RPC exchange may take before its URL counts as down. ethers' own default
 * (5 minutes) would hold a node on a blackholed endpoint long after the next one could answer;
 * the slowest honest call (a wide `eth_getLogs` on a public endpoint) takes seconds.
 */
export const RPC_REQUEST_TIMEOUT_MS = 30_000

export class RpcError extends CortensorError<{code: 'RPC_URLS_EMPTY'}> {}

/**
 * The RPC URLs of one node and which of them is in use, shared by every provider the node
 * builds (its chain view, and the chain actor's provider, rebuilt after each crash), so a URL
 * found dead once is not tried again first by the next provider.
 *
 * One URL at a time, moving to the next (in order, wrapping around) when an exchange fails at
 * the HTTP level, rather than ethers' FallbackProvider: that one sends each call to several
 * endpoints at once and takes a quorum, which a chain node's writes cannot live with — the tx
 * queue counts nonces locally from one `pending` count and resends the same signed bytes after
 * a lost reply, and both are only sound against one mempool view at a time. A read served by a
 * slightly lagging endpoint after a switch is harmless: every reader already polls.
 */
export class RpcEndpoints {
  readonly urls: readonly string[]
  private readonly log: Logger
  private active = 0
  /** URLs that failed and have not answered since: each outage is said once. */
  private readonly down = new Set<number>()
  private readonly lastHead = new RecentAnswer<number>()

  constructor (urls: string | readonly string[], logger: Logger = createSilentLogger()) {
    this.urls = typeof urls === 'string' ? [urls] : [...urls]
    if (this.urls.length === 0) throw new RpcError({code: 'RPC_URLS_EMPTY'}, 'at least one RPC URL is needed')
    this.log = logger
  }

  /**
   * The chain head, asked once for every provider of the node: a head asked less than `maxAgeMs`
   * ago (or still being asked) is the answer. The node's pollers (the access cache, the chain
   * watcher) then cost one `eth_blockNumber` per interval between them, not one each.
   */
  async head (maxAgeMs: number, ask: () => Promise<number>): Promise<number> {
    return await this.lastHead.get(maxAgeMs, ask)
  }

  /** Index of the URL requests go to now. */
  get current (): number {
    return this.active
  }

  /** A request to `urls[index]` was answered. */
  answered (index: number): void {
    if (!this.down.delete(index)) return
    const url = rpcUrlForLogs(this.urls[index]!)
    this.log.info({rpc: url}, `chain at ${url} answers again`)
  }

  /** A request to `urls[index]` failed at the HTTP level: requests go to the next URL. */
  failed (index: number, err: unknown): void {
    const next = (index + 1) % this.urls.length
    // Concurrent requests fail together: only the first moves on, the others retry where it went.
    if (this.active === index) this.active = next
    // One URL: nothing to switch to, and the callers (access cache, tx queue) say the outage.
    if (this.urls.length === 1) return
    const url = rpcUrlForLogs(this.urls[index]!)
    if (this.down.has(index)) {
      this.log.debug({rpc: url, err: failureForLogs(err)}, 'chain still unreachable')
      return
    }
    this.down.add(index)
    const to = rpcUrlForLogs(this.urls[this.active]!)
    this.log.warn({rpc: url, next: to, err: failureForLogs(err)}, `chain at ${url} is unreachable; switching to ${to}`)
  }
}

/**
 * Why an exchange failed, fit for a log line or a status page: ethers' short message (its full one quotes the
 * request, URL and all), with any URL cut to scheme, host and port (API keys ride in paths).
 */
export function failureForLogs (err: unknown): string {
  const e = err as {shortMessage?: string, message?: string}
  return String(e.shortMessage ?? e.message ?? err).replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, url => rpcUrlForLogs(url))
}

/**
 * A JsonRpcProvider over several URLs (`RpcEndpoints`). Every failure of the HTTP exchange
 * itself — no connection, a timeout, a non-2xx status, a body that is not JSON — is the URL's
 * fault, and the same payload goes to the next URL, each URL at most once per call; JSON-RPC
 * errors inside an answer (a revert, "nonce too low") are the request's and come back as they
 * are. A read is resent to the next URL at once (reads are idempotent); a raw transaction is
 * not: the next URL is used from now on, but the failure goes back to the tx queue, which
 * knows whether the first URL may have taken it (it looks the hash up before resending, and
 * never signs the call again at a new nonce while the first one may still be mined).
 */
class FailoverJsonRpcProvider extends JsonRpcProvider {
  readonly #endpoints: RpcEndpoints

  constructor (endpoints: RpcEndpoints, chainId: number) {
    super(endpoints.urls[endpoints.current], chainId, {staticNetwork: true, cacheTimeout: -1, batchStallTime: 0})
    this.#endpoints = endpoints
  }

  /** Shared by the node's providers for half a polling interval (see `RpcEndpoints.head`). */
  override async getBlockNumber (): Promise<number> {
    return await this.#endpoints.head(this.pollingInterval / 2, async () => await super.getBlockNumber())
  }

  /** The URL in use now (log lines name it: the chain watcher, the access cache). */
  override _getConnection (): FetchRequest {
    return this.#connection(this.#endpoints.current)
  }

  // Typed as JsonRpcProvider's (results only); like it, error objects pass through to ethers.
  override async _send (payload: JsonRpcPayload | JsonRpcPayload[]): Promise<JsonRpcResult[]> {
    const sendsTransaction = (Array.isArray(payload) ? payload : [payload]).some(p => p.method === 'eth_sendRawTransaction')
    for (let attempt = 1; ; attempt++) {
      const index = this.#endpoints.current
      const request = this.#connection(index)
      // UTF-8 both ways with Node's native codec: ethers' own (pure JS, code point by code
      // point) was the largest cost of reading logs and receipts that carry prompts and outputs.
      request.body = Buffer.from(JSON.stringify(payload))
      request.setHeader('content-type', 'application/json')
      try {
        const response = await request.send()
        response.assertOk()
        const body = JSON.parse(Buffer.from(response.body ?? []).toString('utf8')) as JsonRpcResult | JsonRpcResult[]
        this.#endpoints.answered(index)
        return Array.isArray(body) ? body : [body]
      } catch (err) {
        this.#endpoints.failed(index, err)
        if (sendsTransaction || attempt >= this.#endpoints.urls.length) throw err
      }
    }
  }

  #connection (index: number): FetchRequest {
    const request = new FetchRequest(this.#endpoints.urls[index]!)
    request.timeout = RPC_REQUEST_TIMEOUT_MS
    return request
  }
}

/**
 * The one way the project builds an ethers provider, over one URL or several (`RpcEndpoints`,
 * shared by the providers of one node). `staticNetwork` skips the chain id probe (and its
 * endless retry loop when the node is down); `cacheTimeout: -1` turns off ethers' 250 ms
 * request cache, which otherwise hands back a stale pending nonce to back-to-back txs;
 * `batchStallTime: 0` sends each request on the next tick instead of holding it 10 ms for a
 * batch (requests made in one tick still go together).
 */
export function createProvider (rpc: string | readonly string[] | RpcEndpoints, chainId: number, opts: ProviderOptions = {}): JsonRpcProvider {
  const endpoints = rpc instanceof RpcEndpoints ? rpc : new RpcEndpoints(rpc)
  const provider = new FailoverJsonRpcProvider(endpoints, chainId)
  provider.pollingInterval = opts.pollingIntervalMs ?? (endpoints.urls.every(isLoopback) ? 50 : 2_000)
  return provider
}

function isLoopback (rpcUrl: string): boolean {
  const host = new URL(rpcUrl).hostname
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]'
}
