import type {AddOptions} from '@helia/unixfs'

export type Chunker = NonNullable<AddOptions['chunker']>

/**
 * Cuts a byte stream into `chunkSize` pieces (the last may be shorter): the same file gives
 * the same CID on every node. Written here rather than imported from ipfs-unixfs-importer,
 * which is only a transitive dependency.
 */
export function fixedSizeChunker (chunkSize: number): Chunker {
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) throw new RangeError(`chunk size must be a positive integer: ${chunkSize}`)
  return async function * (source) {
    let pending: Uint8Array[] = []
    let pendingBytes = 0
    for await (const input of source) {
      let bytes = input
      while (pendingBytes + bytes.byteLength >= chunkSize) {
        const take = chunkSize - pendingBytes
        pending.push(bytes.subarray(0, take))
        yield concat(pending, chunkSize)
        bytes = bytes.subarray(take)
        pending = []
        pendingBytes = 0
      }
      if (bytes.byteLength > 0) {
        // The reader may reuse its buffer; keep a copy of what waits for the next chunk.
        pending.push(bytes.slice())
        pendingBytes += bytes.byteLength
      }
    }
    if (pendingBytes > 0) yield concat(pending, pendingBytes)
  }
}

function concat (parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1 && parts[0]!.byteLength === length) return parts[0]!
  const out = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}
