import {generateKeyPair} from '@libp2p/crypto/keys'
import {peerIdFromPrivateKey as libp2pPeerId, peerIdFromString} from '@libp2p/peer-id'
import {Wallet} from 'ethers'
import assert from 'node:assert/strict'
import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {toAddress} from '../../src/protocols/address.js'
import {peerIdFromBytes, peerIdToBytes} from '../../src/protocols/peerAddress.js'
import {addressFromPeerId, createKeystore, KeyError, loadKeystore, nodeKeyFromPrivateKey, peerIdFromPrivateKey} from '../../src/runtime/keys.js'

const HARDHAT_KEY_0 = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'
const HARDHAT_ADDRESS_0 = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'
/** HARDHAT_KEY_0 under password 'pure js', written by ethers 6.17's own JavaScript scrypt (N = 1024; fixed salt, iv and id). */
const ETHERS_SCRYPT_KEYSTORE = '{"address":"f39fd6e51aad88f6f4ce6ab8827279cfffb92266","id":"03030303-0303-4303-8303-030303030303","version":3,"Crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"01010101010101010101010101010101"},"ciphertext":"87aa962316a4ae10891e00c395fbc9ff0eede3ba40f0d02743ccbceb4f11b2d3","kdf":"scrypt","kdfparams":{"salt":"0202020202020202020202020202020202020202020202020202020202020202","n":1024,"dklen":32,"p":1,"r":8},"mac":"bfbd653daf134dba4563bc9f19ca3e02f6290477a710c03584d8784260b41bfc"}}'

async function rejectsWithCode (promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof KeyError, `expected KeyError, got ${String(err)}`)
    assert.equal(err.code, code)
    return true
  })
}

describe('node keys', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'cortensor-keys-')) })
  after(async () => { await rm(dir, {recursive: true, force: true}) })

  it('round-trips a keystore: same address and peer id, file is private', async () => {
    const path = join(dir, 'node.json')
    const created = await createKeystore(path, 'correct horse')
    const loaded = await loadKeystore(path, 'correct horse')
    assert.equal(loaded.address, toAddress(created.address))
    assert.equal(loaded.peerId.toString(), created.peerId)
    assert.equal(loaded.privateKey.length, 32)
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    // A standard Ethereum keystore: ethers (and so geth/MetaMask tooling) read it too.
    const wallet = await Wallet.fromEncryptedJson(await readFile(path, 'utf8'), 'correct horse')
    assert.equal(wallet.address, created.address)
  })

  it('refuses to overwrite an existing keystore', async () => {
    const path = join(dir, 'exists.json')
    const first = await createKeystore(path, 'pw')
    await rejectsWithCode(createKeystore(path, 'pw'), 'KEYSTORE_EXISTS')
    assert.equal((await loadKeystore(path, 'pw')).address, toAddress(first.address))
  })

  it('reads a keystore written with ethers\' JavaScript scrypt: the OpenSSL scrypt registered in its place derives the same key', async () => {
    const path = join(dir, 'ethers-scrypt.json')
    await writeFile(path, ETHERS_SCRYPT_KEYSTORE)
    assert.equal((await loadKeystore(path, 'pure js')).address, toAddress(HARDHAT_ADDRESS_0))
    await rejectsWithCode(loadKeystore(path, 'pure JS'), 'KEYSTORE_WRONG_PASSWORD')
  })

  it('reports a wrong password, a missing file and a file that is not a keystore by code', async () => {
    const path = join(dir, 'pw.json')
    await createKeystore(path, 'right')
    await rejectsWithCode(loadKeystore(path, 'wrong'), 'KEYSTORE_WRONG_PASSWORD')
    await rejectsWithCode(loadKeystore(join(dir, 'absent.json'), 'pw'), 'KEYSTORE_NOT_FOUND')
    const junk = join(dir, 'junk.json')
    await writeFile(junk, '{"not": "a keystore"}')
    await rejectsWithCode(loadKeystore(junk, 'pw'), 'KEYSTORE_INVALID')
  })

  it('derives the same identity as ethers and libp2p from a devnet key', () => {
    const key = nodeKeyFromPrivateKey(HARDHAT_KEY_0)
    assert.equal(key.address, toAddress(HARDHAT_ADDRESS_0))
    assert.equal(key.peerId.type, 'secp256k1')
    assert.ok(key.peerId.equals(peerIdFromPrivateKey(key.privateKey)))
    assert.throws(() => nodeKeyFromPrivateKey('0x1234'), (err: unknown) => err instanceof KeyError && err.code === 'PRIVATE_KEY_INVALID')
    assert.throws(() => nodeKeyFromPrivateKey('0x' + '00'.repeat(32)), (err: unknown) => err instanceof KeyError && err.code === 'PRIVATE_KEY_INVALID')
  })

  it('maps a peer id back to its address, and a non-secp256k1 peer id to null', async () => {
    const key = nodeKeyFromPrivateKey(HARDHAT_KEY_0)
    assert.equal(addressFromPeerId(peerIdFromString(key.peerId.toString())), toAddress(HARDHAT_ADDRESS_0))
    const ed = libp2pPeerId(await generateKeyPair('Ed25519'))
    assert.equal(addressFromPeerId(ed), null)
  })

  it('encodes a peer id as the 39 multihash bytes IAM stores', () => {
    const key = nodeKeyFromPrivateKey(HARDHAT_KEY_0)
    const bytes = peerIdToBytes(key.peerId)
    assert.equal(bytes.length, 39)
    assert.ok(peerIdFromBytes(bytes).equals(key.peerId))
  })
})
