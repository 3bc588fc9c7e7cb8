/**
 * The PostgreSQL driver of the store: Kysely's PostgreSQL dialect over `pg`'s pool, with a driver of our own
 * that makes the pool survive lost connections (postgres.ts builds the pool and opens the store).
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
 */
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  PostgresDialect,
  type QueryResult,
  type TransactionSettings,
} from 'kysely'
import type { Pool, PoolClient } from 'pg'
import { isRepeatSafeStatement } from './kysely-common.ts'

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

/** The `code` of a driver or socket error, if it has a string one. */
export function errorCode(error: unknown): string | undefined {
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
export class ResilientPostgresDialect extends PostgresDialect {
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
