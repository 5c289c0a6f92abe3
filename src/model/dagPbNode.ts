import {CID} from 'multiformats/cid'

/** Multicodec of a UnixFS node (file root or inner node of a large file's DAG). */
export const DAG_PB_CODE = 0x70

/** What a fetch needs of a UnixFS dag-pb node. */
export interface DagPbNode {
  /** Children in file order. */
  links: CID[]
  /** File bytes under each child, in link order (UnixFS `blocksizes`). */
  blocksizes: number[]
  /** Bytes the node carries itself (a dag-pb leaf); empty when its data is in its children. */
  data: Uint8Array
}

/**
 * Decodes the parts of a dag-pb UnixFS node a fetch uses: `PBNode.Links[].Hash` and, inside
 * `PBNode.Data`, the UnixFS `Data` and `blocksizes`. A minimal protobuf reader, because
 * @ipld/dag-pb and ipfs-unixfs are only transitive dependencies here. The bytes were checked
 * against their CID first, so a parse error means the CID names something that is not a
 * UnixFS file.
 */
export function decodeDagPbNode (bytes: Uint8Array): DagPbNode {
  const links: CID[] = []
  let unixfs: Uint8Array = new Uint8Array(0)
  const node = new Reader(bytes)
  while (!node.done()) {
    const {field, wireType} = node.tag()
    if (field === 2 && wireType === 2) {
      const link = new Reader(node.bytes())
      while (!link.done()) {
        const inner = link.tag()
        if (inner.field === 1 && inner.wireType === 2) links.push(CID.decode(link.bytes()))
        else link.skip(inner.wireType)
      }
    } else if (field === 1 && wireType === 2) {
      unixfs = node.bytes()
    } else {
      node.skip(wireType)
    }
  }
  const blocksizes: number[] = []
  let data: Uint8Array = new Uint8Array(0)
  const fields = new Reader(unixfs)
  while (!fields.done()) {
    const {field, wireType} = fields.tag()
    if (field === 2 && wireType === 2) data = fields.bytes()
    else if (field === 4 && wireType === 0) blocksizes.push(fields.varint())
    else if (field === 4 && wireType === 2) {
      // Packed form of the same repeated field.
      const packed = new Reader(fields.bytes())
      while (!packed.done()) blocksizes.push(packed.varint())
    } else fields.skip(wireType)
  }
  return {links, blocksizes, data}
}

class Reader {
  private offset = 0
  constructor (private readonly buf: Uint8Array) {}

  done (): boolean {
    return this.offset >= this.buf.byteLength
  }

  tag (): {field: number, wireType: number} {
    const value = this.varint()
    return {field: Math.floor(value / 8), wireType: value % 8}
  }

  varint (): number {
    let value = 0
    for (let shift = 0; shift < 56; shift += 7) {
      if (this.done()) throw new RangeError('dag-pb: truncated varint')
      const byte = this.buf[this.offset++]!
      value += (byte & 0x7f) * 2 ** shift
      if (byte < 0x80) return value
    }
    throw new RangeError('dag-pb: varint too long')
  }

  bytes (): Uint8Array {
    const length = this.varint()
    if (this.offset + length > this.buf.byteLength) throw new RangeError('dag-pb: truncated field')
    const out = this.buf.subarray(this.offset, this.offset + length)
    this.offset += length
    return out
  }

  skip (wireType: number): void {
    if (wireType === 0) this.varint()
    else if (wireType === 2) this.bytes()
    else if (wireType === 1) this.offset += 8
    else if (wireType === 5) this.offset += 4
    else throw new RangeError(`dag-pb: unknown wire type ${wireType}`)
  }
}
