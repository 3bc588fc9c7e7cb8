/** SP-API notifications forwarded from the app's SQS queue. */
import { z } from 'zod'

/**
 * `POST /v1/notifications` body: the SQS message body as Amazon wrote it. The route reads it as text under a
 * 64 KiB limit and parses it itself (any content type), so this schema only documents it.
 */
export const notificationBodySchema = z
  .record(z.string(), z.unknown())
  .meta({ description: 'An SP-API notification (`NotificationType`, `Payload`, …), as Amazon wrote it.' })

const NOTIFICATION_RESULTS = ['stored', 'duplicate', 'recorded', 'ignored'] as const

export const notificationResultSchema = z.object({
  notification_type: z.string(),
  result: z.enum(NOTIFICATION_RESULTS),
  secret_id: z
    .string()
    .optional()
    .meta({ description: 'The stored client secret’s id, when one was stored.' }),
})

export type NotificationBody = z.input<typeof notificationBodySchema>
export type NotificationResult = z.output<typeof notificationResultSchema>
