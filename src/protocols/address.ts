import {CortensorError} from '../util/cortensorError.js'

declare const addressBrand: unique symbol

/**
 * An Ethereum address in its one in-process form: `0x` + 40 lower-case hex digits. Made only by
 * `toAddress`, at the edges (wire decode, config and key load, chain events), so everything
 * inside compares addresses with `===` and uses them as map keys as they are.
 */
export type Address = string & {readonly [addressBrand]: true}

export class AddressError extends CortensorError<{code: 'ADDRESS_INVALID', value: string}> {}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/

/** Normalises any letter case (checksummed or not); throws on anything that is not an address. */
export function toAddress (value: string): Address {
  if (!ADDRESS.test(value)) throw new AddressError({code: 'ADDRESS_INVALID', value}, `not a 0x-prefixed 20-byte address: ${JSON.stringify(value)}`)
  return value.toLowerCase() as Address
}
