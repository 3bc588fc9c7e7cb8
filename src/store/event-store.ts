/**
 * {@link EventStore} over Kysely: the audit log and the webhook outbox. `appendEvent` is the one
 * multi-statement transaction outside migrations (an event and its outbox rows); on SQLite it starts with
 * `BEGIN IMMEDIATE` through the driver in sqlite.ts. `claimDueDeliveries` takes `FOR UPDATE SKIP LOCKED` on
 * PostgreSQL.
 */
import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import { clampLimit, type KyselyRoleContext } from './kysely-common.ts'
import type { SqlDialectName } from './migrator.ts'
import { type Database, toDeliveryRecord, toEventRecord } from './schema.ts'
import type { DeliveryRecord, DeliveryResult, DeliveryStatus, EventRecord, EventStore } from './store.ts'

/** Longest `last_error` kept on a delivery, in characters (code points). */
export const MAX_DELIVERY_ERROR_LENGTH = 300

/** A new delivery id: `dlv_` and 128 random bits, base64url. */
export function newDeliveryId(): string {
  return `dlv_${randomBytes(16).toString('base64url')}`
}

/** Cuts an error text to {@link MAX_DELIVERY_ERROR_LENGTH} code points, never splitting a surrogate pair. */
export function truncateDeliveryError(error: string): string {
  if (error.length <= MAX_DELIVERY_ERROR_LENGTH) return error
  return Array.from(error).slice(0, MAX_DELIVERY_ERROR_LENGTH).join('')
}

export class KyselyEventStore implements EventStore {
  readonly #db: Kysely<Database>
  readonly #dialect: SqlDialectName

  constructor(context: KyselyRoleContext) {
    this.#db = context.db
    this.#dialect = context.dialect
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
