/**
 * The store: the `Store` contract, the shared Kysely implementation, the SQLite and PostgreSQL openers, and
 * migrations.
 * Concrete stores are for `cli/` and `server/`; `core/` only ever sees the `Store` interface.
 */

export {
  clampLimit,
  createKyselyStore,
  DEFAULT_LIST_LIMIT,
  type KyselyStoreOptions,
  MAX_DELIVERY_ERROR_LENGTH,
  MAX_LIST_LIMIT,
} from './kysely-store.ts'
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
  isConnectionLostError,
  type OpenPostgresOptions,
  openPostgresKysely,
  openPostgresStore,
  POSTGRES_CONNECT_TIMEOUT_MS,
  type PostgresStoreLogger,
} from './postgres.ts'
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
