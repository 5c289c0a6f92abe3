import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {describe, it} from 'node:test'
import {keccak256, toUtf8Bytes, Wallet} from 'ethers'
import {DeploymentError, readDeployment, validateDeployment, validateNetworkDescription, writeDeployment, type Deployment} from '../../src/chain/deployment.js'
import {devnetPrivateKey} from '../../src/devnet/devnetKeys.js'
import {AclRole, ROLE_CODE, roleOfCode, taskStateName} from '../../src/chain/enums.js'
import {taskCommitment} from '../../src/chain/commitment.js'
import {decodeRevert, cortensorErrorInterface} from '../../src/chain/contracts.js'
import {toAddress, type Address} from '../../src/protocols/address.js'
import {PROJECT_ROOT} from '../../src/util/paths.js'

const address = (i: number): Address => toAddress(new Wallet(keccak256(toUtf8Bytes(`a${i}`))).address)
const sample: Deployment = {
  chainId: 31337,
  contracts: {acl: address(1), iam: address(2), modelRegistry: address(3), nodeStats: address(4), cognitive: address(5)},
  deployBlock: 1,
  deployer: address(6)
}

describe('chain deployment file', () => {
  it('round-trips through writeDeployment and readDeployment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cortensor-deployment-'))
    try {
      await writeDeployment(join(dir, 'sub', 'deployment.json'), sample)
      assert.deepEqual(await readDeployment(join(dir, 'sub', 'deployment.json')), sample)
      const described = {...sample, network: {name: 'lan', rpcUrls: ['http://10.0.0.5:8545']}}
      await writeDeployment(join(dir, 'described.json'), described)
      assert.deepEqual(await readDeployment(join(dir, 'described.json')), described)
      await writeFile(join(dir, 'broken.json'), '{')
      await assert.rejects(readDeployment(join(dir, 'broken.json')), (e: unknown) => e instanceof DeploymentError && e.code === 'DEPLOYMENT_UNREADABLE' && e.message.includes('broken.json'))
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })

  it('ships an Arbitrum Sepolia preset in the one format, whose unset addresses are refused by name', () => {
    const file = resolve(PROJECT_ROOT, 'config', 'arbitrum-sepolia.json')
    const preset = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    assert.equal(preset.chainId, 421614)
    assert.deepEqual(validateNetworkDescription(preset.network, file), {
      name: 'arbitrum-sepolia', rpcUrls: ['https://sepolia-rollup.arbitrum.io/rpc'], explorerUrl: 'https://sepolia.arbiscan.io', nativeCurrency: 'ETH'
    })
    assert.throws(() => validateDeployment(preset, 'arbitrum-sepolia.json'), (e: unknown) => e instanceof DeploymentError && e.type.field === 'contracts.acl' &&
      e.message.startsWith('arbitrum-sepolia.json: contracts.acl is not set') && e.message.includes('cortensord network deploy') && !e.message.includes('\n'))
    // Once the admin fills in what `network deploy` printed, it is a deployment like any other.
    const filled = {...preset, contracts: sample.contracts, deployBlock: 123, deployer: sample.deployer}
    assert.deepEqual(validateDeployment(filled, 'arbitrum-sepolia.json'), {...sample, chainId: 421614, deployBlock: 123, network: validateNetworkDescription(preset.network)})
  })

  it('checks the optional network description field by field', () => {
    const network = {name: 'lan', rpcUrls: ['http://10.0.0.5:8545']}
    assert.deepEqual(validateDeployment({...sample, network}).network, network)
    assert.throws(() => validateDeployment({...sample, network: {...network, rpcUrls: ['ftp://x']}}), (e: unknown) => e instanceof DeploymentError && e.type.field === 'network.rpcUrls[0]')
    assert.throws(() => validateDeployment({...sample, network: {rpcUrls: []}}), (e: unknown) => e instanceof DeploymentError && e.type.field === 'network.name')
    assert.throws(() => validateDeployment({...sample, network: {...network, explorerUrl: 'nope'}}), (e: unknown) => e instanceof DeploymentError && e.type.field === 'network.explorerUrl')
    assert.throws(() => validateDeployment({...sample, deployBlock: null}), (e: unknown) => e instanceof DeploymentError && e.type.field === 'deployBlock' && /is not set/.test(e.message))
  })

  it('names the bad field', () => {
    const bad = {...sample, contracts: {...sample.contracts, cognitive: '0x1234'}}
    assert.throws(() => validateDeployment(bad, 'dep.json'), (e: unknown) => e instanceof DeploymentError && e.type.field === 'contracts.cognitive' && e.message.startsWith('dep.json: contracts.cognitive'))
    assert.throws(() => validateDeployment({...sample, chainId: '1'}), (e: unknown) => e instanceof DeploymentError && e.type.field === 'chainId')
  })
})

describe('chain helpers', () => {
  it('derive devnet keys from a fixed label', () => {
    assert.equal(devnetPrivateKey('miner', 3), keccak256(toUtf8Bytes('cortensor-devnet/miner/3')))
    assert.notEqual(devnetPrivateKey('miner', 3), devnetPrivateKey('oracle', 3))
  })

  it('mirror the Role enum by name and value', () => {
    assert.deepEqual(AclRole, {None: 0, Admin: 1, Oracle: 2, Miner: 3, Validator: 4})
    assert.deepEqual(ROLE_CODE, {oracle: AclRole.Oracle, miner: AclRole.Miner, validator: AclRole.Validator})
    assert.equal(roleOfCode(3n), 'miner')
    assert.equal(roleOfCode(AclRole.Admin), undefined, 'the admin runs no node')
    assert.equal(taskStateName(6), 'Expired')
    assert.throws(() => taskStateName(9), /unknown task state 9/)
  })

  it('decode custom errors of any contract and compute commitments deterministically', () => {
    const data = cortensorErrorInterface.encodeErrorResult('SlotsFull', [7n])
    assert.deepEqual(decodeRevert(data), {name: 'SlotsFull', args: [7n], signature: 'SlotsFull(7)'})
    assert.equal(decodeRevert('0xdeadbeef'), undefined)
    const salt = '0x' + '11'.repeat(32)
    assert.equal(taskCommitment(1n, address(1), 'out', salt), taskCommitment(1n, address(1), 'out', salt))
    assert.notEqual(taskCommitment(1n, address(1), 'out', salt), taskCommitment(1n, address(1), 'out2', salt))
  })
})
