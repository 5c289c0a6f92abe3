// Compiles contracts/*.sol and rewrites src/chain/generated/. Run: npm run build:contracts
import {mkdirSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {resolve} from 'node:path'
import {compileContracts, GENERATED_DIR, renderBindings} from './compileContracts.js'

const files = renderBindings(compileContracts())
mkdirSync(GENERATED_DIR, {recursive: true})
// Bindings of a removed contract must not linger.
for (const stale of readdirSync(GENERATED_DIR).filter((f) => !files.has(f))) {
  rmSync(resolve(GENERATED_DIR, stale))
}
for (const [file, content] of files) {
  writeFileSync(resolve(GENERATED_DIR, file), content)
}
process.stdout.write(`wrote ${files.size} files to ${GENERATED_DIR}\n`)
