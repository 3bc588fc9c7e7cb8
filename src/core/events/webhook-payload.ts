/**
 * The webhook request body: one event, as JSON. The shape is a public contract (documented in the README):
 *
 *     { "id": "evt_…", "type": "connection.created", "created_at": "2026-11-21T10:00:00.000Z",
 *       "connection_id": "con_…" | null, "data": { … } }
 *
 * `id` is the event id, the same on every attempt and every endpoint, so receivers deduplicate on it (delivery
 * is at least once). `data` holds ids, codes and times only, never tokens or secrets.
 */
import type { EventRecord } from '../../store/store.ts'

interface WebhookPayload {
  /** The event id (`evt_…`): the idempotency key. */
  readonly id: string
  /** One of EVENT_TYPES (see events.ts); receivers should ignore types they do not know. */
  readonly type: string
  /** When the event happened, ISO 8601 UTC with milliseconds. */
  readonly created_at: string
  /** The connection it is about, or null for app-wide events (`app.*`). */
  readonly connection_id: string | null
  readonly data: Readonly<Record<string, unknown>>
}

function webhookPayload(event: EventRecord): WebhookPayload {
  return {
    id: event.id,
    type: event.type,
    created_at: new Date(event.createdAt).toISOString(),
    connection_id: event.connectionId,
    data: event.data,
  }
}

/** The exact body bytes that are signed and sent: compact JSON, keys in the order above. */
export function webhookBody(event: EventRecord): string {
  return JSON.stringify(webhookPayload(event))
}
