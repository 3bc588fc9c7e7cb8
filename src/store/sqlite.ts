/**
 * The SQLite flavour of the store: `node:sqlite` (built into Node, no native addon) under Kysely's SQLite
 * dialect. Everything SQLite-specific lives here: the adapter that gives `DatabaseSync` the better-sqlite3
 * shape Kysely expects, a driver whose transactions start with `BEGIN IMMEDIATE`, file permissions, pragmas.
 * The queries themselves are shared with PostgreSQL in the role stores that kysely-store.ts composes.
 *
 * `waitForConnectionChange`: SQLite has no way to tell another process that a row changed, so a wait is woken
 * only by this handle's own writes (connection-store.ts wakes the row's waiters after each write that changed it)
 * and otherwise runs to its timeout. Across processes sharing the file, the callers' polling (the timeout) is
 * the mechanism, as it was before waits existed.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  mkdirSync,
  openSync,
  statSync,
} from 'node:fs'
import { dirname, resolve } from 'node:path'
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite'
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  type QueryResult,
  type SqliteDatabase,
  SqliteDialect,
  SqliteDriver,
  type SqliteStatement,
  sql,
} from 'kysely'
import { SpConnectError } from '../domain/errors.ts'
import { toStoreError } from './error-boundary.ts'
import { createKyselyStore } from './kysely-store.ts'
import type { Database } from './schema.ts'
import type { Store } from './store.ts'

/** How long a write waits for another connection's write lock before failing with SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000

/** Prepared statements kept per connection; our query set is small and fixed, so this is plenty. */
const STATEMENT_CACHE_SIZE = 200

const SQLITE_BUSY = 5

function toSqlValue(value: unknown, index: number): SQLInputValue {
  if (
    value === null ||
    typeof value === 'string' ||
    typeof value === 'number' ||
    typeof value === 'bigint' ||
    value instanceof Uint8Array
  ) {
    return value
  }
  // node:sqlite would bind undefined as NULL silently and reject booleans; both are bugs in the caller.
  throw new TypeError(`Cannot bind a value of type ${typeof value} to SQLite parameter ${index + 1}`)
}

function toSqlValues(parameters: ReadonlyArray<unknown>): SQLInputValue[] {
  return parameters.map(toSqlValue)
}

/**
 * Adapts a `node:sqlite` `DatabaseSync` to the better-sqlite3-shaped {@link SqliteDatabase} Kysely's SQLite
 * dialect drives. Statements are prepared once and cached by SQL text.
 */
class NodeSqliteDatabase implements SqliteDatabase {
  readonly #db: DatabaseSync
  readonly #statements = new Map<string, SqliteStatement>()

  constructor(db: DatabaseSync) {
    this.#db = db
  }

  prepare(sql: string): SqliteStatement {
    const cached = this.#statements.get(sql)
    if (cached !== undefined) return cached
    const statement = wrapStatement(this.#db.prepare(sql))
    if (this.#statements.size >= STATEMENT_CACHE_SIZE) {
      const oldest = this.#statements.keys().next()
      if (oldest.done !== true) this.#statements.delete(oldest.value)
    }
    this.#statements.set(sql, statement)
    return statement
  }

  close(): void {
    this.#statements.clear()
    this.#db.close()
  }
}

function wrapStatement(statement: StatementSync): SqliteStatement {
  return {
    // A statement "reads" when it yields columns: SELECT, PRAGMA, and any write with RETURNING.
    reader: statement.columns().length > 0,
    all: (parameters) => statement.all(...toSqlValues(parameters)),
    run: (parameters) => statement.run(...toSqlValues(parameters)),
    iterate: (parameters) => statement.iterate(...toSqlValues(parameters)),
  }
}

function isBusy(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('errcode' in error)) return false
  const { errcode } = error
  // Extended result codes (SQLITE_BUSY_SNAPSHOT, …) keep the primary code in the low byte.
  return typeof errcode === 'number' && (errcode & 0xff) === SQLITE_BUSY
}

const delay = (ms: number) => new Promise<void>((done) => setTimeout(done, ms))

