import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {ActorSystem, type ActorDefinition} from '../../src/actors/actorSystem.js'
import type {ChainMessage} from '../../src/actors/chain/messages.js'
import type {EnsureReply, ModelMessage} from '../../src/actors/model/messages.js'
import {modelActor} from '../../src/actors/model/modelActor.js'
import {ModelError} from '../../src/model/modelError.js'
import type {ModelStore} from '../../src/model/modelStore.js'
import {toModelId} from '../../src/protocols/modelId.js'
import {restartPolicy} from '../../src/runtime/supervisionTree.js'
import {createSilentLogger} from '../../src/util/logger.js'

const SHA = 'ab'.repeat(32)

/** A chain actor that knows one registry record. */
function registry (system: ActorSystem): ActorDefinition<null, ChainMessage> {
  return {
    name: `registry-${Math.random()}`,
    init: async () => null,
    receive: (state, msg) => {
      if (msg.type === 'Read') system.tell(msg.replyTo, {type: 'Value', value: {name: 'm', cid: 'bafkqaaa', sha256Digest: `0x${SHA}`, sizeBytes: 10n, quantization: 'F32', active: true}})
      return state
    }
  }
}

/** A store whose fetch fails with the given errors, in turn, then succeeds. */
function flakyStore (failures: Error[]): {store: ModelStore, calls: () => number} {
  let calls = 0
  const store: ModelStore = {
    addFile: async () => assert.fail('no local file in these tests'),
    ensureModel: async (descriptor) => {
      const failure = failures[calls++]
      if (failure != null) throw failure
      return {path: '/models/m.gguf', descriptor, networkBytes: 10, localBytes: 0}
    }
  }
  return {store, calls: () => calls}
}

async function ensure (failures: Error[]): Promise<{reply: EnsureReply, calls: number}> {
  const system = new ActorSystem(createSilentLogger(), () => assert.fail('no fatal expected'))
  const chain = system.spawn(registry(system), restartPolicy('chain'))
  const {store, calls} = flakyStore(failures)
  const model = system.spawn(modelActor({system, chain, openStore: async () => store}), restartPolicy('model'))
  try {
    const reply = await system.ask<ModelMessage, EnsureReply>(model, replyTo => ({type: 'Ensure', modelId: toModelId(1), replyTo}), 20_000)
    return {reply, calls: calls()}
  } finally {
    await system.stop([])
  }
}

const stalled = (): ModelError => new ModelError({code: 'FETCH_STALLED', cid: 'bafkqaaa', bytes: 0, total: 10, stallTimeoutMs: 1}, 'no block arrived')

describe('model actor', () => {
  it('resumes a stalled fetch instead of giving up on the first stall', async () => {
    const {reply, calls} = await ensure([stalled(), stalled()])
    assert.equal(reply.type, 'Ready')
    assert.equal(calls, 3)
  })

  it('never retries a hash mismatch: the bytes are wrong, not late', async () => {
    const mismatch = new ModelError({code: 'HASH_MISMATCH', path: '/x', expected: SHA, actual: '00'}, 'sha256 mismatch')
    const {reply, calls} = await ensure([mismatch])
    assert.equal(reply.type === 'Failed' ? reply.code : reply.type, 'HASH_MISMATCH')
    assert.equal(calls, 1)
  })
})
