/** The audit log and the webhook outbox, read-only. */
import { z } from 'zod'
import { EVENT_TYPES } from '../core/events/events.ts'
import { isConnectionId, isEventId } from '../core/ids.ts'
import { DELIVERY_STATUSES } from '../store/store.ts'
import { optionalTimestampSchema, timestampSchema } from './common.ts'

// `<number>`: the client sends a number; the query string carries it as text.
const limit = z.coerce.number<number>().int().min(1).max(1000).default(100)

/** `GET /v1/events` query. */
export const listEventsQuerySchema = z
  .object({
    connection_id: z
      .string()
      .refine(isConnectionId)
      .optional()
      .meta({ description: 'Required for tenant-scoped keys.' }),
    type: z.enum(EVENT_TYPES).optional(),
    limit,
  })
  .strict()

/** `GET /v1/webhook-deliveries` query. */
export const listDeliveriesQuerySchema = z
  .object({
    status: z.enum(DELIVERY_STATUSES).optional(),
    event_id: z
      .string()
      .refine(isEventId)
      .optional()
      .meta({ description: 'Required for tenant-scoped keys.' }),
    limit,
  })
  .strict()

/** An event, shaped like a webhook body. */
export const eventSchema = z.object({
  id: z.string(),
  type: z.enum(EVENT_TYPES),
  connection_id: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
  created_at: timestampSchema,
})

export const eventListSchema = z.object({ data: z.array(eventSchema) })

/** One webhook delivery: its state, never its lease. */
export const deliverySchema = z.object({
  id: z.string(),
  event_id: z.string(),
  url: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number().int(),
  next_attempt_at: optionalTimestampSchema.meta({ description: 'Only while pending.' }),
  last_status_code: z.number().int().nullable(),
  last_error: z.string().nullable(),
  delivered_at: optionalTimestampSchema,
  created_at: timestampSchema,
  updated_at: timestampSchema,
})

export const deliveryListSchema = z.object({ data: z.array(deliverySchema) })

export const eventWithDeliveriesSchema = eventSchema.extend({ deliveries: z.array(deliverySchema) })

export type ListEventsQuery = z.input<typeof listEventsQuerySchema>
export type ListDeliveriesQuery = z.input<typeof listDeliveriesQuerySchema>
export type EventList = z.output<typeof eventListSchema>
export type DeliveryList = z.output<typeof deliveryListSchema>
export type EventWithDeliveries = z.output<typeof eventWithDeliveriesSchema>
