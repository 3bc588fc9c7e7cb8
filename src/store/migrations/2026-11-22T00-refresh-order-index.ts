/**
 * An index in the refresher's claim order (tokenless first, then soonest expiry, then id) over active rows, so
 * claiming the next batch walks the index and stops after the batch instead of sorting every due row: with
 * 100,000 due connections on PostgreSQL each claim took about a quarter of a second (docs/benchmarks.md §6).
 * Expression and partial indexes exist on both SQLite and PostgreSQL.
 */
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('connections_refresh_order_idx')
    .on('connections')
    .expression(sql`coalesce(access_token_expires_at, 0), id`)
    .where(sql.ref('status'), '=', 'active')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('connections_refresh_order_idx').execute()
}
