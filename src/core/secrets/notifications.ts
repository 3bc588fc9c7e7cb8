/**
 * The two SP-API notifications about the application's LWA client secret, as Amazon puts them on the SQS
 * queue (the message body is the notification JSON): `APPLICATION_OAUTH_CLIENT_NEW_SECRET` (the only way the
 * new secret ever arrives after a rotation) and `APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY` (a warning).
 *
 * Parsing is strict about what sp-connect acts on and lenient about the rest: unknown fields are ignored, and a
 * well-formed notification of another type parses as `other` so the caller can acknowledge and drop it (one
 * queue may carry several types). Errors name fields and issue kinds, never values: the body holds a secret.
 *
 * @see ../../../../shared/spapi-facts.md §7.1
 */
import { z } from 'zod'
import { SpConnectError } from '../../domain/errors.ts'

export const NEW_SECRET_NOTIFICATION = 'APPLICATION_OAUTH_CLIENT_NEW_SECRET'
export const SECRET_EXPIRY_NOTIFICATION = 'APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY'

/** ISO 8601 with a zone (Amazon sends `2024-01-17T22:09:17.180Z`), as epoch milliseconds. */
const time = z.iso.datetime({ offset: true }).transform((value) => Date.parse(value))
const clientId = z.string().min(1).max(256)
/** Printable ASCII without spaces, as every LWA client secret (`amzn1.oa2-cs.v1.…`) is. */
const clientSecret = z
  .string()
  .min(8)
  .max(2048)
  .regex(/^[\x21-\x7e]+$/)

const envelope = z.object({
  notificationVersion: z.string().max(32).optional(),
  notificationType: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Z0-9_]+$/),
  payloadVersion: z.string().max(32).optional(),
  eventTime: time.optional(),
  payload: z.record(z.string(), z.unknown()),
  notificationMetadata: z
    .object({
      applicationId: z.string().max(256).optional(),
      subscriptionId: z.string().max(256).optional(),
      publishTime: z.string().max(64).optional(),
      notificationId: z.string().min(1).max(256).optional(),
    })
    .optional(),
})

const newSecretPayload = z.object({
  applicationOAuthClientNewSecret: z.object({
    clientId,
    newClientSecret: clientSecret,
    newClientSecretExpiryTime: time,
    oldClientSecretExpiryTime: time,
  }),
})

const secretExpiryPayload = z.object({
  applicationOAuthClientSecretExpiry: z.object({
    clientId,
    clientSecretExpiryTime: time,
    clientSecretExpiryReason: z.string().max(256).optional(),
  }),
})

interface Common {
  /** `notificationMetadata.notificationId`, when Amazon sent one (it always does). */
  readonly notificationId: string | null
  /** `eventTime` in epoch ms, when present. */
  readonly eventTime: number | null
}

export interface NewSecretNotification extends Common {
  readonly kind: 'new_secret'
  readonly clientId: string
  readonly newSecret: string
  readonly newSecretExpiresAt: number
  /** When Amazon stops accepting the secrets that were valid before this one. */
  readonly oldSecretExpiresAt: number
}

export interface SecretExpiryNotification extends Common {
  readonly kind: 'secret_expiry'
  readonly clientId: string
  readonly expiresAt: number
  /** E.g. `PERIODIC_ROTATION`. */
  readonly reason: string | null
}

interface OtherNotification extends Common {
  readonly kind: 'other'
  readonly notificationType: string
}

type ClientSecretNotification = NewSecretNotification | SecretExpiryNotification | OtherNotification

/**
 * Parses an SQS message body (already JSON-decoded). Throws `invalid_request` (detail: field paths and issue
 * kinds only) for anything that is not a notification, or a secret notification with a bad payload.
 */
export function parseNotification(body: unknown): ClientSecretNotification {
  const outer = check(envelope, body, '')
  const common: Common = {
    notificationId: outer.notificationMetadata?.notificationId ?? null,
    eventTime: outer.eventTime ?? null,
  }
  if (outer.notificationType === NEW_SECRET_NOTIFICATION) {
    const inner = check(newSecretPayload, outer.payload, 'payload.').applicationOAuthClientNewSecret
    return Object.freeze({
      kind: 'new_secret',
      ...common,
      clientId: inner.clientId,
      newSecret: inner.newClientSecret,
      newSecretExpiresAt: inner.newClientSecretExpiryTime,
      oldSecretExpiresAt: inner.oldClientSecretExpiryTime,
    })
  }
  if (outer.notificationType === SECRET_EXPIRY_NOTIFICATION) {
    const inner = check(secretExpiryPayload, outer.payload, 'payload.').applicationOAuthClientSecretExpiry
    return Object.freeze({
      kind: 'secret_expiry',
      ...common,
      clientId: inner.clientId,
      expiresAt: inner.clientSecretExpiryTime,
      reason: inner.clientSecretExpiryReason ?? null,
    })
  }
  return Object.freeze({ kind: 'other', ...common, notificationType: outer.notificationType })
}

function check<T>(schema: z.ZodType<T>, value: unknown, prefix: string): T {
  const parsed = schema.safeParse(value)
  if (parsed.success) return parsed.data
  // Paths and issue codes only: zod's messages are safe, but the values (a client secret) must never leak
  const fields = parsed.error.issues.map(
    (issue) => `${prefix}${issue.path.map(String).join('.')}`.replace(/\.$/, '') || 'body',
  )
  throw new SpConnectError('invalid_request', {
    detail: `not a valid notification: ${[...new Set(fields)].join(', ')}`,
  })
}
