// The few functions of `secp256k1` (libsecp256k1 through N-API) that the project uses;
// the package ships no types, and these are all the project needs of it.
declare module 'secp256k1' {
  /** Deterministic (RFC 6979), low-s; `signature` is r ‖ s, 64 bytes. Throws on an invalid key. */
  export function ecdsaSign (msg32: Uint8Array, privateKey: Uint8Array): {signature: Uint8Array, recid: number}
  /** The signer's public key (33 bytes compressed, or 65 uncompressed); throws when none recovers. */
  export function ecdsaRecover (signature: Uint8Array, recid: number, msg32: Uint8Array, compressed?: boolean): Uint8Array
}
