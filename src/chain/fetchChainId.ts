/**
 * Asks a JSON-RPC endpoint for its chain id with one plain `eth_chainId` POST, bounded by
 * `signal`: the probe a caller makes before it builds a provider (ethers alone retries for
 * minutes). Throws when the endpoint does not answer, answers an HTTP error, or names no id.
 */
export async function fetchChainId (rpcUrl: string, signal?: AbortSignal): Promise<number> {
  const res = await fetch(rpcUrl, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify({jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: []}),
    signal
  })
  if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`)
  const body = await res.json() as {result?: unknown, error?: {message?: string}}
  if (typeof body.result !== 'string') throw new Error(body.error?.message ?? 'no chain id in the answer')
  return Number(BigInt(body.result))
}
