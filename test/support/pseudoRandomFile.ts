import {createWriteStream} from 'node:fs'

const MIB = 1024 * 1024

/**
 * Writes `bytes` of xorshift32 output, a MiB at a time: incompressible, reproducible from the
 * seed, and cheap enough for the 256 MiB transfers the IPFS bench and tests make.
 */
export async function writePseudoRandomFile (path: string, bytes: number, seed = 0x2545f491): Promise<void> {
  const out = createWriteStream(path)
  let state = seed
  for (let offset = 0; offset < bytes; offset += MIB) {
    const words = new Uint32Array(Math.min(MIB, bytes - offset) / 4)
    for (let i = 0; i < words.length; i++) {
      state ^= state << 13; state >>>= 0
      state ^= state >>> 17
      state ^= state << 5; state >>>= 0
      words[i] = state
    }
    if (!out.write(new Uint8Array(words.buffer))) await new Promise<void>(resolve => out.once('drain', () => resolve()))
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => err == null ? resolve() : reject(err)))
}
