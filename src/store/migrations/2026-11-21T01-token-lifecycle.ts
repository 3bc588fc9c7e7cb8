/**
 * Token lifecycle: usage, refresh backoff and re-authorization reminders on connections (with the indexes the
 * background refresher and the reminder job query through), LWA client secrets received through rotation
 * (replacing the reserved `app_secrets` table, which nothing ever wrote), and the webhook outbox.
 * Only Kysely's schema builder is used, so the same statements run on SQLite and PostgreSQL.
 */
import type { Kysely } from 'kysely'

/** Columns added to `connections`, all nullable so existing rows need no backfill. */
const CONNECTION_COLUMNS = ['last_used_at', 'refresh_not_before', 'reauth_reminder_days'] as const

export async function up(db: Kysely<unknown>): Promise<void> {
  // One column per statement: SQLite's ALTER TABLE adds a single column at a time.
  for (const column of CONNECTION_COLUMNS) {
    await db.schema
      .alterTable('connections')
      .addColumn(column, column === 'reauth_reminder_days' ? 'integer' : 'bigint')
      .execute()
  }
  // The background refresher walks active connections by access-token expiry…
  await db.schema
    .createIndex('connections_status_expires_idx')
    .on('connections')
    .columns(['status', 'access_token_expires_at'])
    .execute()
  // …and the reminder job walks them by re-authorization deadline.
  await db.schema
    .createIndex('connections_status_reauthorize_idx')
    .on('connections')
    .columns(['status', 'reauthorize_by'])
    .execute()

  // listEvents can filter by type, newest first.
  await db.schema
    .createIndex('events_type_created_idx')
    .on('events')
    .columns(['type', 'created_at', 'id'])
    .execute()

  // The initial migration reserved this table in another shape and no release ever wrote to it.
  await db.schema.dropTable('app_secrets').execute()
  await db.schema
    .createTable('app_secrets')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('client_id', 'text', (col) => col.notNull())
    .addColumn('secret_ciphertext', 'text', (col) => col.notNull())
    .addColumn('state', 'text', (col) => col.notNull())
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('expires_at', 'bigint')
    .execute()
  await db.schema
    .createIndex('app_secrets_client_created_idx')
    .on('app_secrets')
    .columns(['client_id', 'created_at'])
    .execute()

  // A delivery cannot exist without its event; deleting an event (retention) takes its deliveries along.
  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('event_id', 'text', (col) => col.notNull().references('events.id').onDelete('cascade'))
    .addColumn('url', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint', (col) => col.notNull())
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'bigint')
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .addColumn('delivered_at', 'bigint')
    .execute()
  // Claiming walks pending deliveries by due time.
  await db.schema
    .createIndex('webhook_deliveries_status_due_idx')
    .on('webhook_deliveries')
    .columns(['status', 'next_attempt_at'])
    .execute()
  await db.schema
    .createIndex('webhook_deliveries_event_idx')
    .on('webhook_deliveries')
    .column('event_id')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // Dropping a table drops its indexes too.
  await db.schema.dropTable('webhook_deliveries').execute()

  await db.schema.dropTable('app_secrets').execute()
  await db.schema
    .createTable('app_secrets')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('kind', 'text', (col) => col.notNull())
    .addColumn('ciphertext', 'text', (col) => col.notNull())
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('expires_at', 'bigint')
    .execute()

  await db.schema.dropIndex('events_type_created_idx').execute()
  await db.schema.dropIndex('connections_status_reauthorize_idx').execute()
  await db.schema.dropIndex('connections_status_expires_idx').execute()
  for (const column of [...CONNECTION_COLUMNS].reverse()) {
    await db.schema.alterTable('connections').dropColumn(column).execute()
  }
}
