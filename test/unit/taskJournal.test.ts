import assert from 'node:assert/strict'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {JournalError, TaskJournal} from '../../src/journal/taskJournal.js'

let dir: string
before(async () => { dir = await mkdtemp(join(tmpdir(), 'journal-')) })
after(async () => { await rm(dir, {recursive: true, force: true}) })

describe('task journal', () => {
  it('a reopened journal holds every task, its last state and its events in order; finished tasks are not replayed', () => {
    const path = join(dir, 'a.sqlite')
    const journal = TaskJournal.open(path)
    journal.record('oracle', '1', {type: 'Requested'}, {phase: 'running'}, true)
    journal.record('oracle', '2', {type: 'Requested'}, {phase: 'running'}, true)
    journal.record('oracle', '1', {type: 'Answered'}, {phase: 'settling'}, true)
    journal.record('oracle', '2', {type: 'Trail'}, {phase: 'ended'}, false)
    journal.record('miner', '1', {type: 'Taken'}, {phase: 'inferring'}, true)
    journal.close()

    const reopened = TaskJournal.open(path)
    assert.deepEqual(reopened.openTasks('oracle').map(t => [t.taskId, t.state]), [['1', {phase: 'settling'}]])
    assert.deepEqual(reopened.get('oracle', '2')?.state, {phase: 'ended'})
    assert.deepEqual(reopened.events('oracle', '1'), [{type: 'Requested'}, {type: 'Answered'}])
    assert.deepEqual(reopened.recent('oracle', 10).map(t => t.taskId), ['2', '1'])
    assert.deepEqual(reopened.openTasks('miner').map(t => t.taskId), ['1'], 'kinds are kept apart')
    reopened.close()
  })

  it('applies a chain batch and its checkpoint together', () => {
    const journal = TaskJournal.open(':memory:')
    const row = {taskId: '9', oracle: '0xabc', precommitDeadline: 100, commitDeadline: 200, state: 1, precommits: 0}
    journal.applyChainBatch('watch', 41, [row, {...row, taskId: '10'}], [])
    journal.applyChainBatch('watch', 42, [{...row, state: 3}], ['10'])
    assert.deepEqual(journal.chainTasks(), [{...row, state: 3}])
    assert.equal(journal.meta('watch'), '42')
    journal.close()
  })

  it('names the file when it cannot be opened', async () => {
    const notADb = join(dir, 'garbage.sqlite')
    await writeFile(notADb, 'this is not a database, and it is long enough to have a header '.repeat(20))
    assert.throws(() => TaskJournal.open(notADb), (err: unknown) => err instanceof JournalError && err.code === 'JOURNAL_UNREADABLE' && err.message.includes(notADb))
  })
})
