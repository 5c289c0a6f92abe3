#!/usr/bin/env node
// src/**/*.ts → dist/**/*.js, one module per source file (no bundling: imports already name
// `.js` files), plus the files modules read beside themselves. Plain JavaScript, so it runs on a
// checkout without tsx: `npm ci` runs it (`prepare`), and so do `npm run demo`, `npm run
// cortensord` and a devnet started from the TypeScript sources (tests), before their first node.
//
// `outbase: src` keeps the tree's shape, so a module's location means the same in both trees
// (src/util/paths.ts → dist/util/paths.js: PROJECT_ROOT, two folders up, is the checkout).
//
// dist/ ends up holding exactly this build's files: anything else there (the module of a deleted
// or renamed source) is removed. It is not wiped and rewritten, though: node processes of a
// running devnet or test load modules from it later (dynamic imports), so a build writes only
// the files whose bytes changed, each through a temporary file and a rename (a reader sees the
// old file or the new one, never half of one), and a build with no source change touches nothing.
//
// Source maps are linked files: free unless Node runs with `--enable-source-maps`, which then
// gives stack traces in .ts lines. Without it, traces name dist/*.js lines, which esbuild keeps
// close to the source (types are stripped; statements keep their lines' order).
import {build} from 'esbuild'
import {mkdirSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, writeFileSync} from 'node:fs'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const src = join(root, 'src')
const dist = join(root, 'dist')

/** Files that modules load relative to their own URL (`new URL('./x', import.meta.url)`). */
const ASSETS = ['api/dashboard/index.html']

const started = performance.now()
const entryPoints = readdirSync(src, {recursive: true}).filter(file => file.endsWith('.ts') && !file.endsWith('.d.ts')).map(file => join(src, file))
const result = await build({
  entryPoints,
  outdir: dist,
  outbase: src,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  bundle: false,
  sourcemap: 'linked',
  logLevel: 'warning',
  absWorkingDir: root,
  write: false
})

/** Every file this build puts in dist/, by absolute path. */
const files = new Map(result.outputFiles.map(file => [file.path, file.contents]))
for (const asset of ASSETS) files.set(join(dist, asset), readFileSync(join(src, asset)))

let written = 0
for (const [path, contents] of files) {
  if (sameBytes(path, contents)) continue
  mkdirSync(dirname(path), {recursive: true})
  const temporary = `${path}.${process.pid}.tmp`
  writeFileSync(temporary, contents)
  renameSync(temporary, path)
  written++
}
const removed = removeOthers(dist)
if (process.argv.includes('--verbose')) {
  process.stderr.write(`dist/: ${files.size} files, ${written} written, ${removed} stale removed, in ${Math.round(performance.now() - started)} ms\n`)
}

function sameBytes (path, contents) {
  try {
    return Buffer.compare(readFileSync(path), contents) === 0
  } catch {
    return false
  }
}

/** Removes what under `dir` is not one of `files` (and folders left empty); returns how many files. */
function removeOthers (dir) {
  let count = 0
  let entries
  try {
    entries = readdirSync(dir, {withFileTypes: true})
  } catch {
    return 0
  }
  for (const entry of entries) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      count += removeOthers(path)
      if (readdirSync(path).length === 0) rmdirSync(path)
    } else if (!files.has(path) && !isAnotherBuildsTemporary(path)) {
      rmSync(path, {force: true})
      count++
    }
  }
  return count
}

/** A build running beside this one (another test process) renames its temporary files itself. */
function isAnotherBuildsTemporary (path) {
  return /\.\d+\.tmp$/.test(relative(dist, path))
}
