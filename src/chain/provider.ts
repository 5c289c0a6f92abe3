import {JsonRpcProvider} from 'ethers'

export interface ProviderOptions {
  /** How often ethers polls for blocks/logs; small on loopback, seconds on a public chain. */
  pollingIntervalMs?: number
}

/**
 * The one way the project builds an ethers provider. `staticNetwork` skips the chain id probe
 * (and its endless retry loop when the node is down); `cacheTimeout: -1` turns off ethers'
 * 250 ms request cache, which otherwise hands back a stale pending nonce to back-to-back txs.
 */
export function createProvider (rpcUrl: string, chainId: number, opts: ProviderOptions = {}): JsonRpcProvider {
  const provider = new JsonRpcProvider(rpcUrl, chainId, {staticNetwork: true, cacheTimeout: -1})
  provider.pollingInterval = opts.pollingIntervalMs ?? (isLoopback(rpcUrl) ? 50 : 2_000)
  return provider
}

function isLoopback (rpcUrl: string): boolean {
  const host = new URL(rpcUrl).hostname
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]'
}
