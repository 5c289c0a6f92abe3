import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {abiFunction, toAbiResult, type ChainRead, type ChainWrite, type ReadResult} from '../../src/chain/chainCall.js'
import {CONTRACT_ABIS} from '../../src/chain/contracts.js'
import type {Address} from '../../src/protocols/address.js'
import {fakeAddress} from '../support/fakeAddress.js'

/** ethers hands a tuple over as an array that also carries the component names. */
function result (fields: Array<[string, unknown]>): unknown {
  return Object.assign(fields.map(([, v]) => v), Object.fromEntries(fields))
}

const CHECKSUMMED = '0x1a7aEeFE2aE346a2c47DA1dE483407103480156D'

describe('typed chain calls', () => {
  it('shapes a struct result as ReadResult says: named fields, uint8 as number, wider ints as bigint, addresses in their one form', () => {
    const fn = abiFunction(CONTRACT_ABIS.cognitive, 'taskOf')
    const names = fn.outputs[0]!.type === 'tuple' ? (fn.outputs[0] as {components: ReadonlyArray<{name: string, type: string}>}).components : []
    const raw = result(names.map(({name, type}) => [name,
      type === 'address' ? CHECKSUMMED : type === 'bytes32' ? '0x' + '11'.repeat(32) : type.startsWith('uint') ? 7n : undefined]))
    const task = toAbiResult(fn, raw) as ReadResult<'cognitive', 'taskOf'>
    assert.equal(task.oracle, CHECKSUMMED.toLowerCase())
    assert.equal(task.k, 7)
    assert.equal(task.state, 7)
    assert.equal(task.escrow, 7n)
    assert.equal(task.precommitDeadline, 7n)
    assert.equal(task.inputHash, '0x' + '11'.repeat(32))
    assert.equal(Array.isArray(task), false)
  })

  it('unwraps a single output and normalises address arrays; no output reads as undefined', () => {
    assert.deepEqual(toAbiResult(abiFunction(CONTRACT_ABIS.cognitive, 'minersOf'), [CHECKSUMMED]), [CHECKSUMMED.toLowerCase()])
    assert.equal(toAbiResult(abiFunction(CONTRACT_ABIS.cognitive, 'taskCount'), 3n), 3n)
    assert.equal(toAbiResult(abiFunction(CONTRACT_ABIS.cognitive, 'MAX_K'), 32n), 32)
    assert.equal(toAbiResult(abiFunction(CONTRACT_ABIS.iam, 'activeRoleOf'), 2n), 2)
    assert.equal(toAbiResult(abiFunction(CONTRACT_ABIS.acl, 'grantRole'), []), undefined)
    assert.throws(() => abiFunction(CONTRACT_ABIS.acl, 'nope'), RangeError)
  })

  it('types calls from the ABI (checked by the compiler)', () => {
    const miner: Address = fakeAddress(1)
    const ping: ChainWrite = {contract: 'nodeStats', functionName: 'ping', args: [[1n, 2n], true]}
    const grant: ChainWrite = {contract: 'acl', functionName: 'grantRole', args: [3, miner]}
    const stats: ChainRead<'nodeStats', 'statsOf'> = {contract: 'nodeStats', functionName: 'statsOf', args: [miner]}
    const anyRead: ChainRead = stats
    // @ts-expect-error a view function is not a write
    const notWrite: ChainWrite = {contract: 'nodeStats', functionName: 'statsOf', args: [miner]}
    // @ts-expect-error ping takes (uint256[], bool)
    const wrongArgs: ChainWrite = {contract: 'nodeStats', functionName: 'ping', args: [1n, true]}
    // @ts-expect-error a write is not a read
    const notRead: ChainRead = {contract: 'nodeStats', functionName: 'ping', args: [[1n], true]}
    // @ts-expect-error an address argument must be an Address (toAddress), not any string
    const rawAddress: ChainRead = {contract: 'nodeStats', functionName: 'statsOf', args: ['0x00']}
    const model: ReadResult<'modelRegistry', 'modelOf'> = {name: 'm', cid: 'c', sha256Digest: '0x', sizeBytes: 1n, quantization: 'F32', active: true, registeredAt: 0n}
    const miners: ReadResult<'cognitive', 'minersOf'> = [miner]
    assert.ok([ping, grant, anyRead, notWrite, wrongArgs, notRead, rawAddress, model, miners].length > 0)
  })
})
