/**
 * The `Store` contract over Kysely, shared by SQLite and PostgreSQL. Every rule that matters under
 * concurrency is one conditional statement (`UPDATE … WHERE <condition> RETURNING *`, `INSERT … ON CONFLICT
 * DO NOTHING RETURNING *`): the database decides atomically, so no caller ever reads, decides, then writes.
 * Only portable SQL is used here; dialect-specific setup lives in sqlite.ts and postgres.ts. The dialect
 * branches in the queries are `FOR UPDATE SKIP LOCKED` in {@link KyselyStore.claimDueDeliveries} and the
 * claim of refresh candidates on PostgreSQL, and the NOTIFY that PostgreSQL stores (`notify`) add to the writes
 * waiters care about (see "Waiting for a connection to change" below).
 *
 * `updated_at` moves with `version`, i.e. with every write that changes tokens or status; lease bookkeeping,
 * usage, reminders and re-encryption change neither.
 *
 * The one multi-statement transaction outside migrations is `appendEvent` (an event and its outbox rows);
 * on SQLite it starts with `BEGIN IMMEDIATE` through the driver in sqlite.ts.
 *
 * Some statements are marked {@link repeatSafe}: a driver that loses its connection mid-statement (PostgreSQL,
 * see postgres.ts) may run them again, because repeating them after a first attempt that did commit leaves the
 * same rows and returns the caller the same answer. Reads need no mark. Every other write is *not* safe to
 * repeat after an ambiguous failure: `consumeAuthState` would answer false for the state it just consumed,
 * `updateTokens`/`recordRefreshFailure` would miss their own version bump, `markReauthorizationReminder` would
 * report a recorded reminder as already sent, `claimDueDeliveries` would claim a second batch, and so on.
 *
 * ## Waiting for a connection to change
 *
 * `waitForConnectionChange` parks a caller (the token manager waiting for another process's refresh) in this
 * handle's {@link ConnectionChangeWaiters}. The writes a waiter cares about (`updateTokens`,
 * `recordRefreshFailure`, `reauthorizeConnection`, `disconnectConnection`, `releaseLease`) go through
 * one helper, `#changeConnection`: when the UPDATE changed a row, the waiters of that row on this handle
 * are woken at once, on both dialects. On PostgreSQL the same statement also sends a NOTIFY on
 * {@link CONNECTION_CHANGED_CHANNEL} with the connection id as payload, which postgres.ts's listening connection
 * turns into wake-ups on every other handle and instance:
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
import { AsyncLocalStorage } from 'node:async_hooks'
import { randomBytes } from 'node:crypto'
import { type Kysely, type QueryCreator, sql, type UpdateQueryBuilder } from 'kysely'
import type { Region } from '../core/regions.ts'
import { type ApiKeyStore, KyselyApiKeyStore } from './api-key-store.ts'
import { withStoreErrors } from './error-boundary.ts'
import { KyselyLoginRequestStore, type LoginRequestStore } from './login-request-store.ts'
import { MIGRATIONS } from './migrations/index.ts'
import { type Migration, migrateToLatest, type SqlDialectName } from './migrator.ts'
import { KyselyOperatorStore, type OperatorStore } from './operator-store.ts'
import {
  type ConnectionRow,
  type Database,
  MIGRATIONS_TABLE,
  toAppSecretRecord,
  toAuthStateRecord,
  toConnectionCiphertexts,
  toConnectionRecord,
  toConnectSessionRecord,
  toDeliveryRecord,
  toEventRecord,
} from './schema.ts'
import type {
  AppSecretRecord,
  AppSecretState,
  AuthStateRecord,
  ConnectionCiphertexts,
  ConnectionFilter,
  ConnectionRecord,
  ConnectionStatus,
  ConnectSessionRecord,
  DeliveryRecord,
  DeliveryResult,
  DeliveryStatus,
  EventRecord,
  MigrationOutcome,
  NewConnection,
  Reauthorization,
  RefreshCandidateQuery,
  RefreshFailure,
  Store,
  TokenUpdate,
} from './store.ts'

/** Page size of the `list…` methods when the caller gives none. */
export const DEFAULT_LIST_LIMIT = 100
/** Largest page a `list…` or `claim…` method returns, whatever the caller asks. */
export const MAX_LIST_LIMIT = 1000
/** Longest `last_error` kept on a delivery, in characters (code points). */
export const MAX_DELIVERY_ERROR_LENGTH = 300

