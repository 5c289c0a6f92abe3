import {totalmem} from 'node:os'

const MIB = 1024 * 1024

/** `inference.memoryBudgetMiB` in bytes; 0 means half of this host's memory (the rest is the OS's, libp2p's and the KV caches'). */
export function memoryBudgetBytes (memoryBudgetMiB: number): number {
  return memoryBudgetMiB > 0 ? Math.floor(memoryBudgetMiB * MIB) : Math.floor(totalmem() / 2)
}
