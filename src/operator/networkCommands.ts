import {access, readFile} from 'node:fs/promises'
import {grantRole, revokeRole} from '../chain/admission.js'
import {readDeploymentJson, validateDeployment, validateNetworkDescription, writeDeployment, type NetworkDescription} from '../chain/deployment.js'
import {deployNetwork} from '../chain/deployNetwork.js'
import {AclRole, ROLE_CODE} from '../chain/enums.js'
import type {Address} from '../protocols/address.js'
import type {Role} from '../protocols/messages.js'
import {formatNetworkInfo, readNetworkInfo} from './networkInfo.js'
import {connectChain, openNetwork, operatorQueue, requireAdmin, requireFunds, type NetworkTarget, type OperatorIo, type OperatorSigner} from './operatorContext.js'
import {OperatorError} from './operatorError.js'

/**
 * `cortensord network deploy`: deploys and wires the five contracts with the keystore's account
 * as the ACL's first admin, and writes the deployment file. `out` may be a preset whose
 * addresses are still null (config/arbitrum-sepolia.json): it is filled in, its `network`
 * description kept. A file that already names a deployment is never overwritten.
 */
export async function networkDeploy (opts: {rpcUrl: string, signer: OperatorSigner, out: string, readyWindowSeconds?: number, io: OperatorIo}): Promise<number> {
  const {io} = opts
  const before = await presetSnapshot(opts.out)
  const preset = await presetToFill(opts.out)
  const chain = await connectChain(opts.rpcUrl, io.signal)
  try {
    if (preset !== undefined && preset.chainId !== chain.chainId) {
      throw new OperatorError({code: 'CHAIN_MISMATCH'}, `wrong chain: ${chain.endpoint} serves chain id ${chain.chainId}, but ${opts.out} is for chain id ${preset.chainId}`)
    }
    const queue = await operatorQueue(chain, opts.signer, io)
    await requireFunds(chain, queue.address)
    io.err.write(`deploying the network's five contracts to chain ${chain.chainId} at ${chain.endpoint} as ${queue.address} (6 transactions)\n`)
    const deployed = await deployNetwork({queue, readyWindowSeconds: opts.readyWindowSeconds, signal: io.signal})
    const deployment = preset?.network === undefined ? deployed : {network: preset.network, ...deployed}
    // Printed before the file is written: a write that fails leaves the addresses on screen, not only tx hashes.
    io.out.write(`chain id      ${deployment.chainId}\ndeployer      ${deployment.deployer} (ACL admin)\ndeploy block  ${deployment.deployBlock}\n`)
    for (const [name, address] of Object.entries(deployment.contracts)) io.out.write(`${name.padEnd(13)} ${address}\n`)
    // Checked again: another deploy may have written the file while this one ran.
    if (await presetSnapshot(opts.out) !== before) {
      throw new OperatorError({code: 'DEPLOYMENT_EXISTS'}, `${opts.out} changed while deploying; refusing to overwrite it. The deployment above is live: write it to another file`)
    }
    await writeDeployment(opts.out, deployment)
    io.out.write(`wrote ${opts.out}\n`)
    return 0
  } finally {
    chain.provider.destroy()
  }
}

/** The bytes at `out` now (null: no file), to tell whether it changed during a deploy. */
async function presetSnapshot (out: string): Promise<string | null> {
  return await readFile(out, 'utf8').catch(() => null)
}

/**
 * What `out` holds now: nothing (undefined), or a preset to fill in (its chain id and network
 * description). A complete deployment, or a file that is neither, is refused.
 */
