import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {arch, platform} from 'node:process'
import {fileURLToPath} from 'node:url'

/**
 * The class of nodes whose greedy output is byte-identical: same llama.cpp build (the
 * node-llama-cpp release pins it) on the same CPU architecture. The oracle compares output
 * hashes only within a class.
 */
export function determinismClass (): string {
  // The package does not export its package.json; its entry point sits in dist/.
  const packageDir = dirname(dirname(fileURLToPath(import.meta.resolve('node-llama-cpp'))))
  const {version} = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {version: string}
  return `node-llama-cpp-${version}/cpu-${platform}-${arch}`
}
