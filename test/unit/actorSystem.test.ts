import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {ActorError, ActorSystem, type ActorDefinition, type ActorRef, type RestartPolicy} from '../../src/actors/actorSystem.js'
import {createSilentLogger} from '../../src/util/logger.js'

type Reply = {type: 'Done', value: string, resource: number} | {type: 'Failed', error: string}
type Msg =
  | {type: 'Work', value: string, replyTo: ActorRef<Reply>}
  | {type: 'Crash', replyTo: ActorRef<Reply>}
  | {type: 'Ignore'}

const POLICY: RestartPolicy = {strategy: 'restart', maxRestarts: 2, withinMs: 60_000, backoffMs: {initial: 1, max: 5}}

/** A resource with a visible lifecycle: each init opens a new numbered one, dispose closes it. */
function counterActor (system: ActorSystem, events: string[], initDelayMs = 0): ActorDefinition<{resource: number}, Msg> {
  let opened = 0
  return {
    name: `counter-${Math.random().toString(36).slice(2)}`,
    init: async () => {
      await new Promise(resolve => setTimeout(resolve, initDelayMs))
      opened++
      events.push(`open ${opened}`)
      return {resource: opened}
    },
    receive: (state, msg) => {
      switch (msg.type) {
        case 'Work':
          system.tell(msg.replyTo, {type: 'Done', value: msg.value, resource: state.resource})
          return state
        case 'Crash':
          throw new Error('boom')
        case 'Ignore':
          return state
      }
    },
    dispose: (state) => { events.push(`close ${state.resource}`) },
    failMessage: (msg, error) => {
      if ('replyTo' in msg) system.tell(msg.replyTo, {type: 'Failed', error: error.message})
    }
  }
}

describe('actor system', () => {
  it('handles messages sent while the resource is still opening, in order, once it is ready', async () => {
    const events: string[] = []
    const system = new ActorSystem(createSilentLogger(), () => assert.fail('no fatal expected'))
    const ref = system.spawn(counterActor(system, events, 30), POLICY)
    const replies = await Promise.all(['a', 'b', 'c'].map(async value =>
      system.ask<Msg, Reply>(ref, replyTo => ({type: 'Work', value, replyTo}), 1_000)))
    assert.deepEqual(replies.map(r => r.type === 'Done' ? r.value : r.error), ['a', 'b', 'c'])
    await system.stop([])
    assert.deepEqual(events, ['open 1', 'close 1'])
  })

  it('fails the crashing request explicitly, reopens the resource, and keeps serving', async () => {
    const events: string[] = []
    const system = new ActorSystem(createSilentLogger(), () => assert.fail('no fatal expected'))
    const ref = system.spawn(counterActor(system, events), POLICY)
    const crashed = await system.ask<Msg, Reply>(ref, replyTo => ({type: 'Crash', replyTo}), 1_000)
    assert.deepEqual(crashed, {type: 'Failed', error: 'boom'})
    const after = await system.ask<Msg, Reply>(ref, replyTo => ({type: 'Work', value: 'x', replyTo}), 1_000)
    assert.deepEqual(after, {type: 'Done', value: 'x', resource: 2})
    await system.stop([])
    assert.deepEqual(events, ['open 1', 'close 1', 'open 2', 'close 2'])
  })

  it('escalates a crash loop to the fatal handler with the reason, and stops the actor', async () => {
    const events: string[] = []
    let fatal: ActorError | undefined
    const system = new ActorSystem(createSilentLogger(), (error) => { fatal = error })
    const ref = system.spawn(counterActor(system, events), POLICY)
    for (let i = 0; i < 3; i++) {
      const reply = await system.ask<Msg, Reply>(ref, replyTo => ({type: 'Crash', replyTo}), 1_000)
      assert.equal(reply.type, 'Failed')
    }
    assert.equal(fatal?.code, 'CRASH_LOOP')
    assert.match(fatal?.message ?? '', /crashed 3 times.*boom/)
    await assert.rejects(system.ask<Msg, Reply>(ref, replyTo => ({type: 'Work', value: 'y', replyTo}), 200),
      (err: ActorError) => err.code === 'ACTOR_STOPPED')
    await system.stop([])
  })

  it('names the actor and the message when an ask times out', async () => {
    const system = new ActorSystem(createSilentLogger(), () => assert.fail('no fatal expected'))
    const def = counterActor(system, [])
    const ref = system.spawn(def, POLICY)
    await assert.rejects(system.ask<any, Reply>(ref, () => ({type: 'Ignore'}), 50), (err: ActorError) => {
      assert.equal(err.code, 'ASK_TIMEOUT')
      assert.match(err.message, new RegExp(`${def.name} did not answer Ignore within 50 ms`))
      return true
    })
    await system.stop([])
  })
})
