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

  it('books a ledger entry once, with its totals, and keeps only the newest entries', () => {
    const journal = TaskJournal.open(join(dir, 'ledger.sqlite'))
    journal.setLedgerTotals({n: 0})
    for (let i = 1; i <= 12; i++) journal.followLedgerTask(String(i), {taskId: String(i)})
    for (let i = 1; i <= 12; i++) assert.equal(journal.closeLedgerTask(String(i), {entry: {taskId: String(i)}, totals: {n: i}}, 10), true)
    assert.equal(journal.closeLedgerTask('12', {entry: {taskId: '12', again: true}, totals: {n: 13}}, 10), false, 'a task is booked once')
    journal.followLedgerTask('13', {taskId: '13', step: 1})
    journal.followLedgerTask('13', {taskId: '13', step: 2})
    const stored = journal.ledger(50)
    assert.deepEqual(stored.totals, {n: 12}, 'the totals of the last booking that counted')
    assert.deepEqual(stored.recent.map(e => (e as {taskId: string}).taskId), ['12', '11', '10', '9', '8', '7', '6', '5', '4', '3'])
    assert.deepEqual(stored.followed, [{taskId: '13', step: 2}])
    journal.close()
  })

  it('a ledger row that is not JSON is named, with its task', () => {
    const journal = TaskJournal.open(join(dir, 'bad-ledger.sqlite'))
    journal.setMeta('ledger.totals', '{not json')
    assert.throws(() => journal.ledger(50), (err: unknown) => err instanceof JournalError && err.code === 'LEDGER_ENTRY_INVALID' && /the earnings ledger's totals in the journal is not valid JSON/.test(err.message))
    journal.close()
  })

  it('names the file when it cannot be opened', async () => {
    const notADb = join(dir, 'garbage.sqlite')
    await writeFile(notADb, 'this is not a database, and it is long enough to have a header '.repeat(20))
    assert.throws(() => TaskJournal.open(notADb), (err: unknown) => err instanceof JournalError && err.code === 'JOURNAL_UNREADABLE' && err.message.includes(notADb))
  })
})
