import {AbiCoder, keccak256, type BytesLike} from 'ethers'
import {outputHashOf} from '../protocols/messages.js'

/** keccak256 of the output's UTF-8 bytes: what Cognitive stores and compares. */
export const outputHash = outputHashOf

/**
 * A miner's precommitment, equal to Cognitive's `commitmentOf`:
 * keccak256(abi.encode(taskId, miner, outputHash, salt)).
 */
export function commitmentFor (taskId: bigint, miner: string, outputHash: BytesLike, salt: BytesLike): string {
  return keccak256(AbiCoder.defaultAbiCoder().encode(['uint256', 'address', 'bytes32', 'bytes32'], [taskId, miner, outputHash, salt]))
}

/** `commitmentFor` from the output text itself. */
export function taskCommitment (taskId: bigint, miner: string, output: string, salt: BytesLike): string {
  return commitmentFor(taskId, miner, outputHashOf(output), salt)
}

/** Cognitive's `taskIdFor`: the id a task will get, known before its creation is mined. */
export function taskIdFor (oracle: string, requestId: BytesLike): bigint {
  return BigInt(keccak256(AbiCoder.defaultAbiCoder().encode(['address', 'bytes32'], [oracle, requestId]))) >> 192n
}
