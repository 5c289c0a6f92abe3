import {formatEther, parseEther, toBeHex} from 'ethers'
import {existsSync} from 'node:fs'
import {mkdir} from 'node:fs/promises'
import {networkInterfaces} from 'node:os'
import {dirname} from 'node:path'
import {createProvider} from '../chain/provider.js'
import {startAnvil} from '../devnet/anvil.js'
import type {Address} from '../protocols/address.js'
import type {OperatorIo} from './operatorContext.js'
import {OperatorError} from './operatorError.js'

export interface ChainCommandOptions {
  host: string
  port: number
  chainId: number
  /** Seconds between blocks; undefined = a block per transaction. */
  blockTimeSeconds?: number
  /** Loaded at start when it exists, written every `stateIntervalSeconds` and at a clean stop. */
  statePath?: string
  stateIntervalSeconds: number
  /** Accounts topped up to `FUND_BALANCE` at every start. */
  fund: Address[]
  /** Aborted by SIGINT/SIGTERM: the chain stops and writes its state. */
  io: OperatorIo & {signal: AbortSignal}
}

export const CHAIN_DEFAULTS = {host: '127.0.0.1', port: 8545, stateIntervalSeconds: 5} as const

/** What each `--fund` account holds after a start: gas for years of a small network's transactions. */
export const FUND_BALANCE = parseEther('1000')

/** Loading a large state file takes a while before anvil answers. */
const START_TIMEOUT_MS = 60_000

/**
 * `cortensord chain`: a private EVM chain for a network spread over several hosts (the embedded
 * anvil), kept across restarts in a state file. Runs in the foreground until its signal aborts.
 * It has no dev accounts: the keys of anvil's test mnemonic are public, and this chain may be
 * reachable from a LAN; operators' own keystores are funded instead.
 */
export async function runChain (opts: ChainCommandOptions): Promise<number> {
  const {io} = opts
  let resumed = false
  if (opts.statePath !== undefined) {
    resumed = existsSync(opts.statePath)
    await mkdir(dirname(opts.statePath), {recursive: true})
  }
  io.err.write(`starting anvil on ${opts.host}:${opts.port}${resumed ? ` from ${opts.statePath}` : ''}\n`)
  const anvil = await startAnvil({
    host: opts.host,
    port: opts.port,
    chainId: opts.chainId,
    blockTimeSeconds: opts.blockTimeSeconds,
    statePath: opts.statePath,
    stateIntervalSeconds: opts.statePath === undefined ? undefined : opts.stateIntervalSeconds,
    devAccounts: 0,
    startTimeoutMs: START_TIMEOUT_MS,
    signal: io.signal
  })
  const provider = createProvider(anvil.rpcUrl, anvil.chainId)
  try {
    const [chainId, block] = await Promise.all([provider.send('eth_chainId', []) as Promise<string>, provider.getBlockNumber()])
    io.out.write(`rpc       ${anvil.rpcUrl}\nchain id  ${Number(chainId)}\nblock     ${block}\n`)
    if (opts.host === '0.0.0.0' || opts.host === '::') {
      for (const address of lanAddresses()) io.out.write(`reachable at http://${address}:${anvil.port}\n`)
    }
    io.out.write(opts.statePath === undefined
      ? 'state     none: the chain is lost when it stops (pass --state FILE to keep it)\n'
      : `state     ${opts.statePath} (${resumed ? 'loaded' : 'new'}; written every ${opts.stateIntervalSeconds} s and at stop)\n`)
    for (const address of opts.fund) {
      const balance = await provider.getBalance(address)
      if (balance >= FUND_BALANCE) {
        io.out.write(`funded    ${address} holds ${formatEther(balance)} ETH already\n`)
        continue
      }
      // anvil's own method: no transaction, no faucet account whose key someone could reuse.
      await provider.send('anvil_setBalance', [address, toBeHex(FUND_BALANCE)])
      io.out.write(`funded    ${address} now holds ${formatEther(FUND_BALANCE)} ETH\n`)
    }
    io.out.write('ready; SIGINT or SIGTERM stops the chain and writes its state\n')

    const stopped = new Promise<'signal'>(resolve => {
      if (io.signal.aborted) resolve('signal')
      io.signal.addEventListener('abort', () => { resolve('signal') }, {once: true})
    })
    const outcome = await Promise.race([stopped, anvil.exited])
    if (outcome === 'signal') {
      io.err.write('stopping the chain\n')
      await anvil.stop()
    }
    // A clean stop writes the state file before anvil exits 0. Ctrl-C reaches anvil too (one
    // process group), so it may be anvil that stopped first, cleanly.
    const {code, signal} = await anvil.exited
    if (code !== 0) {
      const state = opts.statePath === undefined ? '' : `; ${opts.statePath} holds the state of its last periodic write`
      throw new OperatorError({code: 'CHAIN_STOPPED'}, `anvil exited ${outcome === 'signal' ? 'while stopping' : 'unexpectedly'} (${signal ?? `code ${code}`})${state}`)
    }
    io.out.write(`stopped${opts.statePath === undefined ? '' : `; state written to ${opts.statePath}`}\n`)
    return 0
  } finally {
    provider.destroy()
    await anvil.stop()
  }
}

/** This host's non-loopback IPv4 addresses, where other hosts reach a chain bound to every interface. */
function lanAddresses (): string[] {
  return Object.values(networkInterfaces()).flatMap(list => list ?? []).filter(a => a.family === 'IPv4' && !a.internal).map(a => a.address)
}
