/**
 * {@link RefresherStore} over Kysely: the background refresher's candidates (listed, counted, or claimed under
 * a lease in one statement) and the re-authorization reminders. Reminders change neither `version` nor
 * `updated_at`.
 */
import { type Kysely, sql } from 'kysely'
import { clampLimit, type KyselyRoleContext } from './kysely-common.ts'
import type { SqlDialectName } from './migrator.ts'
import { type Database, toConnectionRecord } from './schema.ts'
import type { ConnectionRecord, RefreshCandidateQuery, RefresherStore } from './store.ts'

export class KyselyRefresherStore implements RefresherStore {
  readonly #db: Kysely<Database>
  readonly #dialect: SqlDialectName

  constructor(context: KyselyRoleContext) {
    this.#db = context.db
    this.#dialect = context.dialect
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
}
