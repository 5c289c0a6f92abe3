import type {NodeRole} from './messages.js'

/**
 * What gossip validation needs to know about the chain's ACL + IAM, answered synchronously
 * from memory: a validator never waits on an RPC call. `src/chain/accessCache.ts` keeps one
 * fresh from contract events.
 */
export interface AccessView {
  /** True when `address` is registered and active in IAM and holds `role` in ACL. Any letter case. */
  roleAllowed: (address: string, role: NodeRole) => boolean
}

/** A fixed or hand-edited view: unit tests, benches, and nodes run without a chain. */
export class StaticAccessView implements AccessView {
  private readonly roles = new Map<string, Set<NodeRole>>()

  constructor (entries: Iterable<[address: string, role: NodeRole]> = []) {
    for (const [address, role] of entries) this.grant(address, role)
  }

  grant (address: string, role: NodeRole): void {
    const key = address.toLowerCase()
    const roles = this.roles.get(key) ?? new Set()
    roles.add(role)
    this.roles.set(key, roles)
  }

  revoke (address: string, role: NodeRole): void {
    this.roles.get(address.toLowerCase())?.delete(role)
  }

  roleAllowed (address: string, role: NodeRole): boolean {
    return this.roles.get(address.toLowerCase())?.has(role) ?? false
  }
}
