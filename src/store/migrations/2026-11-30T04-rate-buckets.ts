/**
 * Usage-plan buckets for SP-API calls (issue 10, point 2): one row per (connection, operation) key, shared by
 * every instance on the database (src/store/rate-bucket-store.ts). Times are fractional milliseconds, hence
 * `double precision` rather than the bigint of other tables; no index besides the key (every call writes
 * `tat`, and the sweeper's daily-idle delete is rare). Kysely's schema builder only, for SQLite and PostgreSQL.
 */
import type { Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rate_buckets')
    .addColumn('key', 'text', (col) => col.primaryKey())
    .addColumn('tat', 'double precision', (col) => col.notNull())
    .addColumn('rate', 'double precision')
    .addColumn('last_send_at', 'double precision')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('rate_buckets').execute()
}
