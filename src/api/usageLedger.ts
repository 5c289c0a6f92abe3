import {nodeMetrics} from '../util/metrics.js'

/** One client's usage since the node started, as `GET /api/v1/usage` answers it. */
export interface ClientUsage {
  /** The token's id (`tok_…`), or the client's IP when the node takes no tokens. */
  token: string
  requests: number
  prompt_tokens: number
  completion_tokens: number
}

/** Clients kept: a node without tokens counts IPs, which are not a bounded set; the least recently seen goes first. */
export const USAGE_CLIENTS_KEPT = 1024

/** Requests and inference tokens per client, for the usage API and `cortensor_api_usage_total`. */
export class UsageLedger {
  private readonly byClient = new Map<string, ClientUsage>()

  /** `metricLabel`: a client's `token` label (token ids are a bounded set; IPs are not). */
  constructor (private readonly opts: {metricLabel: (client: string) => string}) {}

  request (client: string): void {
    this.entry(client).requests++
    nodeMetrics.apiTokenUsage.inc({token: this.opts.metricLabel(client), kind: 'requests'})
  }

  tokens (client: string, counts: {prompt: number, completion: number}): void {
    const entry = this.entry(client)
    entry.prompt_tokens += counts.prompt
    entry.completion_tokens += counts.completion
    const token = this.opts.metricLabel(client)
    if (counts.prompt > 0) nodeMetrics.apiTokenUsage.inc({token, kind: 'prompt_tokens'}, counts.prompt)
    if (counts.completion > 0) nodeMetrics.apiTokenUsage.inc({token, kind: 'completion_tokens'}, counts.completion)
  }

  of (client: string): ClientUsage {
    return {...(this.byClient.get(client) ?? {token: client, requests: 0, prompt_tokens: 0, completion_tokens: 0})}
  }

  all (): ClientUsage[] {
    return [...this.byClient.values()].map(u => ({...u}))
  }

  private entry (client: string): ClientUsage {
    const entry = this.byClient.get(client) ?? {token: client, requests: 0, prompt_tokens: 0, completion_tokens: 0}
    // Re-inserted: the map's order is last seen, oldest first.
    this.byClient.delete(client)
    this.byClient.set(client, entry)
    if (this.byClient.size > USAGE_CLIENTS_KEPT) this.byClient.delete(this.byClient.keys().next().value!)
    return entry
  }
}
