/**
 * {@link ConnectionStore} over Kysely: connections, their fenced token writes and refresh leases. Every rule
 * that matters under concurrency is one conditional statement (`UPDATE … WHERE <condition> RETURNING *`,
 * `INSERT … ON CONFLICT DO NOTHING RETURNING *`). `updated_at` moves with `version`, i.e. with every write that
 * changes tokens or status; lease bookkeeping and usage change neither.
 *
 * ## Waiting for a connection to change
 *
 * `waitForConnectionChange` parks a caller (the token manager waiting for another process's refresh) in this
 * handle's {@link ConnectionChangeWaiters}. The writes a waiter cares about (`updateTokens`,
 * `recordRefreshFailure`, `reauthorizeConnection`, `disconnectConnection`, `releaseLease`) go through
 * one helper, `#changeConnection`: when the UPDATE changed a row, the waiters of that row on this handle
 * are woken at once, on both dialects. On PostgreSQL the same statement also sends a NOTIFY on
 * {@link CONNECTION_CHANGED_CHANNEL} with the connection id as payload, which postgres-listener.ts's listening
 * connection turns into wake-ups on every other handle and instance:
 *
 *     WITH changed AS (UPDATE connections SET … WHERE … RETURNING *)
 *     SELECT changed.*, pg_notify($channel, changed.id) FROM changed
 *
 * In the statement rather than right after it, because then a notification exists exactly when the write
 * does: `pg_notify` runs once per row the UPDATE returned (none when its conditions failed), PostgreSQL
 * queues it in the statement's transaction and delivers it only at commit (a failed or rolled-back statement
 * sends nothing), and there is no second round trip that could fail after the write committed (leaving the
 * waiters to their timeout) or cost a statement. The statement keeps its retry class: a CTE is never repeated
 * as a "plain read", and `releaseLease` stays repeat-safe (a repetition that changes nothing notifies
 * nothing).
 */
import { type Kysely, type QueryCreator, sql, type UpdateQueryBuilder } from 'kysely'
import type { Region } from '../domain/regions.ts'
import { CONNECTION_CHANGED_CHANNEL, type ConnectionChangeWaiters } from './connection-changes.ts'
import { clampLimit, type KyselyRoleContext, repeatSafe } from './kysely-common.ts'
import { type ConnectionRow, type Database, toConnectionRecord } from './schema.ts'
import type {
  ConnectionFilter,
  ConnectionRecord,
  ConnectionStatus,
  ConnectionStore,
  NewConnection,
  Reauthorization,
  RefreshFailure,
  TokenUpdate,
} from './store.ts'

/** An `UPDATE connections … RETURNING *`, built on the query creator it is given (the database, or a CTE's). */
type ConnectionUpdate = (
  qc: QueryCreator<Database>,
) => UpdateQueryBuilder<Database, 'connections', 'connections', ConnectionRow>

interface KyselyConnectionStoreOptions {
  /** Send a NOTIFY on {@link CONNECTION_CHANGED_CHANNEL} from the writes that wake waiters (PostgreSQL only). */
  readonly notify: boolean
  /** This handle's waiters. */
  readonly waiters: ConnectionChangeWaiters
}

export class KyselyConnectionStore implements ConnectionStore {
  readonly #db: Kysely<Database>
  readonly #notify: boolean
  readonly #waiters: ConnectionChangeWaiters

  constructor(context: KyselyRoleContext, options: KyselyConnectionStoreOptions) {
    if (options.notify && context.dialect !== 'postgres') throw new TypeError('notify needs PostgreSQL')
    this.#db = context.db
    this.#notify = options.notify
    this.#waiters = options.waiters
  }

  waitForConnectionChange(id: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.#waiters.wait(id, timeoutMs, signal)
  }

  /**
   * Runs a connection UPDATE that waiters care about and wakes the waiters of the row it changed: on this
   * handle directly, elsewhere through a NOTIFY in the same statement (PostgreSQL; see the module comment).
   * Returns the changed row, or undefined when the UPDATE matched nothing (and then nobody is woken).
   */
  async #changeConnection(update: ConnectionUpdate): Promise<ConnectionRow | undefined> {
    const row = this.#notify
      ? await this.#db
          .with('changed', (qc) => update(qc))
          .selectFrom('changed')
          .selectAll()
          .select(
            sql<string>`pg_notify(${CONNECTION_CHANGED_CHANNEL}, ${sql.ref('changed.id')})`.as('notified'),
          )
          .executeTakeFirst()
      : await update(this.#db).executeTakeFirst()
    if (row !== undefined) this.#waiters.wake(row.id)
    return row
  }

  async getConnection(id: string): Promise<ConnectionRecord | undefined> {
    const row = await this.#db.selectFrom('connections').selectAll().where('id', '=', id).executeTakeFirst()
    return row && toConnectionRecord(row)
  }

