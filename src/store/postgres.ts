/**
 * The PostgreSQL flavour of the store: `pg`'s pool under Kysely's PostgreSQL dialect, with a driver of our
 * own that makes the pool survive lost connections. Everything PostgreSQL-specific lives here (and in the
 * few dialect branches of kysely-store.ts and migrator.ts); the queries are shared with SQLite.
 *
 * Per connection: `statement_timeout` (a startup parameter, so every pooled connection has it from its first
 * statement), `application_name` `sp-connect` unless the URL names one, TCP keepalive, and BIGINT parsed to
 * JS numbers (a value beyond 2^53 stays a string, which the row mappers in schema.ts reject as corrupt rather
 * than round). The parser is per pool, not pg's global one, so it does not change other users of `pg`.
 *
 * ## Lost connections
 *
 * Every pooled client gets an `error` listener for its whole life (`pg` emits `error` on a checked-out client
 * whose socket dies, and an unheard `error` would crash the process), and the pool gets one for idle clients.
 * A lost connection (a socket error, the server's `57P01`–`57P03` shutdown codes, SQLSTATE class `08`) marks
 * that client broken and starts a new *generation*: every client connected before it is presumed dead too (a
 * restart or failover takes them all) and is discarded when next checked out instead of failing a query.
 *
 * The retry rule: a statement that fails with a lost connection is run again, once, on a fresh connection when
 * - we know it was never sent (its client was already known broken when the statement came to it), or
 * - it is `BEGIN`: a transaction whose session died never began, or
 * - it is a plain read: a SELECT with no locking clause and no WITH (a CTE could hide a write), or
 * - the store marked it repeat-safe ({@link isRepeatSafeStatement}: `acquireLease`, `releaseLease`,
 *   `touchConnection`, `replaceConnectionCiphertexts`), i.e. repeating it after a first attempt that committed
 *   unseen leaves the same rows and answers the same.
 *
 * Nothing is retried inside a transaction (its earlier statements died with the session; the caller sees the
 * error and the transaction is rolled back server-side), and no other write is retried after it may have
 * reached the server: a conditional UPDATE such as `consumeAuthState` or `updateTokens` whose first attempt
 * committed before the connection dropped would, repeated, answer "someone else won". Those calls fail with the
 * connection error and the caller decides. A failure to *connect* is not retried here either: that is a server
 * that cannot be reached, which the next call will try again.
 *
 * ## Connection changes (LISTEN/NOTIFY)
 *
 * The writes that end a wait for another process's refresh send `pg_notify` on
 * {@link CONNECTION_CHANGED_CHANNEL} in the same statement (kysely-store.ts says why there). Each store has one
 * dedicated connection, outside the pool, that runs `LISTEN` on that channel and wakes this handle's
 * `waitForConnectionChange` callers for the connection id in each payload ({@link ConnectionChangeListener}).
 * It is opened with the store; if it drops (or its heartbeat, a `select 1` every 30 s, gets no answer) it is
 * reopened with backoff (100 ms doubling to 10 s), and every waiter is woken once it listens again, since
 * notifications sent meanwhile are lost. While it is down, waits simply run to their timeout: the callers'
 * polling is the fallback, so nothing depends on a notification arriving. `notify: false` turns both sides
 * off (no LISTEN connection, no `pg_notify`), e.g. behind a pooler that cannot keep a session's LISTEN.
 */
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  PostgresDialect,
  type QueryResult,
  sql,
  type TransactionSettings,
} from 'kysely'
import {
  Client,
  type ClientConfig,
  type CustomTypesConfig,
  types as defaultTypes,
  Pool,
  type PoolClient,
} from 'pg'
import {
  CONNECTION_CHANGED_CHANNEL,
  ConnectionChangeWaiters,
  createKyselyStore,
  isRepeatSafeStatement,
} from './kysely-store.ts'
import type { Database } from './schema.ts'
import type { Store } from './store.ts'

/** Connections per pool when the caller does not say. */
export const DEFAULT_POSTGRES_POOL_SIZE = 10
/** Server-side limit on any one statement when the caller does not say. */
export const DEFAULT_POSTGRES_STATEMENT_TIMEOUT_MS = 15_000
/** How long opening one connection may take before the query that needed it fails. */
export const POSTGRES_CONNECT_TIMEOUT_MS = 10_000