/** The PostgreSQL NOTIFY channel of connection changes; the payload is the connection id. */
export const CONNECTION_CHANGED_CHANNEL = 'sp_connect_connection_changed'

/** Longest wait setTimeout can express (2^31 − 1 ms); longer waits are cut to it (a spurious wake-up). */
const MAX_WAIT_MS = 2 ** 31 - 1

export interface KyselyStoreOptions {
  readonly dialect: SqlDialectName
  /** Defaults to every sp-connect migration; tests may pass their own list. */
  readonly migrations?: readonly Migration[]
  /** Clock for migration bookkeeping; defaults to `Date.now`. */
  readonly now?: () => number
  /**
   * PostgreSQL only: send a NOTIFY on {@link CONNECTION_CHANGED_CHANNEL} from the writes that wake waiters.
   * Off by default (SQLite has no NOTIFY).
   */
  readonly notify?: boolean
  /**
   * This handle's waiters, when something else wakes them too (postgres.ts's listening connection). The store
   * makes its own otherwise.
   */
  readonly waiters?: ConnectionChangeWaiters
  /** Runs first in `close()`, before the database is destroyed (postgres.ts stops its listening connection). */
  readonly onClose?: () => Promise<void>
}

/**
 * The callers of one store handle waiting in `waitForConnectionChange`, by connection id. Waking a connection
 * resolves every wait on it; each wait also ends at its own timeout or abort. After `close()` every wait
 * resolves at once (a spurious wake-up: the caller's next statement reports the closed store).
 */
export class ConnectionChangeWaiters {
  readonly #byId = new Map<string, Set<() => void>>()
  #closed = false