/**
 * Kysely's one SQLite connection, except that a statement run outside a transaction that fails with
 * SQLITE_BUSY is retried after a pause, until the busy timeout. Such a statement changed nothing (an
 * autocommit statement is atomic), so running it again is safe. Inside a transaction we hold the write lock
 * since BEGIN IMMEDIATE, so a BUSY there is not a wait, and retrying one statement of it would be wrong.
 */
class PatientConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection
  readonly #busyTimeoutMs: number
  /** Set by the driver between BEGIN IMMEDIATE and COMMIT/ROLLBACK. */
  inTransaction = false

  constructor(inner: DatabaseConnection, busyTimeoutMs: number) {
    this.inner = inner
    this.#busyTimeoutMs = busyTimeoutMs
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (this.inTransaction) return this.inner.executeQuery<R>(query)
    const deadline = Date.now() + this.#busyTimeoutMs
    let pause = 1
    for (;;) {
      try {
        return await this.inner.executeQuery<R>(query)
      } catch (error) {
        if (!isBusy(error) || Date.now() >= deadline) throw error
      }
      await delay(pause)
      pause = Math.min(pause * 2, 50)
    }
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    // Only SELECTs stream, and in WAL mode a reader never waits for a lock.
    return this.inner.streamQuery<R>(query, chunkSize)
  }
}

/**
 * Kysely's SQLite driver, except that transactions start with `BEGIN IMMEDIATE`: every transaction we run
 * writes, and a deferred transaction that later upgrades to a writer fails with SQLITE_BUSY without waiting.
 *
 * Locks are awaited asynchronously rather than in SQLite's busy handler. The handler sleeps inside the
 * synchronous call, freezing the event loop; if the lock holder is another connection in this same process,
 * suspended between the statements of its own transaction (a migration, or `appendEvent` writing an event
 * and its deliveries), it could never finish and the wait would end in SQLITE_BUSY. So the connection runs
 * with busy_timeout 0, and {@link PatientConnection} retries BUSY statements (BEGIN IMMEDIATE included) on
 * timers.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  readonly #busyTimeoutMs: number
  #connection: PatientConnection | undefined

  constructor(database: SqliteDatabase, busyTimeoutMs: number) {
    super({
      database,
      // PatientConnection does the waiting; SQLite itself must not.
      onCreateConnection: async (connection) => {
        await connection.executeQuery(CompiledQuery.raw('pragma busy_timeout = 0'))
      },
    })
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw new RangeError('busyTimeoutMs')
    this.#busyTimeoutMs = busyTimeoutMs
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await super.acquireConnection()
    // SqliteDriver has a single connection, so one wrapper (and its transaction flag) goes with it.
    if (this.#connection?.inner !== connection) {
      this.#connection = new PatientConnection(connection, this.#busyTimeoutMs)
    }
    return this.#connection
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'))
    if (connection instanceof PatientConnection) connection.inTransaction = true
  }

  override async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await super.commitTransaction(connection)
    // Only once COMMIT succeeded: if it failed, Kysely rolls back next, still inside the transaction.
    if (connection instanceof PatientConnection) connection.inTransaction = false
  }

  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await super.rollbackTransaction(connection)
    } finally {
      if (connection instanceof PatientConnection) connection.inTransaction = false
    }
  }
}

/** Kysely's SQLite dialect over `node:sqlite`, with {@link ImmediateSqliteDriver}. */
export class NodeSqliteDialect extends SqliteDialect {
  readonly #database: SqliteDatabase
  readonly #busyTimeoutMs: number

  constructor(database: DatabaseSync, busyTimeoutMs: number = SQLITE_BUSY_TIMEOUT_MS) {
    const adapted = new NodeSqliteDatabase(database)
    super({ database: adapted })
    this.#database = adapted
    this.#busyTimeoutMs = busyTimeoutMs
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#database, this.#busyTimeoutMs)
  }
}