async function presetToFill (out: string): Promise<{chainId: unknown, network?: NetworkDescription} | undefined> {
  if (!await access(out).then(() => true, () => false)) return undefined
  const json = await readDeploymentJson(out)
  const d = json as {chainId?: unknown, contracts?: Record<string, unknown>, network?: unknown}
  const unset = typeof d === 'object' && d !== null && typeof d.contracts === 'object' && d.contracts !== null && Object.values(d.contracts).every(v => v === null)
  if (!unset) {
    // Either a deployment (refused below) or a broken file (its validation error names the field).
    const existing = validateDeployment(json, out)
    throw new OperatorError({code: 'DEPLOYMENT_EXISTS'},
      `${out} already holds the network deployed on chain ${existing.chainId} (acl ${existing.contracts.acl}); refusing to overwrite it: choose another --out`)
  }
  return d.network === undefined ? {chainId: d.chainId} : {chainId: d.chainId, network: validateNetworkDescription(d.network, out)}
}

/**
 * `cortensord network admit`: grants `role` to each address. An address that already holds it
 * is reported and skipped, so the command can be rerun after a partial failure.
 */
export async function networkAdmit (opts: NetworkTarget & {signer: OperatorSigner, role: Role, addresses: Address[], io: OperatorIo}): Promise<number> {
  const {io} = opts
  const network = await openNetwork({rpcUrl: opts.rpcUrl, deploymentFile: opts.deploymentFile, signal: io.signal})
  try {
    const queue = await operatorQueue(network, opts.signer, io)
    await requireAdmin(network, queue.address)
    await requireFunds(network, queue.address)
    for (const address of opts.addresses) {
      if (await network.contracts.acl.hasRole(ROLE_CODE[opts.role], address) === true) {
        io.out.write(`${address} is already admitted as ${opts.role}\n`)
        continue
      }
      await grantRole(queue, network.contracts, ROLE_CODE[opts.role], address, {signal: io.signal})
      io.out.write(`${address} admitted as ${opts.role}\n`)
    }
    return 0
  } finally {
    network.provider.destroy()
  }
}

/** Node roles first, the admin role last: an admin revoking itself keeps the right to finish. */
const REVOCABLE: Array<[name: string, code: AclRole]> = [['oracle', AclRole.Oracle], ['miner', AclRole.Miner], ['validator', AclRole.Validator], ['admin', AclRole.Admin]]

/**
 * `cortensord network revoke`: revokes every role each address holds. The network's last admin
 * keeps its admin role (the ACL refuses to lose it); the node roles still go.
 */
export async function networkRevoke (opts: NetworkTarget & {signer: OperatorSigner, addresses: Address[], io: OperatorIo}): Promise<number> {
  const {io} = opts
  const network = await openNetwork({rpcUrl: opts.rpcUrl, deploymentFile: opts.deploymentFile, signal: io.signal})
  const {acl} = network.contracts
  try {
    const queue = await operatorQueue(network, opts.signer, io)
    await requireAdmin(network, queue.address)
    await requireFunds(network, queue.address)
    for (const address of opts.addresses) {
      const held = []
      for (const [name, code] of REVOCABLE) if (await acl.hasRole(code, address) === true) held.push({name, code})
      if (held.length === 0) {
        io.out.write(`${address} holds no role\n`)
        continue
      }
      for (const {name, code} of held) {
        if (code === AclRole.Admin && await acl.adminCount() === 1n) {
          io.out.write(`${address} stays admin: it is the network's last admin\n`)
          continue
        }
        await revokeRole(queue, network.contracts, code, address, {signal: io.signal})
        io.out.write(`${address} no longer ${name}\n`)
      }
    }
    return 0
  } finally {
    network.provider.destroy()
  }
}

/** `cortensord network info`: the network as the chain holds it, as a table or JSON. */
export async function networkInfo (opts: NetworkTarget & {json: boolean, io: OperatorIo}): Promise<number> {
  const {io} = opts
  const network = await openNetwork({rpcUrl: opts.rpcUrl, deploymentFile: opts.deploymentFile, signal: io.signal})
  try {
    const info = await readNetworkInfo(network, {onProgress: line => io.err.write(`${line}\n`), signal: io.signal})
    io.out.write(opts.json ? `${JSON.stringify(info, null, 2)}\n` : formatNetworkInfo(info))
    return 0
  } finally {
    network.provider.destroy()
  }
}
