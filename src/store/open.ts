/** Opens the store a configuration names. PostgreSQL arrives with its own implementation of the same contract. */
import { openSqliteStore } from './index.ts'
import type { Store } from './store.ts'

export type DatabaseConfig =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly url: string }

export async function openStore(database: DatabaseConfig): Promise<Store> {
  if (database.kind === 'sqlite') return openSqliteStore({ path: database.path })
  throw new Error('PostgreSQL is not supported yet: set DATABASE_URL to a SQLite file path.')
}
