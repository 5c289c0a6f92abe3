import {mkdirSync} from 'node:fs'
import {dirname} from 'node:path'
import {DatabaseSync, type StatementSync} from 'node:sqlite'
import {CortensorError} from '../util/cortensorError.js'

/** Whose tasks a row belongs to: an oracle's coordination or a miner's work. */
export type JournalKind = 'oracle' | 'miner'

export class JournalError extends CortensorError<{code: 'JOURNAL_UNREADABLE', path: string} | {code: 'JOURNAL_ENTRY_INVALID', taskId: string} | {code: 'LEDGER_ENTRY_INVALID', what: string}> {}

/** One task's latest state as the journal holds it. */
export interface JournaledTask<S> {
  taskId: string
  state: S
  open: boolean
  updatedAt: number
}

/** A miner's earnings ledger as last booked (the JSON forms are the earnings actor's, `earningsLedger.ts`). */
export interface StoredLedger {
  /** Totals, the sum earned and since when; undefined before the ledger's first write. */
  totals?: unknown
  /** Tasks followed to their end, in the order first followed. */
  followed: unknown[]
  /** Booked entries, newest first. */
  recent: unknown[]
}

/** A task of any oracle seen on chain and not yet closed: what the sweeper watches. */
export interface ChainTaskRow {
  taskId: string
  oracle: string
  /** Unix seconds, as on chain. */
  precommitDeadline: number
  commitDeadline: number
  /** The chain's TaskState code. */
  state: number
  /** Precommits seen: once there is one, the task stays open for (late) reveals until the commit deadline. */
  precommits: number
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    task_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    event TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS events_task ON events (kind, task_id);
  CREATE TABLE IF NOT EXISTS tasks (
    kind TEXT NOT NULL,
    task_id TEXT NOT NULL,
    open INTEGER NOT NULL,
    created_seq INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (kind, task_id)
  );
  CREATE INDEX IF NOT EXISTS tasks_open ON tasks (kind, open);
  CREATE TABLE IF NOT EXISTS chain_tasks (
    task_id TEXT PRIMARY KEY,
    oracle TEXT NOT NULL,
    precommit_deadline INTEGER NOT NULL,
    commit_deadline INTEGER NOT NULL,
    state INTEGER NOT NULL,
    precommits INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS ledger_followed (task_id TEXT PRIMARY KEY, task TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS ledger_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL UNIQUE,
    entry TEXT NOT NULL
  );
`
/** The meta key of the earnings ledger's totals. */
const LEDGER_TOTALS = 'ledger.totals'

/**
 * The node's durable memory of its tasks, in SQLite through Node's built-in `node:sqlite` (no
 * native addon to build, one file, transactions). Each step of a task's state machine is
 * recorded (the event and the state after it, in one transaction) before its effects run, so a
 * node killed at any moment restarts knowing every task it had and what it last decided.
 *
 * WAL with `synchronous=NORMAL`: a committed step survives the process being killed (the
 * faults this network sees: kill -9, OOM, crashes); a power cut may lose the last steps but
 * never corrupts the file. `locking_mode=EXCLUSIVE`: one node owns its journal, so no shared
 * lock file is taken and released around every step (a third less CPU per step), and a second
 * daemon started on the same data folder cannot interleave its writes. Writes are synchronous and short, so an actor calls them inline.
 */
export class TaskJournal {
  private readonly db: DatabaseSync
  private readonly insertEvent: StatementSync
  private readonly upsertTask: StatementSync
  private writesSincePrune = 0

  private constructor (db: DatabaseSync) {
    this.db = db
    this.insertEvent = db.prepare('INSERT INTO events (kind, task_id, at, event) VALUES (?, ?, ?, ?)')
    this.upsertTask = db.prepare(`INSERT INTO tasks (kind, task_id, open, created_seq, updated_at, state) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (kind, task_id) DO UPDATE SET open = excluded.open, updated_at = excluded.updated_at, state = excluded.state`)
  }

  /** Opens (creating if needed) the journal at `path`; `:memory:` for a throwaway one. */
  static open (path: string): TaskJournal {
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), {recursive: true})
      const db = new DatabaseSync(path)
      db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA locking_mode = EXCLUSIVE; PRAGMA busy_timeout = 5000;')
      db.exec(SCHEMA)
      return new TaskJournal(db)
    } catch (err) {
      throw new JournalError({code: 'JOURNAL_UNREADABLE', path}, `cannot open the task journal ${path}: ${(err as Error).message}`, {cause: err})
    }
  }

  /**
   * Records `event` for a task and the task's state after it, atomically. `open` false marks the
   * task finished: it is no longer replayed at start, only kept for lookups.
   */
  record (kind: JournalKind, taskId: string, event: unknown, state: unknown, open: boolean, now = Date.now()): void {
    this.transaction(() => {
      const {lastInsertRowid} = this.insertEvent.run(kind, taskId, now, JSON.stringify(event))
      this.upsertTask.run(kind, taskId, open ? 1 : 0, lastInsertRowid, now, JSON.stringify(state))
    })
    if (++this.writesSincePrune >= PRUNE_EVERY) {
      this.writesSincePrune = 0
      this.prune(kind)
    }
  }

  /** Tasks not finished, oldest first: what a restarting node carries on with. */
  openTasks<S> (kind: JournalKind): Array<JournaledTask<S>> {
    return this.rows<S>(this.db.prepare('SELECT task_id, state, open, updated_at FROM tasks WHERE kind = ? AND open = 1 ORDER BY created_seq').all(kind))
  }

  /** The most recently created tasks, newest first (open or not). */
  recent<S> (kind: JournalKind, limit: number): Array<JournaledTask<S>> {
    return this.rows<S>(this.db.prepare('SELECT task_id, state, open, updated_at FROM tasks WHERE kind = ? ORDER BY created_seq DESC LIMIT ?').all(kind, limit))
  }

  get<S> (kind: JournalKind, taskId: string): JournaledTask<S> | undefined {
    return this.rows<S>(this.db.prepare('SELECT task_id, state, open, updated_at FROM tasks WHERE kind = ? AND task_id = ?').all(kind, taskId))[0]
  }

  /** A task's events in the order they were recorded. */
  events (kind: JournalKind, taskId: string): unknown[] {
    return this.db.prepare('SELECT event FROM events WHERE kind = ? AND task_id = ? ORDER BY seq').all(kind, taskId)
      .map(row => JSON.parse(String(row.event)) as unknown)
  }

  meta (key: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key)
    return row == null ? undefined : String(row.value)
  }

  setMeta (key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value)
  }

  /** Tasks of any oracle that the chain shows open, as the sweeper last saw them. */
  chainTasks (): ChainTaskRow[] {
    return this.db.prepare('SELECT task_id, oracle, precommit_deadline, commit_deadline, state, precommits FROM chain_tasks').all().map(row => ({
      taskId: String(row.task_id), oracle: String(row.oracle), precommitDeadline: Number(row.precommit_deadline),
      commitDeadline: Number(row.commit_deadline), state: Number(row.state), precommits: Number(row.precommits)
    }))
  }

  /**
   * Applies one batch of chain events to the open-task index and moves the watch checkpoint to
   * `toBlock`, atomically: after a restart the watch resumes right after the last batch applied.
   */
  applyChainBatch (checkpointKey: string, toBlock: number, upserts: readonly ChainTaskRow[], removes: readonly string[]): void {
    const upsert = this.db.prepare(`INSERT INTO chain_tasks (task_id, oracle, precommit_deadline, commit_deadline, state, precommits) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (task_id) DO UPDATE SET oracle = excluded.oracle, precommit_deadline = excluded.precommit_deadline,
        commit_deadline = excluded.commit_deadline, state = excluded.state, precommits = excluded.precommits`)
    const remove = this.db.prepare('DELETE FROM chain_tasks WHERE task_id = ?')
    this.transaction(() => {
      for (const row of upserts) upsert.run(row.taskId, row.oracle, row.precommitDeadline, row.commitDeadline, row.state, row.precommits)
      for (const taskId of removes) remove.run(taskId)
      this.setMeta(checkpointKey, String(toBlock))
    })
  }

  /** The earnings ledger, up to `recent` entries. */
  ledger (recent: number): StoredLedger {
    const parse = (text: unknown, what: string): unknown => {
      try {
        return JSON.parse(String(text)) as unknown
      } catch (err) {
        throw new JournalError({code: 'LEDGER_ENTRY_INVALID', what}, `the earnings ledger's ${what} in the journal is not valid JSON: ${(err as Error).message}`, {cause: err})
      }
    }
    const totals = this.meta(LEDGER_TOTALS)
    return {
      ...(totals == null ? {} : {totals: parse(totals, 'totals')}),
      followed: this.db.prepare('SELECT task_id, task FROM ledger_followed ORDER BY rowid').all().map(row => parse(row.task, `task ${String(row.task_id)}`)),
      recent: this.db.prepare('SELECT task_id, entry FROM ledger_entries ORDER BY seq DESC LIMIT ?').all(recent).map(row => parse(row.entry, `entry ${String(row.task_id)}`))
    }
  }

  /** Writes the ledger's totals (its first write, before any entry, says since when it counts). */
  setLedgerTotals (totals: unknown): void {
    this.setMeta(LEDGER_TOTALS, JSON.stringify(totals))
  }

  /** Empties the ledger (its followed tasks and entries) and writes new totals, atomically. */
  resetLedger (totals: unknown): void {
    this.transaction(() => {
      this.db.exec('DELETE FROM ledger_followed; DELETE FROM ledger_entries')
      this.setLedgerTotals(totals)
    })
  }

  /** Follows a task, or updates what the ledger knows of it. */
  followLedgerTask (taskId: string, task: unknown): void {
    this.db.prepare('INSERT INTO ledger_followed (task_id, task) VALUES (?, ?) ON CONFLICT (task_id) DO UPDATE SET task = excluded.task').run(taskId, JSON.stringify(task))
  }

  /**
   * Closes a followed task, atomically: it is no longer followed and, with an entry, the entry is
   * booked and `totals` (which count it) written, unless the task was booked already. Keeps the
   * newest `keep` entries. Returns whether an entry was booked.
   */
  closeLedgerTask (taskId: string, booked: {entry: unknown, totals: unknown} | undefined, keep: number): boolean {
    let added = false
    this.transaction(() => {
      this.db.prepare('DELETE FROM ledger_followed WHERE task_id = ?').run(taskId)
      if (booked == null) return
      added = this.db.prepare('INSERT INTO ledger_entries (task_id, entry) VALUES (?, ?) ON CONFLICT (task_id) DO NOTHING').run(taskId, JSON.stringify(booked.entry)).changes > 0
      if (!added) return
      this.setLedgerTotals(booked.totals)
      this.db.prepare('DELETE FROM ledger_entries WHERE seq <= (SELECT seq FROM ledger_entries ORDER BY seq DESC LIMIT 1 OFFSET ?)').run(keep)
    })
    return added
  }

  close (): void {
    if (this.db.isOpen) this.db.close()
  }

  /** Drops the events of finished tasks beyond the newest `FINISHED_KEPT`; their last state stays. */
  private prune (kind: JournalKind): void {
    this.transaction(() => {
      this.db.prepare(`DELETE FROM tasks WHERE kind = ? AND open = 0 AND created_seq < (
        SELECT created_seq FROM tasks WHERE kind = ? AND open = 0 ORDER BY created_seq DESC LIMIT 1 OFFSET ?)`).run(kind, kind, FINISHED_KEPT)
      this.db.prepare('DELETE FROM events WHERE kind = ? AND task_id NOT IN (SELECT task_id FROM tasks WHERE kind = ?)').run(kind, kind)
    })
  }

  private transaction (fn: () => void): void {
    this.db.exec('BEGIN IMMEDIATE')
    try {
      fn()
      this.db.exec('COMMIT')
    } catch (err) {
      this.db.exec('ROLLBACK')
      throw err
    }
  }

  private rows<S> (rows: Array<Record<string, unknown>>): Array<JournaledTask<S>> {
    return rows.map(row => {
      const taskId = String(row.task_id)
      try {
        return {taskId, state: JSON.parse(String(row.state)) as S, open: row.open === 1, updatedAt: Number(row.updated_at)}
      } catch (err) {
        throw new JournalError({code: 'JOURNAL_ENTRY_INVALID', taskId}, `task ${taskId} in the journal is not valid JSON: ${(err as Error).message}`, {cause: err})
      }
    })
  }
}

/** Finished tasks whose state is kept for the API after a restart. */
const FINISHED_KEPT = 10_000
const PRUNE_EVERY = 1_000
