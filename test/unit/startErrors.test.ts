import assert from 'node:assert/strict'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {readDeployment} from '../../src/chain/deployment.js'
import {readConfigFile} from '../../src/runtime/config.js'
import {createKeystore, loadKeystore} from '../../src/runtime/keys.js'
import {CortensorError} from '../../src/util/cortensorError.js'

/**
 * What `cortensord start --config FILE` reads before it touches the network. The CLI prints a
 * CortensorError as one line (anything else as a stack trace), so each failure must be one.
 */
async function failsAs (run: () => unknown, code: string, message: RegExp): Promise<void> {
  await assert.rejects(async () => { await run() }, (err: unknown) => {
    assert.ok(err instanceof CortensorError, `a CortensorError expected, got ${String(err)}`)
    assert.equal(err.code, code)
    assert.match(err.message, message)
    assert.doesNotMatch(err.message, /\n/, 'one line')
    return true
  })
}

describe('start: every failure to read its files is one coded line', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cortensor-start-'))
    await mkdir(join(dir, 'folder'))
  })
  after(async () => { await rm(dir, {recursive: true, force: true}) })

  it('config file: missing, a folder, not JSON, not an object', async () => {
    await failsAs(() => readConfigFile(join(dir, 'none.json')), 'CONFIG_UNREADABLE', /cannot read config file .*none\.json: ENOENT/)
    await failsAs(() => readConfigFile(join(dir, 'folder')), 'CONFIG_UNREADABLE', /cannot read config file .*folder: EISDIR/)
    await writeFile(join(dir, 'bad.json'), '{"role": "miner",\n"chain": }')
    await failsAs(() => readConfigFile(join(dir, 'bad.json')), 'CONFIG_UNREADABLE', /bad\.json is not valid JSON/)
    await writeFile(join(dir, 'list.json'), '[]')
    await failsAs(() => readConfigFile(join(dir, 'list.json')), 'CONFIG_UNREADABLE', /must hold a JSON object/)
  })

  it('keystore: missing, a folder, not a keystore, wrong password', async () => {
    await failsAs(() => loadKeystore(join(dir, 'none.json'), 'pw'), 'KEYSTORE_NOT_FOUND', /keystore .*none\.json not found/)
    await failsAs(() => loadKeystore(join(dir, 'folder'), 'pw'), 'KEYSTORE_UNREADABLE', /cannot read keystore .*folder: EISDIR/)
    await writeFile(join(dir, 'other.json'), '{"role": "miner"}')
    await failsAs(() => loadKeystore(join(dir, 'other.json'), 'pw'), 'KEYSTORE_INVALID', /is not an Ethereum JSON keystore/)
    await createKeystore(join(dir, 'key.json'), 'right')
    await failsAs(() => loadKeystore(join(dir, 'key.json'), 'wrong'), 'KEYSTORE_WRONG_PASSWORD', /wrong password for keystore/)
    await failsAs(() => createKeystore(join(dir, 'key.json', 'below-a-file.json'), 'pw'), 'KEYSTORE_UNWRITABLE', /cannot write keystore/)
  })

  it('deployment file: missing, a folder', async () => {
    await failsAs(() => readDeployment(join(dir, 'none.json')), 'DEPLOYMENT_UNREADABLE', /none\.json/)
    await failsAs(() => readDeployment(join(dir, 'folder')), 'DEPLOYMENT_UNREADABLE', /folder/)
  })
})