/**
 * Creates the missing directories on the way to `dir` (0700), one level at a time. Not `mkdirSync` with
 * `recursive`: on some file systems (under /proc) it retries forever instead of failing, and `migrate` or
 * `serve` then hang without a word.
 */
function ensureDirectory(dir: string): void {
  const missing: string[] = []
  for (let current = dir; ; current = dirname(current)) {
    try {
      if (!statSync(current).isDirectory())
        throw Object.assign(new Error(`${current} is not a directory`), { code: 'ENOTDIR' })
      break
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'ENOENT')) throw error
      missing.push(current)
      if (dirname(current) === current) break
    }
  }
  for (const path of missing.reverse()) mkdirSync(path, { mode: 0o700 })
}

/** Creates the parent directory (0700) and the file (0600) if missing, and tightens an existing file to 0600. */
function prepareFile(path: string): void {
  ensureDirectory(dirname(path))
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600)
  try {
    if ((fstatSync(fd).mode & 0o077) !== 0) fchmodSync(fd, 0o600)
  } finally {
    closeSync(fd)
  }
}

function tightenSidecars(path: string): void {
  for (const suffix of ['-wal', '-shm']) {
    try {
      chmodSync(`${path}${suffix}`, 0o600)
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'ENOENT')) throw error
    }
  }
}

export interface OpenSqliteOptions {
  /** A file path, or `:memory:` for a private in-memory database (tests). */
  readonly path: string
  /** Clock for migration bookkeeping; defaults to `Date.now`. */
  readonly now?: () => number
}

/**
 * Opens (creating if needed) a SQLite database file with sp-connect's file permissions and pragmas: WAL,
 * `busy_timeout` {@link SQLITE_BUSY_TIMEOUT_MS}, `synchronous=NORMAL` (durable in WAL mode except for the
 * last commits on power loss), foreign keys on. Exposed for tests and tools; the store uses
 * {@link openSqliteStore}.
 */
export function openSqliteDatabase(path: string): DatabaseSync {
  const memory = path === ':memory:'
  const file = memory ? path : resolve(path)
  try {
    if (!memory) prepareFile(file)
  } catch (error) {
    throw unusable(file, error)
  }
  let db: DatabaseSync
  try {
    db = new DatabaseSync(file, { enableForeignKeyConstraints: true })
  } catch (error) {
    throw unusable(file, error)
  }
  try {
    // busy_timeout first: switching to WAL needs a lock another process may briefly hold.
    db.exec(`pragma busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`)
    db.exec('pragma journal_mode = wal')
    db.exec('pragma synchronous = normal')
    db.exec('pragma foreign_keys = on')
    if (!memory) tightenSidecars(file)
  } catch (error) {
    db.close()
    // Busy (another process switching to WAL) is transient; anything else means the file cannot be used here.
    const mapped = toStoreError(error)
    throw mapped instanceof SpConnectError && mapped.code === 'store_unavailable' && isBusy(error)
      ? mapped
      : unusable(file, error)
  }
  return db
}

/** The file at `file` cannot be created, opened or written; the detail names the path and the system's reason. */
function unusable(file: string, error: unknown): SpConnectError {
  const reason =
    error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : String(error)
  return new SpConnectError('database_unusable', {
    cause: error,
    detail: `SQLite database ${file}: ${reason}`.slice(0, 300),
  })
}

/**
 * Opens the SQLite store at `path`. Call `migrate()` on it before use (the CLI's `migrate` command and the
 * server's startup do).
 *
 * @example
 * ```ts
 * const store = await openSqliteStore({ path: './data/sp-connect.db' })
 * await store.migrate()
 * ```
 */
export async function openSqliteStore(options: OpenSqliteOptions): Promise<Store> {
  const db = new Kysely<Database>({ dialect: new NodeSqliteDialect(openSqliteDatabase(options.path)) })
  // Kysely hands the database to its driver lazily, on the first query, and only then closes it on destroy;
  // a trivial query now makes close() release the file even if the store is never used.
  await sql`select 1`.execute(db)
  return createKyselyStore(db, { dialect: 'sqlite', ...(options.now ? { now: options.now } : {}) })
}