  async findConnection(sellingPartnerId: string, region: Region): Promise<ConnectionRecord | undefined> {
    const row = await this.#db
      .selectFrom('connections')
      .selectAll()
      .where('selling_partner_id', '=', sellingPartnerId)
      .where('region', '=', region)
      .executeTakeFirst()
    return row && toConnectionRecord(row)
  }

  /** Ordered by (created_at, id). An `after` id that does not exist yields an empty page. */
  async listConnections(filter: ConnectionFilter = {}): Promise<ConnectionRecord[]> {
    let query = this.#db.selectFrom('connections').selectAll()
    if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId)
    if (filter.status !== undefined) query = query.where('status', '=', filter.status)
    if (filter.after !== undefined) {
      const cursor = await this.#db
        .selectFrom('connections')
        .select(['created_at', 'id'])
        .where('id', '=', filter.after)
        .executeTakeFirst()
      if (cursor === undefined) return []
      query = query.where((eb) =>
        eb.or([
          eb('created_at', '>', cursor.created_at),
          eb.and([eb('created_at', '=', cursor.created_at), eb('id', '>', cursor.id)]),
        ]),
      )
    }
    const rows = await query.orderBy('created_at').orderBy('id').limit(clampLimit(filter.limit)).execute()
    return rows.map(toConnectionRecord)
  }

  async insertConnection(connection: NewConnection): Promise<ConnectionRecord | undefined> {
    const row = await this.#db
      .insertInto('connections')
      .values({
        id: connection.id,
        selling_partner_id: connection.sellingPartnerId,
        region: connection.region,
        account_type: connection.accountType,
        tenant_id: connection.tenantId,
        status: 'active',
        status_reason: null,
        refresh_token_ciphertext: connection.refreshTokenCiphertext,
        access_token_ciphertext: connection.accessTokenCiphertext,
        access_token_expires_at: connection.accessTokenExpiresAt,
        authorized_at: connection.authorizedAt,
        reauthorize_by: connection.reauthorizeBy,
        last_refresh_at: null,
        last_refresh_error: null,
        failure_count: 0,
        lease_owner: null,
        lease_until: null,
        last_used_at: null,
        refresh_not_before: null,
        reauth_reminder_days: null,
        account_fingerprint: connection.accountFingerprint ?? null,
        version: 1,
        created_at: connection.now,
        updated_at: connection.now,
      })
      // Only the (selling partner, region) key is a "someone else got there first"; an id collision is a bug
      // and should fail loudly rather than look like a lost race.
      .onConflict((oc) => oc.columns(['selling_partner_id', 'region']).doNothing())
      .returningAll()
      .executeTakeFirst()
    return row && toConnectionRecord(row)
  }

  async reauthorizeConnection(id: string, update: Reauthorization): Promise<ConnectionRecord | undefined> {
    const row = await this.#changeConnection((qc) =>
      qc
        .updateTable('connections')
        .set((eb) => ({
          account_type: update.accountType,
          tenant_id: update.tenantId,
          status: 'active',
          status_reason: null,
          refresh_token_ciphertext: update.refreshTokenCiphertext,
          access_token_ciphertext: update.accessTokenCiphertext,
          access_token_expires_at: update.accessTokenExpiresAt,
          authorized_at: update.authorizedAt,
          reauthorize_by: update.reauthorizeBy,
          last_refresh_error: null,
          failure_count: 0,
          lease_owner: null,
          lease_until: null,
          // A new authorization starts a new 365-day clock (so new reminders) and ends any failure backoff.
          refresh_not_before: null,
          reauth_reminder_days: null,
          account_fingerprint: update.accountFingerprint ?? eb.ref('account_fingerprint'),
          version: eb('version', '+', 1),
          updated_at: update.now,
        }))
        .where('id', '=', id)
        // A connection never moves between tenants: the write lands only on the tenant the caller checked.
        .where((eb) =>
          update.tenantId === null ? eb('tenant_id', 'is', null) : eb('tenant_id', '=', update.tenantId),
        )
        .returningAll(),
    )
    return row && toConnectionRecord(row)
  }

  async updateTokens(
    id: string,
    expectedVersion: number,
    update: TokenUpdate,
  ): Promise<ConnectionRecord | undefined> {
    const row = await this.#changeConnection((qc) =>
      qc
        .updateTable('connections')
        .set((eb) => ({
          access_token_ciphertext: update.accessTokenCiphertext,
          access_token_expires_at: update.accessTokenExpiresAt,
          ...(update.refreshTokenCiphertext === undefined
            ? {}
            : { refresh_token_ciphertext: update.refreshTokenCiphertext }),
          // Status stays as it is: a refresh never reactivates a connection, only a re-authorization does.
          last_refresh_at: update.now,
          last_refresh_error: null,
          failure_count: 0,
          refresh_not_before: null,
          version: eb('version', '+', 1),
          updated_at: update.now,
        }))
        .where('id', '=', id)
        .where('version', '=', expectedVersion)
        .where('status', '<>', 'disconnected')
        .where((eb) =>
          eb.or([
            eb('access_token_expires_at', 'is', null),
            eb('access_token_expires_at', '<=', update.accessTokenExpiresAt),
          ]),
        )
        .returningAll(),
    )
    return row && toConnectionRecord(row)
  }

  /**
   * Sets `refresh_not_before` only when the failure carries `notBefore`.
   * Also refuses disconnected rows, so a late failure can never move a connection out of `disconnected`.
   * Moving a row *to* `disconnected` here drops its tokens and lease, as {@link disconnectConnection} does.
   */
  async recordRefreshFailure(
    id: string,
    expectedVersion: number,
    failure: RefreshFailure,
  ): Promise<ConnectionRecord | undefined> {
    const statusChange =
      failure.status === undefined
        ? {}
        : failure.status === 'disconnected'
          ? {
              status: failure.status,
              status_reason: failure.error,
              refresh_token_ciphertext: null,
              access_token_ciphertext: null,
              access_token_expires_at: null,
              lease_owner: null,
              lease_until: null,
            }
          : { status: failure.status, status_reason: failure.error }
    const row = await this.#changeConnection((qc) =>
      qc
        .updateTable('connections')
        .set((eb) => ({
          last_refresh_error: failure.error,
          failure_count: eb('failure_count', '+', 1),
          // Without a notBefore the previous backoff (if any) stands.
          ...(failure.notBefore === undefined ? {} : { refresh_not_before: failure.notBefore }),
          ...statusChange,
          version: eb('version', '+', 1),
          updated_at: failure.now,
        }))
        .where('id', '=', id)
        .where('version', '=', expectedVersion)
        .where('status', '<>', 'disconnected')
        .returningAll(),
    )
    return row && toConnectionRecord(row)
  }

  /**
   * Disconnected rows have nothing to refresh, so no one can lease them. Repeat-safe: once `owner` holds the
   * lease, taking it again matches (`lease_owner = owner`), writes the same values and returns the row.
   */
  async acquireLease(
    id: string,
    owner: string,
    until: number,
    now: number,
  ): Promise<ConnectionRecord | undefined> {
    const row = await repeatSafe(() =>
      this.#db
        .updateTable('connections')
        .set({ lease_owner: owner, lease_until: until })
        .where('id', '=', id)
        .where('status', '<>', 'disconnected')
        .where((eb) =>
          eb.or([
            eb('lease_owner', 'is', null),
            eb('lease_until', 'is', null),
            eb('lease_until', '<=', now),
            eb('lease_owner', '=', owner),
          ]),
        )
        .returningAll()
        .executeTakeFirst(),
    )
    return row && toConnectionRecord(row)
  }

  /**
   * Repeat-safe: a second release finds the lease already free (or someone else's) and changes nothing (so it
   * wakes and notifies nobody). A release that did free the lease wakes the waiters: one may take it now.
   */
  async releaseLease(id: string, owner: string): Promise<void> {
    await repeatSafe(() =>
      this.#changeConnection((qc) =>
        qc
          .updateTable('connections')
          .set({ lease_owner: null, lease_until: null })
          .where('id', '=', id)
          .where('lease_owner', '=', owner)
          .returningAll(),
      ),
    )
  }

  async disconnectConnection(id: string, now: number): Promise<ConnectionRecord | undefined> {
    const row = await this.#changeConnection((qc) =>
      qc
        .updateTable('connections')
        .set((eb) => ({
          status: 'disconnected',
          status_reason: null,
          refresh_token_ciphertext: null,
          access_token_ciphertext: null,
          access_token_expires_at: null,
          lease_owner: null,
          lease_until: null,
          version: eb('version', '+', 1),
          updated_at: now,
        }))
        .where('id', '=', id)
        .returningAll(),
    )
    return row && toConnectionRecord(row)
  }

  /**
   * Never moves `last_used_at` backwards, so touches that land out of order keep the latest. Repeat-safe: a
   * second touch at the same `now` matches nothing.
   */
  async touchConnection(id: string, now: number): Promise<void> {
    await repeatSafe(() =>
      this.#db
        .updateTable('connections')
        .set({ last_used_at: now })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', now)]))
        .execute(),
    )
  }

  async countConnectionsByStatus(): Promise<Partial<Record<ConnectionStatus, number>>> {
    const rows = await this.#db
      .selectFrom('connections')
      .select((eb) => ['status', eb.fn.countAll().as('n')])
      .groupBy('status')
      .execute()
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]))
  }
}