/** `pg`'s type OID for BIGINT (int8). */
const INT8_OID = 20

/** Socket-level error codes that mean the connection is gone. */
const LOST_SOCKET_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'ENOTCONN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
])

/** Server shutdown SQLSTATEs: admin_shutdown, crash_shutdown, cannot_connect_now. */
const SHUTDOWN_SQLSTATES: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03'])

/** Where the store reports lost connections; the core `Logger` fits. */
export interface PostgresStoreLogger {
  warn(obj: object, msg?: string): void
}

export interface OpenPostgresOptions {
  /** `postgres://user:password@host:port/database?…`; parameters in the URL win over the options below. */
  readonly url: string
  /** Connections in this instance's pool; default {@link DEFAULT_POSTGRES_POOL_SIZE}. */
  readonly poolSize?: number
  /** `statement_timeout` of every connection, in ms; default {@link DEFAULT_POSTGRES_STATEMENT_TIMEOUT_MS}. */
  readonly statementTimeoutMs?: number
  /** Clock for migration bookkeeping; defaults to `Date.now`. */
  readonly now?: () => number
  /** Receives one warning per lost-connection episode; defaults to one line on stderr. */
  readonly logger?: PostgresStoreLogger
  /**
   * LISTEN/NOTIFY for connection changes (default true): one extra connection per store that listens, and a
   * `pg_notify` in the writes that end a wait. False: neither, and waiters for other instances' refreshes poll.
   */
  readonly notify?: boolean
}

/** First pause before reopening the listening connection; doubles up to the maximum, ± 50 % jitter. */
const LISTEN_RETRY_MIN_MS = 100
const LISTEN_RETRY_MAX_MS = 10_000
/** An idle listening connection runs `select 1` this often, so one that died silently is noticed and replaced. */
const LISTEN_HEARTBEAT_MS = 30_000
/** Client-side bound on the listening connection's statements (LISTEN, the heartbeat). */
const LISTEN_QUERY_TIMEOUT_MS = 10_000

const stderrLogger: PostgresStoreLogger = {
  warn(obj, msg) {
    process.stderr.write(`${JSON.stringify({ level: 'warn', service: 'sp-connect', ...obj, msg })}\n`)
  },
}

/** BIGINT as a JS number when it is one exactly; otherwise the decimal string, which the row mappers refuse. */
function parseBigint(value: string): number | string {
  const n = Number(value)
  return Number.isSafeInteger(n) ? n : value
}

const TYPES: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? parseBigint
      : defaultTypes.getTypeParser(oid, format)) as CustomTypesConfig['getTypeParser'],
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined
  return typeof error.code === 'string' ? error.code : undefined
}

/** True for an error that says the connection itself is gone, rather than that the statement failed. */
export function isConnectionLostError(error: unknown): boolean {
  const code = errorCode(error)
  if (code !== undefined) {
    return LOST_SOCKET_CODES.has(code) || SHUTDOWN_SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)
  }
  // `pg` reports a socket that closed under it without a code.
  return error instanceof Error && /^Connection terminated/.test(error.message)
}

/**
 * True for a statement that may run twice: a SELECT without locking clauses or CTEs, or one the store marked
 * repeat-safe. Must be called synchronously when the driver receives the query (the mark is async-scoped).
 */
function mayRepeat(query: CompiledQuery): boolean {
  if (isRepeatSafeStatement()) return true
  const node = query.query
  if (node.kind !== 'SelectQueryNode') return false
  return node.with === undefined && (node.endModifiers?.length ?? 0) === 0
}

interface ClientState {
  /** The loss generation the client was connected in. */
  readonly generation: number
  broken: boolean
}

async function run<R>(client: PoolClient, query: CompiledQuery): Promise<QueryResult<R>> {
  const result = await client.query({ text: query.sql, values: [...query.parameters] })
  const { command, rowCount } = result
  const writes = command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE'
  return {
    ...(writes ? { numAffectedRows: BigInt(rowCount ?? 0) } : {}),
    rows: (result.rows ?? []) as R[],
  }
}

