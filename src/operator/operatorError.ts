import {CortensorError} from '../util/cortensorError.js'

export type OperatorErrorCode =
  /** The chain's RPC endpoint did not answer `eth_chainId`. */
  | 'RPC_UNREACHABLE'
  /** The RPC serves another chain than the deployment file names. */
  | 'CHAIN_MISMATCH'
  /** No contract code at the deployment's addresses on this chain (wrong RPC, or a chain reset). */
  | 'CONTRACTS_MISSING'
  | 'NOT_ADMIN'
  | 'NO_FUNDS'
  /** `network deploy` would overwrite the addresses of a network already deployed. */
  | 'DEPLOYMENT_EXISTS'
  | 'CHAIN_STOPPED'
  | 'NODE_UNREACHABLE'
  | 'NODE_API_ERROR'

/** A known failure of an operator command; the CLI prints its message as one line and exits 2. */
export class OperatorError extends CortensorError<{code: OperatorErrorCode, detail?: string}> {}
