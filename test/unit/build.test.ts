import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, globSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {pathToFileURL} from 'node:url'
import {PROJECT_ROOT} from '../../src/util/paths.js'

const SRC = join(PROJECT_ROOT, 'src')
const DIST = join(PROJECT_ROOT, 'dist')

function build (): void {
  execFileSync(process.execPath, [join(PROJECT_ROOT, 'scripts', 'build.mjs')], {cwd: PROJECT_ROOT, stdio: 'pipe'})
}

describe('build (scripts/build.mjs: src → dist)', () => {
  it('compiles every source module, and nothing else, each with its source map', () => {
    build()
    const sources = globSync('**/*.ts', {cwd: SRC}).filter(file => !file.endsWith('.d.ts')).map(file => file.replace(/\.ts$/, '.js')).sort()
    assert.deepEqual(globSync('**/*.js', {cwd: DIST}).sort(), sources)
    for (const file of sources) assert.ok(existsSync(join(DIST, `${file}.map`)), `${file}.map`)
  })

  it('copies the files modules read beside themselves, and keeps PROJECT_ROOT the checkout', async () => {
    build()
    const page = 'api/dashboard/index.html'
    assert.equal(readFileSync(join(DIST, page), 'utf8'), readFileSync(join(SRC, page), 'utf8'))
    const compiled = await import(pathToFileURL(join(DIST, 'util', 'paths.js')).href) as {PROJECT_ROOT: string}
    assert.equal(compiled.PROJECT_ROOT, PROJECT_ROOT)
  })

  it('removes the module of a deleted source and rewrites nothing that did not change', () => {
    build()
    const stale = join(DIST, 'runtime', `deletedSource${process.pid}.js`)
    writeFileSync(stale, 'export {}\n')
    const cli = join(DIST, 'runtime', 'cli.js')
    const written = statSync(cli).mtimeMs
    build()
    assert.equal(existsSync(stale), false)
    assert.equal(statSync(cli).mtimeMs, written)
  })
})
