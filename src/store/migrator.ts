/**
 * Applies the ordered schema migrations, each in its own transaction, recording every applied name with the
 * time it was applied. Safe when several processes migrate at once: each migration's transaction first takes
 * the database's write lock (SQLite: `BEGIN IMMEDIATE` from our driver; PostgreSQL: a transaction-scoped
 * advisory lock, taken with the pool's statement timeout lifted for the transaction), then checks the
 * bookkeeping table, so the second process sees the migration as applied.
 */
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Database } from './schema.ts'
import { MIGRATIONS_TABLE } from './schema.ts'
import type { MigrationOutcome } from './store.ts'

/** The SQL dialects the shared Kysely store runs on. */
export type SqlDialectName = 'sqlite' | 'postgres'

/**
 * One schema change. `name` is a sortable timestamp (`2026-11-21T00-initial`): migrations run in the order
 * listed, which must also be the names' order. Migrations use only Kysely's schema builder so the same module
 * runs on SQLite and PostgreSQL; they see the database untyped because the schema they change is in flux.
 */
export interface Migration {
  readonly name: string
  up(db: Kysely<unknown>): Promise<void>
  down(db: Kysely<unknown>): Promise<void>
}

/** A {@link MigrationOutcome} that also carries the error of a failed migration, for the CLI to report. */
export interface MigrationResult extends MigrationOutcome {
  readonly error?: unknown
}

export interface MigratorOptions {
  readonly dialect: SqlDialectName
  /** Milliseconds since the epoch, recorded as each migration's `applied_at`. */
  readonly now: () => number
}

/** An arbitrary constant naming sp-connect's migration lock among the advisory locks of a PostgreSQL database. */
const POSTGRES_MIGRATION_LOCK_KEY = 0x5370_436e

/** Checks that names are unique and listed in ascending order; a mis-ordered list is a programming error. */
export function checkMigrationOrder(migrations: readonly Migration[]): void {
  for (let i = 1; i < migrations.length; i++) {
    const previous = migrations[i - 1]
    const current = migrations[i]
    if (previous !== undefined && current !== undefined && !(previous.name < current.name)) {
      throw new Error(`Migrations must have unique names in ascending order: ${current.name}`)
    }
  }
}

async function lockForMigration(trx: Transaction<Database>, dialect: SqlDialectName): Promise<void> {
  // SQLite: the transaction began with BEGIN IMMEDIATE, so it already holds the single write lock.
  if (dialect === 'postgres') {
    // The pool's statement_timeout guards request statements; a migration's DDL may rightly take longer, and
    // waiting here for another instance's migration is expected rather than a stuck query. LOCAL: it ends with
    // this transaction, so the pooled connection goes back with its configured limit.
    await sql`set local statement_timeout = 0`.execute(trx)
    await sql`select pg_advisory_xact_lock(${POSTGRES_MIGRATION_LOCK_KEY})`.execute(trx)
  }
  await trx.schema
    .createTable(MIGRATIONS_TABLE)
    .ifNotExists()
    .addColumn('name', 'text', (col) => col.primaryKey())
    .addColumn('applied_at', 'bigint', (col) => col.notNull())
    .execute()
}

/** Migrations see the database untyped; the typed handle is the same object. */
function untyped(trx: Transaction<Database>): Kysely<unknown> {
  return trx as unknown as Kysely<unknown>
}

/**
 * Applies every migration not yet applied, in order. Stops at the first failure (whose transaction rolls back)
 * and reports it as `failed`; migrations after it are not attempted and not listed.
 */
export async function migrateToLatest(
  db: Kysely<Database>,
  migrations: readonly Migration[],
  options: MigratorOptions,
): Promise<MigrationResult[]> {
  checkMigrationOrder(migrations)
  const results: MigrationResult[] = []
  for (const migration of migrations) {
    try {
      const applied = await db.transaction().execute(async (trx) => {
        await lockForMigration(trx, options.dialect)
        const done = await trx
          .selectFrom(MIGRATIONS_TABLE)
          .select('name')
          .where('name', '=', migration.name)
          .executeTakeFirst()
        if (done !== undefined) return false
        await migration.up(untyped(trx))
        await trx
          .insertInto(MIGRATIONS_TABLE)
          .values({ name: migration.name, applied_at: options.now() })
          .execute()
        return true
      })
      results.push({ name: migration.name, status: applied ? 'applied' : 'already_applied' })
    } catch (error) {
      results.push({ name: migration.name, status: 'failed', error })
      break
    }
  }
  return results
}

/**
 * Reverts the last `steps` applied migrations (default: all), newest first, each in its own transaction.
 * Returns the names reverted. For tests and for operators undoing an upgrade; the service never calls it.
 */
export async function migrateDown(
  db: Kysely<Database>,
  migrations: readonly Migration[],
  options: Pick<MigratorOptions, 'dialect'> & { readonly steps?: number },
): Promise<string[]> {
  checkMigrationOrder(migrations)
  const reverted: string[] = []
  const steps = options.steps ?? migrations.length
  for (const migration of [...migrations].reverse()) {
    if (reverted.length >= steps) break
    const undone = await db.transaction().execute(async (trx) => {
      await lockForMigration(trx, options.dialect)
      const done = await trx
        .selectFrom(MIGRATIONS_TABLE)
        .select('name')
        .where('name', '=', migration.name)
        .executeTakeFirst()
      if (done === undefined) return false
      await migration.down(untyped(trx))
      await trx.deleteFrom(MIGRATIONS_TABLE).where('name', '=', migration.name).execute()
      return true
    })
    if (undone) reverted.push(migration.name)
  }
  return reverted
}