  /** See `Store.waitForConnectionChange`. */
  wait(id: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.#closed) return Promise.resolve()
    // A NaN, negative or huge timeout is not the caller's way to fail: it becomes 0 or the longest wait.
    const ms = Number.isNaN(timeoutMs) ? 0 : Math.min(Math.max(timeoutMs, 0), MAX_WAIT_MS)
    return new Promise<void>((resolve, reject) => {
      let waiters = this.#byId.get(id)
      if (waiters === undefined) {
        waiters = new Set()
        this.#byId.set(id, waiters)
      }
      const set = waiters
      const settle = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        set.delete(wake)
        if (set.size === 0 && this.#byId.get(id) === set) this.#byId.delete(id)
      }
      const wake = () => {
        settle()
        resolve()
      }
      const onAbort = () => {
        settle()
        reject(signal?.reason)
      }
      const timer = setTimeout(wake, ms)
      set.add(wake)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Wakes every wait on the connection. */
  wake(id: string): void {
    const waiters = this.#byId.get(id)
    if (waiters === undefined) return
    // Each wake removes itself from the set, so iterate over a copy.
    for (const wake of [...waiters]) wake()
  }

  /** Wakes every wait (after missed notifications: each waiter re-reads its row). */
  wakeAll(): void {
    for (const waiters of [...this.#byId.values()]) for (const wake of [...waiters]) wake()
  }

  /** Wakes every wait, and makes later waits resolve at once. */
  close(): void {
    this.#closed = true
    this.wakeAll()
  }
}

/** An `UPDATE connections … RETURNING *`, built on the query creator it is given (the database, or a CTE's). */
type ConnectionUpdate = (
  qc: QueryCreator<Database>,
) => UpdateQueryBuilder<Database, 'connections', 'connections', ConnectionRow>

const repeatSafeScope = new AsyncLocalStorage<true>()

/**
 * Runs one store statement marked safe to repeat after an ambiguous connection failure (see the module
 * comment). Only a statement whose repetition, after a first attempt that may have committed unseen, leaves
 * the same rows and gives the same answer qualifies.
 */
function repeatSafe<T>(statement: () => Promise<T>): Promise<T> {
  return repeatSafeScope.run(true, statement)
}

/**
 * True while a driver executes a statement the store marked {@link repeatSafe}. Read synchronously when the
 * driver is handed the query (the mark follows the async context of the store call).
 */
export function isRepeatSafeStatement(): boolean {
  return repeatSafeScope.getStore() === true
}

/** Clamps a requested page size into [1, {@link MAX_LIST_LIMIT}]; missing or non-numeric means the default. */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || Number.isNaN(limit)) return DEFAULT_LIST_LIMIT
  return Math.min(Math.max(Math.trunc(limit), 1), MAX_LIST_LIMIT)
}

/** A new delivery id: `dlv_` and 128 random bits, base64url. */
export function newDeliveryId(): string {
  return `dlv_${randomBytes(16).toString('base64url')}`
}

/** Cuts an error text to {@link MAX_DELIVERY_ERROR_LENGTH} code points, never splitting a surrogate pair. */
export function truncateDeliveryError(error: string): string {
  if (error.length <= MAX_DELIVERY_ERROR_LENGTH) return error
  return Array.from(error).slice(0, MAX_DELIVERY_ERROR_LENGTH).join('')
}

class KyselyStore implements Store {
  readonly apiKeys: ApiKeyStore
  readonly loginRequests: LoginRequestStore
  readonly operators: OperatorStore
  readonly #db: Kysely<Database>
  readonly #dialect: SqlDialectName
  readonly #migrations: readonly Migration[]
  readonly #now: () => number
  readonly #notify: boolean
  readonly #waiters: ConnectionChangeWaiters
  readonly #onClose: (() => Promise<void>) | undefined
  #closed: Promise<void> | undefined

  constructor(db: Kysely<Database>, options: KyselyStoreOptions) {
    this.#db = db
    this.apiKeys = new KyselyApiKeyStore(db)
    this.loginRequests = new KyselyLoginRequestStore(db)
    this.operators = new KyselyOperatorStore(db)
    this.#dialect = options.dialect
    this.#migrations = options.migrations ?? MIGRATIONS
    this.#now = options.now ?? Date.now
    if (options.notify === true && options.dialect !== 'postgres') {
      throw new TypeError('notify needs PostgreSQL')
    }
    this.#notify = options.notify === true
    this.#waiters = options.waiters ?? new ConnectionChangeWaiters()
    this.#onClose = options.onClose
  }

  migrate(): Promise<MigrationOutcome[]> {
    return migrateToLatest(this.#db, this.#migrations, { dialect: this.#dialect, now: this.#now })
  }

  async pendingMigrations(): Promise<string[]> {
    const tables = await this.#db.introspection.getTables()
    if (!tables.some((t) => t.name === MIGRATIONS_TABLE)) return this.#migrations.map((m) => m.name)
    const applied = new Set(
      (await this.#db.selectFrom(MIGRATIONS_TABLE).select('name').execute()).map((row) => row.name),
    )
    return this.#migrations.map((m) => m.name).filter((name) => !applied.has(name))
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#waiters.close()
      try {
        await this.#onClose?.()
      } finally {
        await this.#db.destroy()
      }
    })()
    return this.#closed
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

  async insertAuthState(state: AuthStateRecord): Promise<void> {
    await this.#db
      .insertInto('auth_states')
      .values({
        state_hash: state.stateHash,
        flow: state.flow,
        region: state.region,
        account_type: state.accountType,
        tenant_id: state.tenantId,
        return_to: state.returnTo,
        browser_binding_hash: state.browserBindingHash,
        selling_partner_id: state.sellingPartnerId,
        connection_id: state.connectionId,
        created_at: state.createdAt,
        expires_at: state.expiresAt,
        consumed_at: state.consumedAt,
      })
      .execute()
  }

  async getAuthState(stateHash: string): Promise<AuthStateRecord | undefined> {
    const row = await this.#db
      .selectFrom('auth_states')
      .selectAll()
      .where('state_hash', '=', stateHash)
      .executeTakeFirst()
    return row && toAuthStateRecord(row)
  }

  async consumeAuthState(stateHash: string, now: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('auth_states')
      .set({ consumed_at: now })
      .where('state_hash', '=', stateHash)
      .where('consumed_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst()
    return result.numUpdatedRows === 1n
  }

  async deleteExpiredAuthStates(before: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('auth_states')
      .where('expires_at', '<', before)
      .executeTakeFirst()
    return Number(result.numDeletedRows)
  }

  async deleteConsumedAuthStates(before: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('auth_states')
      .where('consumed_at', 'is not', null)
      .where('consumed_at', '<', before)
      .executeTakeFirst()
    return Number(result.numDeletedRows)
  }

  async insertConnectSession(session: ConnectSessionRecord): Promise<void> {
    await this.#db
      .insertInto('connect_sessions')
      .values({
        token_hash: session.tokenHash,
        tenant_id: session.tenantId,
        region: session.region,
        account_type: session.accountType,
        marketplace: session.marketplace,
        return_to: session.returnTo,
        connection_id: session.connectionId,
        created_at: session.createdAt,
        expires_at: session.expiresAt,
      })
      .execute()
  }

  async getConnectSession(tokenHash: string): Promise<ConnectSessionRecord | undefined> {
    const row = await this.#db
      .selectFrom('connect_sessions')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst()
    return row && toConnectSessionRecord(row)
  }

  async deleteExpiredConnectSessions(before: number): Promise<number> {
    const result = await this.#db
      .deleteFrom('connect_sessions')
      .where('expires_at', '<', before)
      .executeTakeFirst()
    return Number(result.numDeletedRows)
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
   * A URL listed twice gets one delivery. Deliveries are due at once (`next_attempt_at` = the event's time).
   * Without URLs the event insert is a single statement and needs no transaction.
   */
  async appendEvent(event: EventRecord, webhookUrls: readonly string[] = []): Promise<void> {
    const eventRow = {
      id: event.id,
      type: event.type,
      connection_id: event.connectionId,
      data: JSON.stringify(event.data),
      created_at: event.createdAt,
    }
    const urls = [...new Set(webhookUrls)]
    if (urls.length === 0) {
      await this.#db.insertInto('events').values(eventRow).execute()
      return
    }
    const deliveries = urls.map((url) => ({
      id: newDeliveryId(),
      event_id: event.id,
      url,
      status: 'pending',
      attempts: 0,
      next_attempt_at: event.createdAt,
      last_status_code: null,
      last_error: null,
      lease_owner: null,
      lease_until: null,
      created_at: event.createdAt,
      updated_at: event.createdAt,
      delivered_at: null,
    }))
    await this.#db.transaction().execute(async (trx) => {
      await trx.insertInto('events').values(eventRow).execute()
      await trx.insertInto('webhook_deliveries').values(deliveries).execute()
    })
  }

  /** Newest first (created_at, then id, descending). */
  async listEvents(
    filter: { connectionId?: string; type?: string; limit?: number } = {},
  ): Promise<EventRecord[]> {
    let query = this.#db.selectFrom('events').selectAll()
    if (filter.connectionId !== undefined) query = query.where('connection_id', '=', filter.connectionId)
    if (filter.type !== undefined) query = query.where('type', '=', filter.type)
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(clampLimit(filter.limit))
      .execute()
    return rows.map(toEventRecord)
  }

  async getEvent(id: string): Promise<EventRecord | undefined> {
    const row = await this.#db.selectFrom('events').selectAll().where('id', '=', id).executeTakeFirst()
    return row && toEventRecord(row)
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

  /**
   * "Used since" is inclusive (`last_used_at >= warmUsedSince`), "expiring before" exclusive. A connection is
   * tokenless when it has no access token or no expiry for it.
   */
  async listRefreshCandidates(query: RefreshCandidateQuery): Promise<ConnectionRecord[]> {
    const rows = await this.#refreshCandidates(query).selectAll().execute()
    return rows.map(toConnectionRecord)
  }

  /**
   * The candidates of `listRefreshCandidates`, leased in the same statement. On PostgreSQL the selection skips
   * rows another transaction has locked, so instances claiming at once divide the work instead of queueing.
   */
  async claimRefreshCandidates(
    query: RefreshCandidateQuery,
    owner: string,
    leaseUntil: number,
  ): Promise<ConnectionRecord[]> {
    const rows = await this.#db
      .updateTable('connections')
      .set({ lease_owner: owner, lease_until: leaseUntil })
      .where('id', 'in', () => {
        const due = this.#refreshCandidates(query).select('id')
        return this.#dialect === 'postgres' ? due.forUpdate().skipLocked() : due
      })
      .returningAll()
      .execute()
    // RETURNING has no defined order: restore the candidates' order (tokenless first, soonest expiry, id).
    const rank = (r: ConnectionRecord) =>
      r.accessTokenCiphertext === null || r.accessTokenExpiresAt === null ? -Infinity : r.accessTokenExpiresAt
    return rows
      .map(toConnectionRecord)
      .sort((a, b) => rank(a) - rank(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  async refreshBacklog(
    query: Omit<RefreshCandidateQuery, 'limit'>,
  ): Promise<{ due: number; earliestWarmExpiry: number | null }> {
    const row = await this.#refreshCandidates({ ...query, limit: 1 })
      .clearOrderBy()
      .clearLimit()
      .select((eb) => [
        eb.fn.countAll().as('due'),
        eb.fn
          .min(
            eb
              .case()
              .when('last_used_at', '>=', query.warmUsedSince)
              .then(eb.ref('access_token_expires_at'))
              .else(null)
              .end(),
          )
          .as('earliest'),
      ])
      .executeTakeFirstOrThrow()
    return { due: Number(row.due), earliestWarmExpiry: row.earliest === null ? null : Number(row.earliest) }
  }

  async countConnectionsByStatus(): Promise<Partial<Record<ConnectionStatus, number>>> {
    const rows = await this.#db
      .selectFrom('connections')
      .select((eb) => ['status', eb.fn.countAll().as('n')])
      .groupBy('status')
      .execute()
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]))
  }

  /** Active connections due for a refresh (see the contract), in the order they should be refreshed. */
  #refreshCandidates(query: RefreshCandidateQuery) {
    return (
      this.#db
        .selectFrom('connections')
        .where('status', '=', 'active')
        .where('refresh_token_ciphertext', 'is not', null)
        .where((eb) =>
          eb.or([eb('refresh_not_before', 'is', null), eb('refresh_not_before', '<=', query.now)]),
        )
        .where((eb) =>
          eb.or([
            eb('lease_owner', 'is', null),
            eb('lease_until', 'is', null),
            eb('lease_until', '<=', query.now),
          ]),
        )
        .where((eb) =>
          eb.or([
            eb.and([
              eb('last_used_at', '>=', query.warmUsedSince),
              eb.or([
                eb('access_token_ciphertext', 'is', null),
                eb('access_token_expires_at', 'is', null),
                eb('access_token_expires_at', '<', query.warmExpiringBefore),
              ]),
            ]),
            eb(eb.fn.coalesce('last_refresh_at', 'authorized_at'), '<=', query.idleCheckedBefore),
          ]),
        )
        // The order of connections_refresh_order_idx: a tokenless row (no expiry) sorts as expiring at 0, i.e.
        // first, on both databases; the index lets a claim stop after its batch.
        .orderBy(sql`coalesce(access_token_expires_at, 0)`)
        .orderBy('id')
        .limit(clampLimit(query.limit))
    )
  }

  /** Ordered by `reauthorize_by`, then id. */
  async listConnectionsReauthorizeBefore(before: number, limit: number): Promise<ConnectionRecord[]> {
    const rows = await this.#db
      .selectFrom('connections')
      .selectAll()
      .where('status', '=', 'active')
      .where('reauthorize_by', '<=', before)
      .orderBy('reauthorize_by')
      .orderBy('id')
      .limit(clampLimit(limit))
      .execute()
    return rows.map(toConnectionRecord)
  }

  /**
   * One conditional UPDATE, so two reminder jobs racing on the same threshold send it once. A reminder for an
   * authorization that has since been replaced (another `authorized_at`) is refused.
   */
  async markReauthorizationReminder(id: string, authorizedAt: number, days: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('connections')
      .set({ reauth_reminder_days: days })
      .where('id', '=', id)
      .where('authorized_at', '=', authorizedAt)
      .where((eb) => eb.or([eb('reauth_reminder_days', 'is', null), eb('reauth_reminder_days', '>', days)]))
      .executeTakeFirst()
    return result.numUpdatedRows === 1n
  }

  /** Every connection, disconnected ones included (their ciphertexts are null). */
  async listCiphertextKeyIds(): Promise<string[]> {
    // The key id sits between the first and second dot of `v1.<key id>.<iv>.<tag>.<body>`; the LIKE keeps only
    // values that have a second dot, so SQLite's substr never sees a negative length.
    const keyId = (column: string) =>
      this.#dialect === 'postgres'
        ? sql<string>`split_part(${sql.ref(column)}, '.', 2)`
        : sql<string>`substr(${sql.ref(column)}, 4, instr(substr(${sql.ref(column)}, 4), '.') - 1)`
    const result = await sql<{ key_id: string }>`
      select key_id from (
        select ${keyId('refresh_token_ciphertext')} as key_id from connections
          where refresh_token_ciphertext like 'v1._%.%'
        union
        select ${keyId('access_token_ciphertext')} as key_id from connections
          where access_token_ciphertext like 'v1._%.%'
        union
        select ${keyId('secret_ciphertext')} as key_id from app_secrets where secret_ciphertext like 'v1._%.%'
      ) as stored_key_ids
      where key_id <> ''`.execute(this.#db)
    // Sorted here: the two databases collate differently.
    return [...new Set(result.rows.map((row) => row.key_id))].sort()
  }

  async listConnectionCiphertexts(
    afterId: string | undefined,
    limit: number,
  ): Promise<ConnectionCiphertexts[]> {
    let query = this.#db
      .selectFrom('connections')
      .select(['id', 'version', 'refresh_token_ciphertext', 'access_token_ciphertext'])
    if (afterId !== undefined) query = query.where('id', '>', afterId)
    const rows = await query.orderBy('id').limit(clampLimit(limit)).execute()
    return rows.map(toConnectionCiphertexts)
  }

  /**
   * Repeat-safe: the write does not bump the version, so a repetition after a first attempt that committed
   * still matches, writes the same ciphertexts and answers true (or false if a refresh has since moved the
   * version, which is also what a late first attempt would have answered).
   */
  async replaceConnectionCiphertexts(
    id: string,
    expectedVersion: number,
    ciphertexts: { refreshTokenCiphertext: string | null; accessTokenCiphertext: string | null },
  ): Promise<boolean> {
    const result = await repeatSafe(() =>
      this.#db
        .updateTable('connections')
        .set({
          refresh_token_ciphertext: ciphertexts.refreshTokenCiphertext,
          access_token_ciphertext: ciphertexts.accessTokenCiphertext,
        })
        .where('id', '=', id)
        .where('version', '=', expectedVersion)
        .executeTakeFirst(),
    )
    return result.numUpdatedRows === 1n
  }

  async insertAppSecret(secret: AppSecretRecord): Promise<void> {
    await this.#db
      .insertInto('app_secrets')
      .values({
        id: secret.id,
        client_id: secret.clientId,
        secret_ciphertext: secret.secretCiphertext,
        state: secret.state,
        created_at: secret.createdAt,
        expires_at: secret.expiresAt,
      })
      .execute()
  }

  /** Newest first (created_at, then id, descending). */
  async listAppSecrets(clientId: string): Promise<AppSecretRecord[]> {
    const rows = await this.#db
      .selectFrom('app_secrets')
      .selectAll()
      .where('client_id', '=', clientId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute()
    return rows.map(toAppSecretRecord)
  }

  /** Changes only the fields given; an unknown id or no changes at all is a no-op. */
  async updateAppSecret(
    id: string,
    changes: { state?: AppSecretState; expiresAt?: number | null; secretCiphertext?: string },
  ): Promise<void> {
    const set = {
      ...(changes.state === undefined ? {} : { state: changes.state }),
      ...(changes.expiresAt === undefined ? {} : { expires_at: changes.expiresAt }),
      ...(changes.secretCiphertext === undefined ? {} : { secret_ciphertext: changes.secretCiphertext }),
    }
    if (Object.keys(set).length === 0) return
    await this.#db.updateTable('app_secrets').set(set).where('id', '=', id).execute()
  }

  /**
   * One `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING *`. SQLite runs a statement under its single write
   * lock, on one snapshot, so choosing and leasing are one step and two claimers never overlap.
   *
   * PostgreSQL: the subquery must take `FOR UPDATE SKIP LOCKED` (dialect-conditional; SQLite has no such
   * clause). Under READ COMMITTED, a row another claimer is leasing is then skipped rather than waited for, and
   * one it already leased is re-checked against the subquery's conditions and dropped. The outer WHERE
   * deliberately does not repeat those conditions: on SQLite that steers the planner from the primary key to
   * scanning every due row through the (status, next_attempt_at) index.
   */
  async claimDueDeliveries(
    now: number,
    owner: string,
    leaseUntil: number,
    limit: number,
  ): Promise<DeliveryRecord[]> {
    const rows = await this.#db
      .updateTable('webhook_deliveries')
      .set({ lease_owner: owner, lease_until: leaseUntil })
      .where('id', 'in', (eb) => {
        const due = eb
          .selectFrom('webhook_deliveries')
          .select('id')
          .where('status', '=', 'pending')
          .where('next_attempt_at', '<=', now)
          .where((inner) =>
            inner.or([
              inner('lease_owner', 'is', null),
              inner('lease_until', 'is', null),
              inner('lease_until', '<=', now),
            ]),
          )
          .orderBy('next_attempt_at')
          .orderBy('id')
          .limit(clampLimit(limit))
        return this.#dialect === 'postgres' ? due.forUpdate().skipLocked() : due
      })
      .returningAll()
      .execute()
    // RETURNING has no defined order.
    return rows
      .map(toDeliveryRecord)
      .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /**
   * "Still holds" means `lease_owner` is still `owner`, even if the lease ran out: nobody else claimed it, so
   * the attempt's outcome is the latest word. `updated_at` moves to the result's time.
   */
  async completeDelivery(
    id: string,
    owner: string,
    result: DeliveryResult,
  ): Promise<DeliveryRecord | undefined> {
    const outcome = result.ok
      ? { status: 'delivered', delivered_at: result.now, last_error: null }
      : {
          ...(result.nextAttemptAt === null
            ? { status: 'failed' }
            : { status: 'pending', next_attempt_at: result.nextAttemptAt }),
          last_error: truncateDeliveryError(result.error),
        }
    const row = await this.#db
      .updateTable('webhook_deliveries')
      .set((eb) => ({
        ...outcome,
        attempts: eb('attempts', '+', 1),
        last_status_code: result.statusCode,
        lease_owner: null,
        lease_until: null,
        updated_at: result.now,
      }))
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where('lease_owner', '=', owner)
      .returningAll()
      .executeTakeFirst()
    return row && toDeliveryRecord(row)
  }

  async pendingDeliveryStats(): Promise<{ pending: number; oldestCreatedAt: number | null }> {
    const row = await this.#db
      .selectFrom('webhook_deliveries')
      .where('status', '=', 'pending')
      .select((eb) => [eb.fn.countAll().as('pending'), eb.fn.min('created_at').as('oldest')])
      .executeTakeFirstOrThrow()
    return { pending: Number(row.pending), oldestCreatedAt: row.oldest === null ? null : Number(row.oldest) }
  }

  /** Newest first (created_at, then id, descending). */
  async listDeliveries(
    filter: { eventId?: string; status?: DeliveryStatus; limit?: number } = {},
  ): Promise<DeliveryRecord[]> {
    let query = this.#db.selectFrom('webhook_deliveries').selectAll()
    if (filter.eventId !== undefined) query = query.where('event_id', '=', filter.eventId)
    if (filter.status !== undefined) query = query.where('status', '=', filter.status)
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(clampLimit(filter.limit))
      .execute()
    return rows.map(toDeliveryRecord)
  }
}

/**
 * Builds the store over a Kysely instance the caller configured for `dialect`. The store owns `db` from now
 * on: `close()` destroys it.
 */
export function createKyselyStore(db: Kysely<Database>, options: KyselyStoreOptions): Store {
  // Driver failures leave the store as `store_unavailable` (error-boundary.ts), for every caller alike.
  return withStoreErrors(new KyselyStore(db, options))
}