/** One checked-out connection as Kysely sees it; its client is swapped for a fresh one when a retry needs it. */
class ResilientConnection implements DatabaseConnection {
  readonly #driver: ResilientPostgresDriver
  #client: PoolClient | undefined
  /** Between BEGIN and COMMIT/ROLLBACK: statements are bound to this session and never retried. */
  inTransaction = false

  constructor(driver: ResilientPostgresDriver, client: PoolClient) {
    this.#driver = driver
    this.#client = client
  }

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return this.#execute<R>(query, mayRepeat(query))
  }

  /** BEGIN: repeatable on a fresh connection whatever happened, since a dead session's transaction never began. */
  async begin(text: string): Promise<void> {
    await this.#execute(CompiledQuery.raw(text), true)
    this.inTransaction = true
  }

  async #execute<R>(query: CompiledQuery, repeatable: boolean): Promise<QueryResult<R>> {
    let client = this.#client ?? (await this.#replace())
    // Known broken before we sent anything: outside a transaction, nothing is lost by moving on.
    if (!this.inTransaction && this.#driver.isBroken(client)) client = await this.#replace()
    try {
      return await run<R>(client, query)
    } catch (error) {
      if (!this.#driver.isBroken(client) && !isConnectionLostError(error)) throw error
      this.#driver.noteLoss(client, error)
      if (this.inTransaction || !repeatable) throw error
    }
    const fresh = await this.#replace()
    try {
      return await run<R>(fresh, query)
    } catch (error) {
      // Once only: a second loss is reported, and the client is marked so it is not pooled again.
      if (this.#driver.isBroken(fresh) || isConnectionLostError(error)) this.#driver.noteLoss(fresh, error)
      throw error
    }
  }

  /** Gives the broken client back to be destroyed and checks out one from after the loss. */
  async #replace(): Promise<PoolClient> {
    const old = this.#client
    this.#client = undefined
    if (old !== undefined) old.release(new Error('connection lost'))
    const fresh = await this.#driver.checkout()
    this.#client = fresh
    return fresh
  }

  /** The server rolled back the transaction of a dead session; only a live one needs ROLLBACK. */
  async rollback(): Promise<void> {
    try {
      const client = this.#client
      if (client !== undefined && !this.#driver.isBroken(client))
        await run(client, CompiledQuery.raw('rollback'))
    } finally {
      this.inTransaction = false
    }
  }

  release(): void {
    const client = this.#client
    this.#client = undefined
    if (client === undefined) return
    // A client still in a transaction (or broken) must not go back to the pool for someone else to use.
    const discard = this.inTransaction || this.#driver.isBroken(client)
    client.release(discard ? new Error('connection discarded') : undefined)
  }

  streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('The sp-connect PostgreSQL driver does not stream query results')
  }
}

/**
 * Kysely's PostgreSQL driver rebuilt around {@link ResilientConnection}: lost connections are noticed on
 * every client, older clients are discarded after a loss, and statements are retried by the module's rule.
 */
class ResilientPostgresDriver implements Driver {
  readonly #pool: Pool
  readonly #logger: PostgresStoreLogger
  readonly #clients = new WeakMap<object, ClientState>()
  #generation = 0
  #destroyed: Promise<void> | undefined

  constructor(pool: Pool, logger: PostgresStoreLogger) {
    this.#pool = pool
    this.#logger = logger
    pool.on('connect', (client) => {
      this.#clients.set(client, { generation: this.#generation, broken: false })
      // For the client's whole life: `pg` emits 'error' on a checked-out client too, and unheard it would crash.
      client.on('error', (error) => this.noteLoss(client, error))
    })
    // pg-pool re-emits an idle client's error here after removing the client; our client listener has noted it.
    pool.on('error', () => {})
  }

  async init(): Promise<void> {}

  isBroken(client: object): boolean {
    return this.#clients.get(client)?.broken === true
  }

  /** Marks the client broken and, the first time a client of the current generation is lost, starts a new one. */
  noteLoss(client: object, error: unknown): void {
    const state = this.#clients.get(client)
    if (state === undefined || state.broken) return
    state.broken = true
    if (state.generation !== this.#generation) return
    this.#generation++
    // Code and message only: neither carries the URL, credentials or query parameters.
    const code = errorCode(error)
    this.#logger.warn(
      { event: 'postgres.connection_lost', ...(code === undefined ? {} : { code }) },
      `PostgreSQL connection lost (${error instanceof Error ? error.message : 'unknown error'}); replacing pooled connections`,
    )
  }

