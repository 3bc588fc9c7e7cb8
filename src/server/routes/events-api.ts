/**
 * The audit log and the webhook outbox, read-only:
 *
 * - `GET /v1/events[?connection_id&type&limit]` → `{data: [event]}`, newest first
 * - `GET /v1/events/:id` → `{...event, deliveries: [delivery]}`
 * - `GET /v1/webhook-deliveries[?status&event_id&limit]` → `{data: [delivery]}`
 *
 * Events look like webhook bodies (`id, type, connection_id, data, created_at`). Deliveries show their state,
 * never their lease.
 *
 * All need the `read` scope. A tenant-scoped key sees only events of connections it can see: it must name one
 * (`connection_id` for events, `event_id` for deliveries; another tenant's is a 404 like a missing one), and
 * app-wide events (no connection) are for all-tenant keys only.
 */
import { type Context, Hono } from 'hono'
import type { z } from 'zod'
import { listDeliveriesQuerySchema, listEventsQuerySchema } from '../../api-schemas/events.ts'
import { canSeeTenant, requireScope } from '../../core/access/principal.ts'
import { isEventId } from '../../core/ids.ts'
import { SpConnectError } from '../../domain/errors.ts'
import type { DeliveryRecord, EventRecord } from '../../store/store.ts'
import { loadVisibleConnection, recordAccessDenied } from '../access.ts'
import type { ServerEnv } from '../context.ts'
import { eventJson } from '../serialize.ts'

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())

/** The API's view of one webhook delivery (the lease columns stay internal). */
export function deliveryJson(d: DeliveryRecord) {
  return {
    id: d.id,
    event_id: d.eventId,
    url: d.url,
    status: d.status,
    attempts: d.attempts,
    // Only meaningful while pending.
    next_attempt_at: d.status === 'pending' ? iso(d.nextAttemptAt) : null,
    last_status_code: d.lastStatusCode,
    last_error: d.lastError,
    delivered_at: iso(d.deliveredAt),
    created_at: iso(d.createdAt),
    updated_at: iso(d.updatedAt),
  }
}

export type DeliveryJson = ReturnType<typeof deliveryJson>

/** Mounted under /v1 behind the API-key check (see api.ts). */
export const eventsApiRoutes = new Hono<ServerEnv>()

eventsApiRoutes.get('/events', async (c) => {
  const { principal } = c.var
  requireScope(principal, 'read')
  const q = parseQuery(listEventsQuerySchema, c.req.query())
  // An all-tenant key may ask about any id (an unknown one has no events); a tenant-scoped key only about a
  // connection it can see.
  if (principal.tenants !== null) {
    if (q.connection_id === undefined) {
      throw new SpConnectError('forbidden', { detail: 'a tenant-scoped key must name a connection_id' })
    }
    await loadVisibleConnection(c, q.connection_id)
  }
  const events = await c.var.runtime.store.listEvents({
    ...(q.connection_id ? { connectionId: q.connection_id } : {}),
    ...(q.type ? { type: q.type } : {}),
    limit: q.limit,
  })
  return c.json({ data: events.map(eventJson) })
})

eventsApiRoutes.get('/events/:id', async (c) => {
  const { principal } = c.var
  requireScope(principal, 'read')
  const { store } = c.var.runtime
  const id = c.req.param('id')
  if (!isEventId(id)) throw new SpConnectError('invalid_request', { detail: 'invalid: event id' })
  const event = await visibleEvent(c, id)
  const deliveries = await store.listDeliveries({ eventId: event.id, limit: 1000 })
  return c.json({ ...eventJson(event), deliveries: deliveries.map(deliveryJson) })
})

eventsApiRoutes.get('/webhook-deliveries', async (c) => {
  const { principal } = c.var
  requireScope(principal, 'read')
  const q = parseQuery(listDeliveriesQuerySchema, c.req.query())
  if (q.event_id !== undefined) await visibleEvent(c, q.event_id)
  else if (principal.tenants !== null) {
    throw new SpConnectError('forbidden', { detail: 'a tenant-scoped key must name an event_id' })
  }
  const deliveries = await c.var.runtime.store.listDeliveries({
    ...(q.status ? { status: q.status } : {}),
    ...(q.event_id ? { eventId: q.event_id } : {}),
    limit: q.limit,
  })
  return c.json({ data: deliveries.map(deliveryJson) })
})

/**
 * The event `id` names if the key may see it: an all-tenant key sees every event, a tenant-scoped one only
 * events of connections of its tenants. Anything else is a 404 `not_found`, like a missing event (and a
 * connection of another tenant is audited).
 */
async function visibleEvent(c: Context<ServerEnv>, id: string): Promise<EventRecord> {
  const { principal, runtime } = c.var
  const event = await runtime.store.getEvent(id)
  if (!event) throw new SpConnectError('not_found')
  if (principal.tenants === null) return event
  const connection =
    event.connectionId === null ? undefined : await runtime.store.getConnection(event.connectionId)
  if (!connection || !canSeeTenant(principal, connection.tenantId)) {
    if (connection)
      await recordAccessDenied(runtime, principal, connection.id, `${c.req.method} ${c.req.routePath}`)
    throw new SpConnectError('not_found')
  }
  return event
}

function parseQuery<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value)
  if (!result.success) {
    // Names the parameters, never their values.
    const fields = result.error.issues.map((issue) => issue.path.join('.') || 'query').join(', ')
    throw new SpConnectError('invalid_request', { detail: `invalid: ${fields}` })
  }
  return result.data
}
