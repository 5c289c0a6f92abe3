import {AbiCoder, keccak256, toUtf8Bytes, type BytesLike} from 'ethers'

/** keccak256 of the output's UTF-8 bytes: what Cognitive stores and compares. */
export function outputHash (output: string): string {
  return keccak256(toUtf8Bytes(output))
}

/**
 * A miner's precommitment, equal to Cognitive's `commitmentOf`:
 * keccak256(abi.encode(taskId, miner, keccak256(bytes(output)), salt)).
 */
export function taskCommitment (taskId: bigint, miner: string, output: string, salt: BytesLike): string {
  return keccak256(AbiCoder.defaultAbiCoder().encode(['uint256', 'address', 'bytes32', 'bytes32'], [taskId, miner, outputHash(output), salt]))
}
