import type {Address} from './address.js'
import type {Role} from './messages.js'

/**
 * What gossip validation needs to know about the chain's ACL + IAM, answered synchronously
 * from memory: a validator never waits on an RPC call. `src/chain/accessCache.ts` keeps one
 * fresh from contract events.
 */
export interface AccessView {
  /** True when `address` is registered and active in IAM and holds `role` in ACL. */
  roleAllowed: (address: Address, role: Role) => boolean
}

/** A fixed or hand-edited view: unit tests, benches, and nodes run without a chain. */
export class StaticAccessView implements AccessView {
  private readonly roles = new Map<Address, Set<Role>>()

  constructor (entries: Iterable<[address: Address, role: Role]> = []) {
    for (const [address, role] of entries) this.grant(address, role)
  }

  grant (address: Address, role: Role): void {
    const roles = this.roles.get(address) ?? new Set()
    roles.add(role)
    this.roles.set(address, roles)
  }

  revoke (address: Address, role: Role): void {
    this.roles.get(address)?.delete(role)
  }

  roleAllowed (address: Address, role: Role): boolean {
    return this.roles.get(address)?.has(role) ?? false
  }
}
