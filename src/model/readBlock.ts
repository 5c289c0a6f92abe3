import type {Helia} from 'helia'
import type {CID} from 'multiformats/cid'

/** What reading a block needs of a blockstore (helia's, or the one a pin walker is handed). */
export type BlockSource = Pick<Helia['blockstore'], 'get'>

/**
 * One block's bytes, gathered from the blockstore's chunk stream (a block comes in one chunk
 * when it can, and is then handed out without a copy). `offline` reads only what is stored
 * here; without it helia asks bitswap for a block it lacks.
 */
export async function readBlock (blocks: BlockSource, cid: CID, options: {offline?: boolean, signal?: AbortSignal} = {}): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of blocks.get(cid, options)) chunks.push(chunk)
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
}
