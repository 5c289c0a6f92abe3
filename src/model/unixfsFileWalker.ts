import type {GraphNode, GraphWalkerFactory} from 'helia'
import type {CID} from 'multiformats/cid'
import {DAG_PB_CODE, decodeDagPbNode} from './dagPbNode.js'
import {readBlock} from './readBlock.js'

const NO_BYTES: Uint8Array = new Uint8Array(0)

/**
 * A pin walker for UnixFS files that visits every block of the DAG but reads only the
 * dag-pb nodes: raw leaves have no links, and pinning needs only their CIDs. helia's own
 * walkers read and concatenate every leaf, which for a 4 GB model is a second full read of
 * the file after each import and fetch (measured in test/bench/ipfs.ts).
 */
export function unixfsFileWalker (): GraphWalkerFactory {
  return ({blockstore}) => ({
    async * walk<T> (root: CID, options: {signal?: AbortSignal, depth?: number} = {}): AsyncGenerator<GraphNode<T>> {
      const maxDepth = options.depth ?? Infinity
      const queue: Array<{cid: CID, depth: number, path: CID[]}> = [{cid: root, depth: 0, path: []}]
      for (let next = queue.shift(); next != null; next = queue.shift()) {
        const {cid, depth, path} = next
        let bytes = NO_BYTES
        if (cid.code === DAG_PB_CODE) {
          bytes = await readBlock(blockstore, cid, options)
          if (depth < maxDepth) for (const link of decodeDagPbNode(bytes).links) queue.push({cid: link, depth: depth + 1, path: [...path, cid]})
        }
        // pins.add reads only `block.cid`; a leaf's bytes are not needed to record its pin.
        yield {block: {cid, bytes} as unknown as GraphNode<T>['block'], depth, path}
      }
    }
  })
}
