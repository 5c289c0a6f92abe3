import type {ActorRef, ActorSystem} from '../actors/actorSystem.js'
import {ChainClient} from '../actors/chain/chainClient.js'
import type {ChainMessage} from '../actors/chain/messages.js'
import type {AccessCache} from '../chain/accessCache.js'
import {registrationArgs} from '../chain/admission.js'
import type {Address} from '../protocols/address.js'
import type {Role} from '../protocols/messages.js'
import type {Logger} from '../util/logger.js'
import {sleep} from '../util/sleep.js'

/** How often a node the ACL does not (yet) admit retries its IAM registration. */
const ADMISSION_RETRY_MS = 5_000

export interface RegistrationInit {
  system: ActorSystem
  chain: ActorRef<ChainMessage>
  access: AccessCache
  address: Address
  peerIdBytes: Uint8Array
  role: Role
  log: Logger
  signal: AbortSignal
}

/**
 * Registers this node in IAM unless the chain already has it. A node the ACL does not admit
 * keeps running and retries, so an operator can admit it without restarting it; until then the
 * other nodes reject its gossip and the oracle never gives it a task.
 */
export async function ensureRegistered (init: RegistrationInit): Promise<void> {
  const {log} = init
  const chain = new ChainClient(init.system, init.chain)
  while (!init.signal.aborted) {
    const record = init.access.nodeOf(init.address)
    if (record?.active === true) return
    const reply = await chain.send({
      label: 'iam.register',
      call: {contract: 'iam', functionName: 'register', args: registrationArgs(init.peerIdBytes, init.role, JSON.stringify({client: 'cortensord', role: init.role}))},
      // The node is useless until admitted: nothing of its own should wait in front of this.
      lane: 'user'
    })
    if (reply.type === 'Mined') {
      log.info({tx: reply.tx.hash, block: reply.tx.blockNumber}, 'registered in IAM')
      return
    }
    if (reply.type === 'Reverted' && reply.errorName === 'AlreadyRegistered') return
    log.error({reply}, `not admitted as ${init.role} yet; retrying in ${ADMISSION_RETRY_MS / 1000} s`)
    await sleep(ADMISSION_RETRY_MS, init.signal).catch(() => {})
  }
}
