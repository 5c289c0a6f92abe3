import {getLlama, LlamaLogLevel, NoBinaryFoundError, type Llama} from 'node-llama-cpp'
import type {Logger} from '../util/logger.js'
import {InferenceError} from './inferenceError.js'

export interface SharedLlamaOptions {
  /** Use a prebuilt GPU binary when one is installed; false (the default) is CPU only. */
  gpu?: boolean
  /** Receives llama.cpp's own log lines; the first caller's logger serves the whole process. */
  logger: Logger
}

/**
 * One `Llama` per process and GPU choice. node-llama-cpp loads its native addon once per
 * process and `Llama.dispose()` disposes that shared binding, so two engines must share the
 * instance instead of each owning (and tearing down) its own; engines dispose only their
 * models and contexts.
 */
const instances = new Map<boolean, Promise<Llama>>()

/**
 * Obtains the process's `Llama` without ever downloading or compiling anything: only a
 * prebuilt binary (from `@node-llama-cpp/<platform>`) or an existing local build is used;
 * when none fits, this fails with `BINARY_NOT_FOUND` instead of trying a build.
 */
export async function getSharedLlama ({gpu = false, logger}: SharedLlamaOptions): Promise<Llama> {
  let instance = instances.get(gpu)
  if (instance === undefined) {
    instance = openLlama(gpu, logger)
    // A failed attempt is not cached: a later call (say, after installing the binary) retries.
    instance.catch(() => instances.delete(gpu))
    instances.set(gpu, instance)
  }
  return await instance
}

async function openLlama (gpu: boolean, logger: Logger): Promise<Llama> {
  const log = logger.child({component: 'llama.cpp'})
  try {
    return await getLlama({
      gpu: gpu ? 'auto' : false,
      build: 'never',
      skipDownload: true,
      usePrebuiltBinaries: true,
      progressLogs: false,
      // Each context is given an explicit thread count; a process-wide cap would let node-llama-cpp's
      // thread splitter silently shrink a context's threads while another context is busy.
      maxThreads: 0,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => { logLine(log, level, message) }
    })
  } catch (err) {
    if (err instanceof NoBinaryFoundError) {
      throw new InferenceError({code: 'BINARY_NOT_FOUND', gpu}, `no prebuilt llama.cpp binary for this platform (gpu: ${gpu}); install @node-llama-cpp/${process.platform}-${process.arch}`, {cause: err})
    }
    throw err
  }
}

function logLine (log: Logger, level: LlamaLogLevel, message: string): void {
  const text = message.trimEnd()
  if (text === '') return
  switch (level) {
    case LlamaLogLevel.fatal:
    case LlamaLogLevel.error:
      log.error(text)
      return
    case LlamaLogLevel.warn:
      log.warn(text)
      return
    case LlamaLogLevel.info:
      log.info(text)
      return
    case LlamaLogLevel.log:
    case LlamaLogLevel.debug:
    case LlamaLogLevel.disabled:
      log.debug(text)
  }
}
