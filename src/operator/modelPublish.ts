import {FsBlockstore} from 'blockstore-fs'
import {hexlify} from 'ethers'
import {createHeliaLight} from 'helia'
import {mkdir, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import {registerModel} from '../chain/admission.js'
import {HeliaModelStore} from '../model/heliaModelStore.js'
import type {AddedFile} from '../model/modelStore.js'
import {createSilentLogger} from '../util/logger.js'
import {progressReporter} from '../util/progressBar.js'
import {openNetwork, operatorQueue, requireAdmin, requireFunds, type NetworkTarget, type OperatorIo, type OperatorNetwork, type OperatorSigner} from './operatorContext.js'

export interface ModelPublishOptions extends NetworkTarget {
  file: string
  name: string
  quantization: string
  signer: OperatorSigner
  io: OperatorIo
}

/**
 * `cortensord model publish`: computes the file's sha256 and IPFS CID exactly as a node's model
 * store does (so miners fetching by that CID verify the same bytes), then registers it in the
 * ModelRegistry. The registry takes duplicates, so a model with the same name and sha256 already
 * there is reported with its id instead of registered again.
 */
export async function modelPublish (opts: ModelPublishOptions): Promise<number> {
  const {io} = opts
  // The chain and the key are checked before the file, which may take minutes to hash.
  const network = await openNetwork({rpcUrl: opts.rpcUrl, deploymentFile: opts.deploymentFile, signal: io.signal})
  try {
    const queue = await operatorQueue(network, opts.signer, io)
    await requireAdmin(network, queue.address)
    const added = await fileIdentity(opts.file, io)
    const show = (id: string): void => {
      io.out.write(`model id     ${id}\nname         ${opts.name}\nquantization ${opts.quantization}\ncid          ${added.cid}\nsha256       ${added.sha256}\nsize         ${added.sizeBytes} bytes\n`)
    }
    const existing = await findModel(network, opts.name, added.sha256)
    if (existing !== undefined) {
      io.out.write(`${opts.name} with this sha256 is already registered as model id ${existing}\n`)
      show(existing)
      return 0
    }
    await requireFunds(network, queue.address)
    const id = await registerModel(queue, network.contracts, {
      name: opts.name, cid: added.cid, sha256: `0x${added.sha256}`, sizeBytes: added.sizeBytes, quantization: opts.quantization
    }, {signal: io.signal})
    show(String(id))
    return 0
  } finally {
    network.provider.destroy()
  }
}

/**
 * The file's CID, sha256 and size from `HeliaModelStore.addFile`, the code nodes seed with. Its
 * blocks go to a scratch blockstore on disk, deleted after: a model of several GiB would not fit
 * in memory. Minutes for a large file: a bar on a terminal, progress lines otherwise.
 */
async function fileIdentity (file: string, io: OperatorIo): Promise<AddedFile> {
  const scratch = await mkdtemp(join(tmpdir(), 'cortensord-publish-'))
  try {
    const blocks = join(scratch, 'blocks')
    await mkdir(blocks)
    const helia = createHeliaLight({blockstore: new FsBlockstore(blocks)})
    try {
      const store = new HeliaModelStore({host: helia, modelDir: join(scratch, 'models'), logger: createSilentLogger()})
      const progress = progressReporter(io.err, `hashing ${basename(file)}`)
      try {
        return await store.addFile(file, {
          signal: io.signal,
          onProgress: ({detail}) => { progress.update(detail.bytes, detail.total, detail.rate) }
        })
      } finally {
        progress.stop()
      }
    } finally {
      await helia.stop()
    }
  } finally {
    await rm(scratch, {recursive: true, force: true})
  }
}

/** The id of a registered model with this name and sha256 (hex, no 0x), if any. */
async function findModel (network: OperatorNetwork, name: string, sha256: string): Promise<string | undefined> {
  const registry = network.contracts.modelRegistry
  const count = Number(await registry.modelCount())
  for (let id = 1; id <= count; id++) {
    const model = await registry.modelOf(id)
    if (model.name === name && hexlify(model.sha256Digest) === `0x${sha256}`) return String(id)
  }
  return undefined
}
