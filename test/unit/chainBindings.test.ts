import assert from 'node:assert/strict'
import {readdirSync, readFileSync} from 'node:fs'
import {resolve} from 'node:path'
import {describe, it} from 'node:test'
import {compileContracts, GENERATED_DIR, renderBindings} from '../../scripts/compileContracts.js'

describe('generated contract bindings', () => {
  it('match a fresh compile of contracts/*.sol (run npm run build:contracts when this fails)', () => {
    const expected = renderBindings(compileContracts())
    assert.deepEqual(readdirSync(GENERATED_DIR).sort(), [...expected.keys()].sort())
    for (const [file, content] of expected) {
      assert.ok(readFileSync(resolve(GENERATED_DIR, file), 'utf8') === content, `src/chain/generated/${file} is stale`)
    }
  })
})
