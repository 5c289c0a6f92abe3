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

/** Cognitive's `taskIdFor`: the id a task will get, known before its creation is mined. */
export function taskIdFor (oracle: string, requestId: BytesLike): bigint {
  return BigInt(keccak256(AbiCoder.defaultAbiCoder().encode(['address', 'bytes32'], [oracle, requestId]))) >> 192n
}
