/**
 * The store: the `Store` contract, the shared Kysely implementation, the SQLite and PostgreSQL openers, and
 * migrations.
 * Concrete stores are for `cli/` and `server/`; `core/` only ever sees the `Store` interface.
 */

export { MAX_DELIVERY_ERROR_LENGTH } from './event-store.ts'
export { clampLimit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from './kysely-common.ts'
export { createKyselyStore, type KyselyStoreOptions } from './kysely-store.ts'
export { MIGRATIONS } from './migrations/index.ts'
export {
  checkMigrationOrder,
  type Migration,
  type MigrationResult,
  type MigratorOptions,
  migrateDown,
  migrateToLatest,
  type SqlDialectName,
} from './migrator.ts'
export {
  DEFAULT_POSTGRES_POOL_SIZE,
  DEFAULT_POSTGRES_STATEMENT_TIMEOUT_MS,
  type OpenPostgresOptions,
  openPostgresKysely,
  openPostgresStore,
  POSTGRES_CONNECT_TIMEOUT_MS,
} from './postgres.ts'
export { isConnectionLostError, type PostgresStoreLogger } from './postgres-driver.ts'
export type { Database } from './schema.ts'
export { MIGRATIONS_TABLE } from './schema.ts'
export {
  NodeSqliteDialect,
  type OpenSqliteOptions,
  openSqliteDatabase,
  openSqliteStore,
  SQLITE_BUSY_TIMEOUT_MS,
} from './sqlite.ts'
export type * from './store.ts'
export { APP_SECRET_STATES, AUTH_FLOWS, CONNECTION_STATUSES, DELIVERY_STATUSES } from './store.ts'
