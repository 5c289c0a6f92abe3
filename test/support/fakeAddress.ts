import {toAddress, type Address} from '../../src/protocols/address.js'

/** A valid address standing for the number `n` (`0x00…0n`): distinct per number, ordered as the numbers are. */
export function fakeAddress (n: number): Address {
  return toAddress('0x' + n.toString(16).padStart(40, '0'))
}
