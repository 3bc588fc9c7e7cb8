/**
 * Who owns a seller account (issue 7): pending Login-URI requests that wait for the app's signed-in user, the
 * connection a reconnect link and its state are for, and a fingerprint of the seller account so a
 * re-authorization can prove it is the same account.
 */
import type { Kysely } from 'kysely'

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('login_requests')
    // SHA-256 of the opaque id the app's sign-in page receives; the id itself is never stored.
    .addColumn('id_hash', 'text', (col) => col.primaryKey())
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('selling_partner_id', 'text', (col) => col.notNull())
    .addColumn('region', 'text', (col) => col.notNull())
    .addColumn('amazon_callback_uri', 'text', (col) => col.notNull())
    .addColumn('amazon_state', 'text', (col) => col.notNull())
    .addColumn('draft', 'integer', (col) => col.notNull())
    .addColumn('browser_binding_hash', 'text', (col) => col.notNull())
    .addColumn('tenant_id', 'text')
    .addColumn('tenant_name', 'text')
    .addColumn('approved_by', 'text')
    // SHA-256 of the one-time token in the approval's redirect_url (the confirmation page's address).
    .addColumn('continue_hash', 'text')
    // SHA-256 of the confirmation page's CSRF token.
    .addColumn('csrf_hash', 'text')
    .addColumn('created_at', 'bigint', (col) => col.notNull())
    .addColumn('expires_at', 'bigint', (col) => col.notNull())
    .addColumn('updated_at', 'bigint', (col) => col.notNull())
    .execute()
  await db.schema
    .createIndex('login_requests_continue_idx')
    .on('login_requests')
    .column('continue_hash')
    .unique()
    .execute()
  await db.schema
    .createIndex('login_requests_expires_idx')
    .on('login_requests')
    .column('expires_at')
    .execute()

  await db.schema.alterTable('connections').addColumn('account_fingerprint', 'text').execute()
  await db.schema.alterTable('connect_sessions').addColumn('connection_id', 'text').execute()
  await db.schema.alterTable('auth_states').addColumn('connection_id', 'text').execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('auth_states').dropColumn('connection_id').execute()
  await db.schema.alterTable('connect_sessions').dropColumn('connection_id').execute()
  await db.schema.alterTable('connections').dropColumn('account_fingerprint').execute()
  await db.schema.dropTable('login_requests').execute()
}
