import {privateKeyFromRaw} from '@libp2p/crypto/keys'
import type {PeerId} from '@libp2p/interface'
import {peerIdFromPrivateKey as libp2pPeerIdFromPrivateKey} from '@libp2p/peer-id'
import {computeAddress, decryptKeystoreJson, encryptKeystoreJson, getAddress, getBytes, hexlify, isKeystoreJson, randomBytes, scrypt, SigningKey} from 'ethers'
import {scrypt as opensslScrypt} from 'node:crypto'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {dirname} from 'node:path'
import {toAddress, type Address} from '../protocols/address.js'
import {CortensorError} from '../util/cortensorError.js'

// Lives with the protocol layer, which needs it to authenticate stream peers; re-exported for the CLI.
export {addressFromPeerId} from '../protocols/peerAddress.js'

/**
 * One secp256k1 key is both the node's Ethereum account and its libp2p identity, so a gossip
 * message's signer (recovered from its signature) and a stream's remote peer id *are* Ethereum
 * addresses the contracts know.
 */
export interface NodeKey {
  address: Address
  peerId: PeerId
  /** 32 raw secp256k1 private key bytes. Never log it. */
  privateKey: Uint8Array
}

/** What `cortensord keys new` / `keys show` print: nothing secret. */
export interface NodeKeyInfo {
  /** EIP-55 checksummed, for people to read. */
  address: string
  peerId: string
}

export type KeyErrorCode =
  | 'KEYSTORE_EXISTS'
  | 'KEYSTORE_NOT_FOUND'
  /** There, but not readable (permissions, a folder). */
  | 'KEYSTORE_UNREADABLE'
  | 'KEYSTORE_UNWRITABLE'
  | 'KEYSTORE_INVALID'
  | 'KEYSTORE_WRONG_PASSWORD'
  | 'PRIVATE_KEY_INVALID'

export class KeyError extends CortensorError<{code: KeyErrorCode, path?: string}> {}

/**
 * scrypt N for new keystores. geth's "standard" N = 2^18 (ethers' default 2^17) costs 1–3 s of
 * pure-JS scrypt on a small box, paid at every daemon start. N = 2^14 (geth's "light" setting,
 * r = 8, p = 1, 16 MiB) decrypts in ~0.1–0.2 s here: still a memory-hard KDF, at a lower cost
 * to an attacker who steals the file — choose a strong password. Files written with other
 * parameters (geth, MetaMask exports) load fine: the parameters are read from the file.
 */
export const KEYSTORE_SCRYPT = {N: 1 << 14, r: 8, p: 1} as const

/*
 * ethers derives keystore keys with its pure-JavaScript scrypt: at N = 2^14 that is ~0.15 s of
 * CPU and a 16 MiB buffer left to the garbage collector, which an idle node had not collected
 * 20 s after start. Node's scrypt (OpenSSL) gives the same bytes in less time and frees its
 * memory as it returns. Registered once for the whole process: every keystore read and written
 * uses it.
 */
scrypt.register(async (password, salt, N, r, p, keyLength) => await new Promise((resolve, reject) => {
  // OpenSSL refuses to use more than `maxmem`; a keystore's own N, r, p say how much it needs.
  opensslScrypt(password, salt, keyLength, {N, r, p, maxmem: 129 * N * r * p + 1024 * 1024}, (err, key) => {
    if (err == null) resolve(new Uint8Array(key))
    else reject(err)
  })
}))

/** Builds the node key from a raw 32-byte key or its 0x-hex form (devnet keys, tests). */
export function nodeKeyFromPrivateKey (privateKey: string | Uint8Array): NodeKey {
  let raw: Uint8Array
  let address: Address
  try {
    raw = getBytes(privateKey)
    // SigningKey checks the length (32 bytes) and that 0 < k < n.
    address = toAddress(computeAddress(new SigningKey(raw).publicKey))
  } catch {
    // The cause is dropped on purpose: ethers puts the offending value (the key) in it.
    throw new KeyError({code: 'PRIVATE_KEY_INVALID'}, 'not a 32-byte secp256k1 private key')
  }
  return {address, peerId: peerIdFromPrivateKey(raw), privateKey: raw}
}

/** The libp2p peer id of a raw 32-byte secp256k1 private key. */
export function peerIdFromPrivateKey (privateKey: Uint8Array): PeerId {
  return libp2pPeerIdFromPrivateKey(privateKeyFromRaw(privateKey))
}

export function nodeKeyInfo (key: NodeKey): NodeKeyInfo {
  return {address: getAddress(key.address), peerId: key.peerId.toString()}
}

/**
 * Generates a fresh key and writes it as an encrypted Ethereum JSON keystore (v3) at `path`
 * (mode 0600). Refuses to overwrite: losing a node key loses its registration and stake.
 */
export async function createKeystore (path: string, password: string): Promise<NodeKeyInfo> {
  return await writeKeystore(path, randomBytes(32), password)
}

/** Encrypts a given key into a new keystore at `path` (devnet keys); refuses to overwrite. */
export async function writeKeystore (path: string, privateKey: string | Uint8Array, password: string): Promise<NodeKeyInfo> {
  const key = nodeKeyFromPrivateKey(privateKey)
  const json = await encryptKeystoreJson(
    {address: key.address, privateKey: hexlify(key.privateKey)},
    password,
    {scrypt: KEYSTORE_SCRYPT}
  )
  try {
    await mkdir(dirname(path), {recursive: true})
  } catch (err) {
    throw new KeyError({code: 'KEYSTORE_UNWRITABLE', path}, `cannot write keystore ${path}: ${(err as Error).message}`, {cause: err})
  }
  try {
    // 'wx' fails if the file exists, atomically: no check-then-write race.
    await writeFile(path, json, {flag: 'wx', mode: 0o600})
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeyError({code: 'KEYSTORE_EXISTS', path}, `keystore ${path} already exists; refusing to overwrite it`)
    }
    throw new KeyError({code: 'KEYSTORE_UNWRITABLE', path}, `cannot write keystore ${path}: ${(err as Error).message}`, {cause: err})
  }
  return nodeKeyInfo(key)
}

/** Reads and decrypts the keystore at `path`. */
export async function loadKeystore (path: string, password: string): Promise<NodeKey> {
  let json: string
  try {
    json = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new KeyError({code: 'KEYSTORE_NOT_FOUND', path}, `keystore ${path} not found`, {cause: err})
    }
    throw new KeyError({code: 'KEYSTORE_UNREADABLE', path}, `cannot read keystore ${path}: ${(err as Error).message}`, {cause: err})
  }
  if (!isKeystoreJson(json)) {
    throw new KeyError({code: 'KEYSTORE_INVALID', path}, `${path} is not an Ethereum JSON keystore`)
  }
  let privateKey: string
  try {
    privateKey = (await decryptKeystoreJson(json, password)).privateKey
  } catch (err) {
    if (err instanceof Error && (err as {argument?: string}).argument === 'password') {
      throw new KeyError({code: 'KEYSTORE_WRONG_PASSWORD', path}, `wrong password for keystore ${path}`)
    }
    throw new KeyError({code: 'KEYSTORE_INVALID', path}, `keystore ${path} cannot be decrypted: ${(err as Error).message}`)
  }
  return nodeKeyFromPrivateKey(privateKey)
}
