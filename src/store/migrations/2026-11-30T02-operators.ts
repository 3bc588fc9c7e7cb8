/**
 * Operator console: operator accounts (email + self-describing password hash) and their sessions (keyed by
 * the SHA-256 of the session id, with sliding idle and fixed absolute deadlines). Only Kysely's schema builder
 * is used, so the same statements run on SQLite and PostgreSQL; times are `bigint` milliseconds.
 */
import type { Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('operator_accounts')
    .addColumn('id', 'text', (col) => col.primaryKey())
    .addColumn('email', 'text', (col) => col.notNull())
    .addColumn('password_hash', 'text', (col) => col.notNull())
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .addColumn('last_sign_in_at', 'bigint')
    .addUniqueConstraint('operator_accounts_email_key', ['email'])
    .execute()

  await db.schema
    .createTable('operator_sessions')
    .addColumn('id_hash', 'text', (col) => col.primaryKey())
    .addColumn('operator_id', 'text')
    .addColumn('label', 'text', (col) => col.notNull())
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('last_seen_at', 'bigint', (col) => col.notNull())
    .addColumn('idle_expires_at', 'bigint', (col) => col.notNull())
    .addColumn('absolute_expires_at', 'bigint', (col) => col.notNull())
    .execute()
  // Deleting an operator ends its sessions; the sweeper walks sessions by deadline.
  await db.schema
    .createIndex('operator_sessions_operator_idx')
    .on('operator_sessions')
    .column('operator_id')
    .execute()
  await db.schema
    .createIndex('operator_sessions_idle_idx')
    .on('operator_sessions')
    .column('idle_expires_at')
    .execute()
  await db.schema
    .createIndex('operator_sessions_absolute_idx')
    .on('operator_sessions')
    .column('absolute_expires_at')
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('operator_sessions').execute()
  await db.schema.dropTable('operator_accounts').execute()
}
