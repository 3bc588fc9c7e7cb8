/**
 * An index for the sweeper's "consumed more than an hour ago" delete on auth_states (expired states and
 * connect sessions already have `expires_at` indexes), so sweeping walks the consumed rows only instead of
 * scanning a table a flood may have filled. Partial indexes exist on both SQLite and PostgreSQL.
 */
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('auth_states_consumed_idx')
    .on('auth_states')
    .column('consumed_at')
    .where(sql.ref('consumed_at'), 'is not', null)
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('auth_states_consumed_idx').execute()
}
