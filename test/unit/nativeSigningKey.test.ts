import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {keccak256, randomBytes, SigningKey, toUtf8Bytes, Transaction, Wallet} from 'ethers'
import {NativeSigningKey} from '../../src/chain/nativeSigningKey.js'

describe('native signing key', () => {
  it('signs exactly as ethers does (RFC 6979, low s), so a wallet on it sends transactions the chain attributes to the key', async () => {
    for (let i = 0; i < 20; i++) {
      const key = randomBytes(32)
      const digest = keccak256(toUtf8Bytes(`message ${i}`))
      assert.deepEqual(new NativeSigningKey(key).sign(digest).serialized, new SigningKey(key).sign(digest).serialized)
    }
    const key = randomBytes(32)
    const wallet = new Wallet(new NativeSigningKey(key))
    const raw = await wallet.signTransaction({to: Wallet.createRandom().address, value: 1n, nonce: 3, gasLimit: 21_000n, maxFeePerGas: 10n, maxPriorityFeePerGas: 1n, chainId: 31337n})
    assert.equal(Transaction.from(raw).from, new Wallet(new SigningKey(key)).address)
  })
})
