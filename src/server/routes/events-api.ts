/**
 * The audit log and the webhook outbox, read-only:
 *
 * - `GET /v1/events[?connection_id&type&limit]` → `{data: [event]}`, newest first
 * - `GET /v1/events/:id` → `{...event, deliveries: [delivery]}`
 * - `GET /v1/webhook-deliveries[?status&event_id&limit]` → `{data: [delivery]}`
 *
 * Events look like webhook bodies (`id, type, connection_id, data, created_at`). Deliveries show their state,
 * never their lease.
 */
import { Hono } from 'hono'
import { z } from 'zod'
import { SpConnectError } from '../../core/errors.ts'
import { EVENT_TYPES } from '../../core/events/events.ts'
import { DELIVERY_STATUSES, type DeliveryRecord } from '../../store/store.ts'
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

const limit = z.coerce.number().int().min(1).max(1000).default(100)

const eventsQuery = z
  .object({
    connection_id: z.string().min(1).max(128).optional(),
    type: z.enum(EVENT_TYPES).optional(),
    limit,
  })
  .strict()

eventsApiRoutes.get('/events', async (c) => {
  const q = parseQuery(eventsQuery, c.req.query())
  const events = await c.var.runtime.store.listEvents({
    ...(q.connection_id ? { connectionId: q.connection_id } : {}),
    ...(q.type ? { type: q.type } : {}),
    limit: q.limit,
  })
  return c.json({ data: events.map(eventJson) })
})

eventsApiRoutes.get('/events/:id', async (c) => {
  const { store } = c.var.runtime
  const event = await store.getEvent(c.req.param('id'))
  if (!event) throw new SpConnectError('not_found')
  const deliveries = await store.listDeliveries({ eventId: event.id, limit: 1000 })
  return c.json({ ...eventJson(event), deliveries: deliveries.map(deliveryJson) })
})

const deliveriesQuery = z
  .object({
    status: z.enum(DELIVERY_STATUSES).optional(),
    event_id: z.string().min(1).max(128).optional(),
    limit,
  })
  .strict()

eventsApiRoutes.get('/webhook-deliveries', async (c) => {
  const q = parseQuery(deliveriesQuery, c.req.query())
  const deliveries = await c.var.runtime.store.listDeliveries({
    ...(q.status ? { status: q.status } : {}),
    ...(q.event_id ? { eventId: q.event_id } : {}),
    limit: q.limit,
  })
  return c.json({ data: deliveries.map(deliveryJson) })
})

function parseQuery<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value)
  if (!result.success) {
    // Names the parameters, never their values.
    const fields = result.error.issues.map((issue) => issue.path.join('.') || 'query').join(', ')
    throw new SpConnectError('invalid_request', { detail: `invalid: ${fields}` })
  }
  return result.data
}
