import {keccak256, parseEther, toBeHex, toUtf8Bytes, Wallet, type JsonRpcProvider} from 'ethers'
import {NativeSigningKey} from '../chain/nativeSigningKey.js'
import type {Role} from '../protocols/messages.js'

/** Whose key: a node's, or the admin's, who deploys and admits. */
export type DevnetRole = Role | 'admin'

/**
 * Deterministic devnet private keys: keccak256("cortensor-devnet/<role>/<index>"). Public by
 * construction: never use them on a chain holding value.
 */
export function devnetPrivateKey (role: DevnetRole, index: number): string {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`devnet key index must be a non-negative integer, got ${index}`)
  return keccak256(toUtf8Bytes(`cortensor-devnet/${role}/${index}`))
}

export function devnetWallet (role: DevnetRole, index: number, provider?: JsonRpcProvider): Wallet {
  return new Wallet(new NativeSigningKey(devnetPrivateKey(role, index)), provider)
}

export const DEFAULT_DEVNET_BALANCE = parseEther('10000')

/** Gives each address `balanceWei` on an anvil chain (`anvil_setBalance`; no transaction). */
export async function fundDevnetAccounts (provider: JsonRpcProvider, addresses: readonly string[], balanceWei = DEFAULT_DEVNET_BALANCE): Promise<void> {
  await Promise.all(addresses.map(async (address) => await provider.send('anvil_setBalance', [address, toBeHex(balanceWei)])))
}
