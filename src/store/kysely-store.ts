/**
 * The `Store` contract over Kysely, shared by SQLite and PostgreSQL. Every rule that matters under
 * concurrency is one conditional statement (`UPDATE … WHERE <condition> RETURNING *`, `INSERT … ON CONFLICT
 * DO NOTHING RETURNING *`): the database decides atomically, so no caller ever reads, decides, then writes.
 * Only portable SQL is used here; dialect-specific setup lives in sqlite.ts (and later postgres.ts).
 *
 * `updated_at` moves with `version`, i.e. with every write that changes tokens or status; lease bookkeeping
 * changes neither.
 */
import type { Kysely } from 'kysely'
import type { Region } from '../core/regions.ts'
import { MIGRATIONS } from './migrations/index.ts'
import { type Migration, migrateToLatest, type SqlDialectName } from './migrator.ts'
import {
  type Database,
  toAuthStateRecord,
  toConnectionRecord,
  toConnectSessionRecord,
  toEventRecord,
} from './schema.ts'
import type {
  AuthStateRecord,
  ConnectionFilter,
  ConnectionRecord,
  ConnectSessionRecord,
  EventRecord,
  MigrationOutcome,
  NewConnection,
  Reauthorization,
  RefreshFailure,
  Store,
  TokenUpdate,
} from './store.ts'

/** Page size of `listConnections` and `listEvents` when the caller gives none. */
export const DEFAULT_LIST_LIMIT = 100
/** Largest page `listConnections` and `listEvents` return, whatever the caller asks. */
export const MAX_LIST_LIMIT = 1000

export interface KyselyStoreOptions {
  readonly dialect: SqlDialectName
  /** Defaults to every sp-connect migration; tests may pass their own list. */
  readonly migrations?: readonly Migration[]
  /** Clock for migration bookkeeping; defaults to `Date.now`. */
  readonly now?: () => number
}

/** Clamps a requested page size into [1, {@link MAX_LIST_LIMIT}]; missing or non-numeric means the default. */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || Number.isNaN(limit)) return DEFAULT_LIST_LIMIT
  return Math.min(Math.max(Math.trunc(limit), 1), MAX_LIST_LIMIT)
}

class KyselyStore implements Store {
  readonly #db: Kysely<Database>
  readonly #dialect: SqlDialectName
  readonly #migrations: readonly Migration[]
  readonly #now: () => number
  #closed: Promise<void> | undefined

  constructor(db: Kysely<Database>, options: KyselyStoreOptions) {
    this.#db = db
    this.#dialect = options.dialect
    this.#migrations = options.migrations ?? MIGRATIONS
    this.#now = options.now ?? Date.now
  }

  migrate(): Promise<MigrationOutcome[]> {
    return migrateToLatest(this.#db, this.#migrations, { dialect: this.#dialect, now: this.#now })
  }

  close(): Promise<void> {
    this.#closed ??= this.#db.destroy()
    return this.#closed
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
    const row = await this.#db
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
        version: eb('version', '+', 1),
        updated_at: update.now,
      }))
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst()
    return row && toConnectionRecord(row)
  }

  async updateTokens(
    id: string,
    expectedVersion: number,
    update: TokenUpdate,
  ): Promise<ConnectionRecord | undefined> {
    const row = await this.#db
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
      .returningAll()
      .executeTakeFirst()
    return row && toConnectionRecord(row)
  }

  /**
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
    const row = await this.#db
      .updateTable('connections')
      .set((eb) => ({
        last_refresh_error: failure.error,
        failure_count: eb('failure_count', '+', 1),
        ...statusChange,
        version: eb('version', '+', 1),
        updated_at: failure.now,
      }))
      .where('id', '=', id)
      .where('version', '=', expectedVersion)
      .where('status', '<>', 'disconnected')
      .returningAll()
      .executeTakeFirst()
    return row && toConnectionRecord(row)
  }

  /** Disconnected rows have nothing to refresh, so no one can lease them. */
  async acquireLease(
    id: string,
    owner: string,
    until: number,
    now: number,
  ): Promise<ConnectionRecord | undefined> {
    const row = await this.#db
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
      .executeTakeFirst()
    return row && toConnectionRecord(row)
  }

  async releaseLease(id: string, owner: string): Promise<void> {
    await this.#db
      .updateTable('connections')
      .set({ lease_owner: null, lease_until: null })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .execute()
  }

  async disconnectConnection(id: string, now: number): Promise<ConnectionRecord | undefined> {
    const row = await this.#db
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
      .returningAll()
      .executeTakeFirst()
    return row && toConnectionRecord(row)
  }

  async appendEvent(event: EventRecord): Promise<void> {
    await this.#db
      .insertInto('events')
      .values({
        id: event.id,
        type: event.type,
        connection_id: event.connectionId,
        data: JSON.stringify(event.data),
        created_at: event.createdAt,
      })
      .execute()
  }

  /** Newest first (created_at, then id, descending). */
  async listEvents(filter: { connectionId?: string; limit?: number } = {}): Promise<EventRecord[]> {
    let query = this.#db.selectFrom('events').selectAll()
    if (filter.connectionId !== undefined) query = query.where('connection_id', '=', filter.connectionId)
    const rows = await query
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(clampLimit(filter.limit))
      .execute()
    return rows.map(toEventRecord)
  }
}

/**
 * Builds the store over a Kysely instance the caller configured for `dialect`. The store owns `db` from now
 * on: `close()` destroys it.
 */
export function createKyselyStore(db: Kysely<Database>, options: KyselyStoreOptions): Store {
  return new KyselyStore(db, options)
}
