import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {normalizeSha256} from './modelDescriptor.js'
import {ModelError} from './modelError.js'
import {ProgressThrottle, type OnModelProgress} from './modelProgress.js'

export interface HashOptions {
  signal?: AbortSignal
  onProgress?: OnModelProgress
}

/** Reads in large slices: hashing is then bound by sha256, not by syscalls. */
const READ_SLICE_BYTES = 4 * 1024 * 1024

/** sha256 (hex) and size of a file, streamed: a multi-GB model never sits in memory. */
export async function sha256File (path: string, options: HashOptions = {}): Promise<{sha256: string, sizeBytes: number}> {
  const total = await fileSize(path)
  const hash = createHash('sha256')
  const progress = new ProgressThrottle('verify', total, options.onProgress)
  const stream = createReadStream(path, {highWaterMark: READ_SLICE_BYTES, signal: options.signal})
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk)
    progress.add(chunk.byteLength)
  }
  progress.finish()
  return {sha256: hash.digest('hex'), sizeBytes: progress.bytesDone}
}

/**
 * Throws `SIZE_MISMATCH` (checked first: free) or `HASH_MISMATCH` unless the file at `path`
 * is exactly `sizeBytes` long and hashes to `sha256`; `FILE_NOT_FOUND` when there is none.
 */
export async function verifyFile (path: string, sha256: string, sizeBytes: number, options: HashOptions = {}): Promise<void> {
  const expected = normalizeSha256(sha256)
  const size = await fileSize(path)
  if (size !== sizeBytes) {
    throw new ModelError({code: 'SIZE_MISMATCH', path, expected: sizeBytes, actual: size},
      `${path} is ${size} bytes, expected ${sizeBytes}`)
  }
  const actual = await sha256File(path, options)
  if (actual.sha256 !== expected) {
    throw new ModelError({code: 'HASH_MISMATCH', path, expected, actual: actual.sha256},
      `${path} has sha256 ${actual.sha256}, expected ${expected}`)
  }
}

async function fileSize (path: string): Promise<number> {
  try {
    return (await stat(path)).size
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ModelError({code: 'FILE_NOT_FOUND', path}, `no file at ${path}`, {cause: err})
    }
    throw err
  }
}
