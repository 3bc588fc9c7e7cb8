/**
 * The usage-plan buckets skip PostgreSQL's write-ahead log (`UNLOGGED`), so a reservation's commit waits for no
 * WAL flush: every SP-API call writes this table once, and a synchronous commit per call capped the shared
 * limiter at about a thousand reservations a second (docs/decisions/0015-rate-buckets.md has the figures).
 *
 * What it gives up, on purpose: after a crash of the PostgreSQL server (not a clean restart) the table is empty,
 * and an unlogged table is not replicated, so a promoted standby starts with it empty too. An empty table only
 * means full buckets: right after such an event a seller's burst may be sent at once, which Amazon's own bucket
 * either allows or answers with 429s that the call path backs off from. Learned rates are relearned from the
 * next response's `x-amzn-RateLimit-Limit`. While the server is up, nothing changes: the same statement, the
 * same row lock, the same guarantee that instances together stay within the plan.
 *
 * SQLite has no such notion (it has no WAL shipping to skip, and its per-file durability is the same for all
 * tables): there the migration changes nothing. `SET UNLOGGED` rewrites the table under an exclusive lock; the
 * table holds one small row per recently used (connection, operation), so that is brief.
 */
import { type Kysely, PostgresAdapter, sql } from 'kysely'

/** The migrator hands migrations the database untyped and without its dialect; the adapter tells it. */
function onPostgres(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter
}

export async function up(db: Kysely<unknown>): Promise<void> {
  if (onPostgres(db)) await sql`alter table rate_buckets set unlogged`.execute(db)
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (onPostgres(db)) await sql`alter table rate_buckets set logged`.execute(db)
}
