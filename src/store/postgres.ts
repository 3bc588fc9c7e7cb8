/**
 * The PostgreSQL flavour of the store: `pg`'s pool under Kysely's PostgreSQL dialect, with a driver of our
 * own that makes the pool survive lost connections. Everything PostgreSQL-specific lives here, in
 * postgres-driver.ts (lost connections) and postgres-listener.ts (LISTEN/NOTIFY), and in the few dialect
 * branches of the role stores and migrator.ts; the queries are shared with SQLite.
 *
 * Per connection: `statement_timeout` (a startup parameter, so every pooled connection has it from its first
 * statement), `application_name` `sp-connect` unless the URL names one, TCP keepalive, and BIGINT parsed to
 * JS numbers (a value beyond 2^53 stays a string, which the row mappers in schema.ts reject as corrupt rather
 * than round). The parser is per pool, not pg's global one, so it does not change other users of `pg`.
 */
import { Kysely, sql } from 'kysely'
import { type CustomTypesConfig, types as defaultTypes, Pool } from 'pg'
import { ConnectionChangeWaiters } from './connection-changes.ts'
import { createKyselyStore } from './kysely-store.ts'
import { type PostgresStoreLogger, ResilientPostgresDialect } from './postgres-driver.ts'
import { ConnectionChangeListener, LISTEN_QUERY_TIMEOUT_MS } from './postgres-listener.ts'
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

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`)
  return value
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