  /** A client connected since the last loss and not known broken; older idle ones are destroyed on the way. */
  async checkout(): Promise<PoolClient> {
    // Terminates: every discard removes a client, and new clients belong to the current generation.
    for (;;) {
      const client = await this.#pool.connect()
      const state = this.#clients.get(client)
      if (state === undefined || (!state.broken && state.generation === this.#generation)) return client
      client.release(new Error('connection from before a lost connection'))
    }
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new ResilientConnection(this, await this.checkout())
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    // Kysely validated the settings against its fixed lists, so they are safe to spell into the statement.
    const parts = ['start transaction']
    if (settings.isolationLevel !== undefined) parts.push(`isolation level ${settings.isolationLevel}`)
    if (settings.accessMode !== undefined) parts.push(settings.accessMode)
    await resilient(connection).begin(parts.length > 1 ? parts.join(' ') : 'begin')
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const c = resilient(connection)
    // A lost COMMIT is ambiguous and is never retried; on failure Kysely calls rollbackTransaction next.
    await c.executeQuery(CompiledQuery.raw('commit'))
    c.inTransaction = false
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await resilient(connection).rollback()
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    resilient(connection).release()
  }

  destroy(): Promise<void> {
    this.#destroyed ??= this.#pool.end()
    return this.#destroyed
  }
}

function resilient(connection: DatabaseConnection): ResilientConnection {
  if (!(connection instanceof ResilientConnection)) throw new TypeError('not a connection of this driver')
  return connection
}

/** Kysely's PostgreSQL dialect (compiler, adapter, introspector) with {@link ResilientPostgresDriver}. */
class ResilientPostgresDialect extends PostgresDialect {
  readonly #pool: Pool
  readonly #logger: PostgresStoreLogger

  constructor(pool: Pool, logger: PostgresStoreLogger) {
    super({ pool })
    this.#pool = pool
    this.#logger = logger
  }

  override createDriver(): Driver {
    return new ResilientPostgresDriver(this.#pool, this.#logger)
  }
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`)
  return value
}

/**
 * The store's dedicated LISTEN connection (not from the pool: a pooled session would lose its LISTEN when
 * released, and must not be held forever). Turns notifications on {@link CONNECTION_CHANGED_CHANNEL} into
 * wake-ups of the store's waiters; reopens itself with backoff when lost. See the module comment.
 */
class ConnectionChangeListener {
  readonly #config: ClientConfig
  readonly #waiters: ConnectionChangeWaiters
  readonly #logger: PostgresStoreLogger
  /** The current connection, connected or connecting; undefined while waiting to retry, and once closed. */
  #client: Client | undefined
  /** The pending reconnect or heartbeat. */
  #timer: NodeJS.Timeout | undefined
  #retryMs = LISTEN_RETRY_MIN_MS
  /** A warning was logged for the current outage (one per outage, like the pool's). */
  #down = false
  #closed = false

  constructor(config: ClientConfig, waiters: ConnectionChangeWaiters, logger: PostgresStoreLogger) {
    this.#config = config
    this.#waiters = waiters
    this.#logger = logger
  }

  /** The first attempt; never throws (a failure is logged and retried in the background). */
  start(): Promise<void> {
    return this.#open()
  }

  async #open(): Promise<void> {
    this.#timer = undefined
    if (this.#closed) return
    const client = new Client(this.#config)
    this.#client = client
    // For the client's whole life: an unheard 'error' would crash the process.
    client.on('error', (error) => this.#lost(client, error))
    client.on('end', () => this.#lost(client, new Error('Connection terminated')))
    client.on('notification', (message) => {
      if (message.channel === CONNECTION_CHANGED_CHANNEL && message.payload) {
        this.#waiters.wake(message.payload)
      }
    })
    try {
      await client.connect()
      await client.query(`listen ${CONNECTION_CHANGED_CHANNEL}`)
    } catch (error) {
      this.#lost(client, error)
      return
    }
    if (this.#client !== client) return
    this.#retryMs = LISTEN_RETRY_MIN_MS
    this.#down = false
    // Notifications sent while nobody listened are gone: every waiter re-reads its row now.
    this.#waiters.wakeAll()
    this.#heartbeat(client)
  }

  #heartbeat(client: Client): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      client.query('select 1').then(
        () => {
          if (this.#client === client) this.#heartbeat(client)
        },
        (error: unknown) => this.#lost(client, error),
      )
    }, LISTEN_HEARTBEAT_MS)
    // Never what keeps a process alive.
    this.#timer.unref()
  }

  /** Drops `client` (if it is still the current one) and schedules the next attempt. */
  #lost(client: Client, error: unknown): void {
    if (this.#client !== client) return
    this.#client = undefined
    clearTimeout(this.#timer)
    this.#timer = undefined
    client.end().catch(() => {})
    if (this.#closed) return
    if (!this.#down) {
      this.#down = true
      const code = errorCode(error)
      this.#logger.warn(
        { event: 'postgres.listen_lost', ...(code === undefined ? {} : { code }) },
        `PostgreSQL listening connection lost (${error instanceof Error ? error.message : 'unknown error'}); waits for other instances' refreshes poll until it is back`,
      )
    }
    const delay = this.#retryMs * (0.5 + Math.random())
    this.#retryMs = Math.min(this.#retryMs * 2, LISTEN_RETRY_MAX_MS)
    this.#timer = setTimeout(() => void this.#open(), delay)
    this.#timer.unref()
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    const client = this.#client
    this.#client = undefined
    await client?.end().catch(() => {})
  }
}

