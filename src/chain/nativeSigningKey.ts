import {getBytes, hexlify, Signature, SigningKey, type BytesLike} from 'ethers'
import {secp256k1} from '../protocols/libsecp256k1.js'

/**
 * ethers' SigningKey, signing with libsecp256k1 instead of pure JS: every transaction a node
 * sends is signed here (`new Wallet(new NativeSigningKey(key))`). Same RFC 6979 nonce and low s,
 * so the signatures are byte for byte those ethers makes.
 */
export class NativeSigningKey extends SigningKey {
  readonly #key: Uint8Array

  constructor (privateKey: BytesLike) {
    super(privateKey)
    this.#key = getBytes(privateKey)
  }

  override sign (digest: BytesLike): Signature {
    const {signature, recid} = secp256k1.ecdsaSign(getBytes(digest, 'digest'), this.#key)
    return Signature.from({r: hexlify(signature.subarray(0, 32)), s: hexlify(signature.subarray(32)), v: 27 + recid})
  }
}
