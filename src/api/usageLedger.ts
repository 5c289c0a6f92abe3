import {nodeMetrics} from '../util/metrics.js'

/** One client's usage since the node started, as `GET /api/v1/usage` answers it. */
export interface ClientUsage {
  /** The token's id (`tok_…`), or the client's IP when the node takes no tokens. */
  token: string
  requests: number
  prompt_tokens: number
  completion_tokens: number
}

/** Requests and inference tokens per client, for the usage API and `cortensor_api_usage_total`. */
export class UsageLedger {
  private readonly byClient = new Map<string, ClientUsage>()

  request (client: string): void {
    this.entry(client).requests++
    nodeMetrics.apiTokenUsage.inc({token: client, kind: 'requests'})
  }

  tokens (client: string, counts: {prompt: number, completion: number}): void {
    const entry = this.entry(client)
    entry.prompt_tokens += counts.prompt
    entry.completion_tokens += counts.completion
    if (counts.prompt > 0) nodeMetrics.apiTokenUsage.inc({token: client, kind: 'prompt_tokens'}, counts.prompt)
    if (counts.completion > 0) nodeMetrics.apiTokenUsage.inc({token: client, kind: 'completion_tokens'}, counts.completion)
  }

  of (client: string): ClientUsage {
    return {...(this.byClient.get(client) ?? {token: client, requests: 0, prompt_tokens: 0, completion_tokens: 0})}
  }

  all (): ClientUsage[] {
    return [...this.byClient.values()].map(u => ({...u}))
  }

  private entry (client: string): ClientUsage {
    let entry = this.byClient.get(client)
    if (entry == null) {
      entry = {token: client, requests: 0, prompt_tokens: 0, completion_tokens: 0}
      this.byClient.set(client, entry)
    }
    return entry
  }
}