/**
 * A Kysely instance on PostgreSQL with the store's pool, driver and connection settings, not yet connected.
 * Exposed for tests and tools; the store uses {@link openPostgresStore}.
 */
export function openPostgresKysely(options: OpenPostgresOptions): Kysely<Database> {
  const pool = new Pool({
    connectionString: options.url,
    max: positiveInteger('poolSize', options.poolSize, DEFAULT_POSTGRES_POOL_SIZE),
    statement_timeout: positiveInteger(
      'statementTimeoutMs',
      options.statementTimeoutMs,
      DEFAULT_POSTGRES_STATEMENT_TIMEOUT_MS,
    ),
    fallback_application_name: 'sp-connect',
    connectionTimeoutMillis: POSTGRES_CONNECT_TIMEOUT_MS,
    keepAlive: true,
    types: TYPES,
  })
  return new Kysely<Database>({ dialect: new ResilientPostgresDialect(pool, options.logger ?? stderrLogger) })
}

/**
 * Opens the PostgreSQL store at `url` and checks that the server answers. Call `migrate()` on it before use
 * (the CLI's `migrate` command and the server's startup do); it is safe from several instances at once.
 *
 * @example
 * ```ts
 * const store = await openPostgresStore({ url: 'postgres://sp@db.internal/sp_connect', poolSize: 20 })
 * await store.migrate()
 * ```
 */
export async function openPostgresStore(options: OpenPostgresOptions): Promise<Store> {
  const db = openPostgresKysely(options)
  try {
    // Fail at open, not at the first request, when the URL or the server is wrong.
    await sql`select 1`.execute(db)
  } catch (error) {
    await db.destroy()
    throw error
  }
  const notify = options.notify ?? true
  const waiters = new ConnectionChangeWaiters()
  const listener = notify
    ? new ConnectionChangeListener(
        {
          connectionString: options.url,
          fallback_application_name: 'sp-connect',
          connectionTimeoutMillis: POSTGRES_CONNECT_TIMEOUT_MS,
          query_timeout: LISTEN_QUERY_TIMEOUT_MS,
          keepAlive: true,
        },
        waiters,
        options.logger ?? stderrLogger,
      )
    : undefined
  // Listening before the store is handed out, so no write made after open goes unnoticed by this handle.
  await listener?.start()
  return createKyselyStore(db, {
    dialect: 'postgres',
    notify,
    waiters,
    ...(listener ? { onClose: () => listener.close() } : {}),
    ...(options.now ? { now: options.now } : {}),
  })
}
