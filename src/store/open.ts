/** Opens the store a configuration names: SQLite for a file path, PostgreSQL for a `postgres://` URL. */
import { openPostgresStore } from './postgres.ts'
import type { PostgresStoreLogger } from './postgres-driver.ts'
import type { Store } from './store.ts'

export type DatabaseConfig =
  | { readonly kind: 'sqlite'; readonly path: string }
  | {
      readonly kind: 'postgres'
      readonly url: string
      /** Connections in this instance's pool. */
      readonly poolSize?: number
      /** Server-side limit on any one statement. */
      readonly statementTimeoutMs?: number
    }

interface OpenStoreOptions {
  /** Where the PostgreSQL store reports lost connections (SQLite logs nothing). */
  readonly logger?: PostgresStoreLogger
}

export async function openStore(database: DatabaseConfig, options: OpenStoreOptions = {}): Promise<Store> {
  if (database.kind === 'sqlite') {
    // Loaded on first use: `node:sqlite` is only needed by SQLite deployments, and importing the package (or
    // any of its subpaths) must not load it, nor print its experimental warning on Node 22.
    const { openSqliteStore } = await import('./sqlite.ts')
    return openSqliteStore({ path: database.path })
  }
  return openPostgresStore({
    url: database.url,
    ...(database.poolSize === undefined ? {} : { poolSize: database.poolSize }),
    ...(database.statementTimeoutMs === undefined ? {} : { statementTimeoutMs: database.statementTimeoutMs }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  })
}
