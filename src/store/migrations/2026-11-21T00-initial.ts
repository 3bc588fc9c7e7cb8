/**
 * The first schema: connections, authorization states, connect sessions, the event log, and (reserved)
 * encrypted application secrets. Times are `bigint` milliseconds, which SQLite stores as INTEGER; there are no
 * booleans. Only Kysely's schema builder is used, so the same statements run on SQLite and PostgreSQL.
 */
import type { Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('connections')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('selling_partner_id', 'text', (col) => col.notNull())
    .addColumn('region', 'text', (col) => col.notNull())
    .addColumn('account_type', 'text', (col) => col.notNull())
    .addColumn('tenant_id', 'text')
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('status_reason', 'text')
    .addColumn('refresh_token_ciphertext', 'text')
    .addColumn('access_token_ciphertext', 'text')
    .addColumn('access_token_expires_at', 'bigint')
    .addColumn('authorized_at', 'bigint', (col) => col.notNull())
    .addColumn('reauthorize_by', 'bigint', (col) => col.notNull())
    .addColumn('last_refresh_at', 'bigint')
    .addColumn('last_refresh_error', 'text')
    .addColumn('failure_count', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'bigint')
    .addColumn('version', 'bigint', (col) => col.notNull().defaultTo(1))
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    // One connection per selling partner and region: racing inserts resolve through ON CONFLICT on this.
    .addUniqueConstraint('connections_selling_partner_region_key', ['selling_partner_id', 'region'])
    .execute()
  // Listing pages through (created_at, id), optionally filtered by tenant or status.
  await db.schema
    .createIndex('connections_created_idx')
    .on('connections')
    .columns(['created_at', 'id'])
    .execute()
  await db.schema
    .createIndex('connections_tenant_created_idx')
    .on('connections')
    .columns(['tenant_id', 'created_at', 'id'])
    .execute()
  await db.schema
    .createIndex('connections_status_created_idx')
    .on('connections')
    .columns(['status', 'created_at', 'id'])
    .execute()

  await db.schema
    .createTable('auth_states')
    .addColumn('state_hash', 'text', (col) => col.primaryKey())
    .addColumn('flow', 'text', (col) => col.notNull())
    .addColumn('region', 'text', (col) => col.notNull())
    .addColumn('account_type', 'text', (col) => col.notNull())
    .addColumn('tenant_id', 'text')
    .addColumn('return_to', 'text')
    .addColumn('browser_binding_hash', 'text', (col) => col.notNull())
    .addColumn('selling_partner_id', 'text')
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('expires_at', 'bigint', (col) => col.notNull())
    .addColumn('consumed_at', 'bigint')
    .execute()
  await db.schema.createIndex('auth_states_expires_idx').on('auth_states').column('expires_at').execute()

  await db.schema
    .createTable('connect_sessions')
    .addColumn('token_hash', 'text', (col) => col.primaryKey())
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('region', 'text', (col) => col.notNull())
    .addColumn('account_type', 'text', (col) => col.notNull())
    .addColumn('marketplace', 'text')
    .addColumn('return_to', 'text')
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('expires_at', 'bigint', (col) => col.notNull())
    .execute()
  await db.schema
    .createIndex('connect_sessions_expires_idx')
    .on('connect_sessions')
    .column('expires_at')
    .execute()

  // No foreign key to connections: events outlive what they describe and may be written before the row is.
  await db.schema
    .createTable('events')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('type', 'text', (col) => col.notNull())
    .addColumn('connection_id', 'text')
    .addColumn('data', 'text', (col) => col.notNull())
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .execute()
  await db.schema
    .createIndex('events_connection_created_idx')
    .on('events')
    .columns(['connection_id', 'created_at'])
    .execute()
  await db.schema.createIndex('events_created_idx').on('events').columns(['created_at', 'id']).execute()

  await db.schema
    .createTable('app_secrets')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('kind', 'text', (col) => col.notNull())
    .addColumn('ciphertext', 'text', (col) => col.notNull())
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('expires_at', 'bigint')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // Dropping a table drops its indexes too.
  await db.schema.dropTable('app_secrets').execute()
  await db.schema.dropTable('events').execute()
  await db.schema.dropTable('connect_sessions').execute()
  await db.schema.dropTable('auth_states').execute()
  await db.schema.dropTable('connections').execute()
}
