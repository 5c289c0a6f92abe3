import {createRequire} from 'node:module'

/**
 * libsecp256k1 through the `secp256k1` package's N-API prebuild: ~50 µs to recover a key and
 * ~40 µs to sign, where ethers' pure-JS curve takes ~1.4 ms to verify and ~1 ms to sign.
 * CommonJS; where no prebuild loads, the package falls back to pure JS by itself.
 */
export const secp256k1 = createRequire(import.meta.url)('secp256k1') as typeof import('secp256k1')
