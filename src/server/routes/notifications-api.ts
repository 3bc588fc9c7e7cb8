/**
 * `POST /v1/notifications`: SP-API notifications forwarded from the app's SQS queue (the message *body*, as
 * Amazon wrote it), behind the API key like the rest of /v1. See docs/secret-rotation.md for forwarders.
 *
 * Answers (the forwarder deletes the SQS message on 2xx and leaves it for a retry or the dead-letter queue
 * otherwise):
 * - 202 `{notification_type, result[, secret_id]}`: `stored` (a new client secret), `duplicate` (already
 *   handled: SQS delivers at least once), `recorded` (an expiry warning), or `ignored` (a well-formed
 *   notification of a type sp-connect does not use, so a shared queue does not clog).
 * - 400 `invalid_request`: not JSON, not a notification, or a secret notification with a bad payload.
 * - 403 `forbidden` for a key without the `manage` scope or with tenants (notifications are app-wide).
 * - 413 `payload_too_large` over 64 KiB; 422 `notification_client_mismatch` for another LWA client id.
 */
import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { requireAllTenants, requireScope } from '../../core/access/principal.ts'
import { SpConnectError } from '../../domain/errors.ts'
import type { ServerEnv } from '../context.ts'

/** Amazon's notifications are a few hundred bytes; SQS caps messages at 256 KiB. */
const MAX_NOTIFICATION_BYTES = 64 * 1024

/** Mounted under /v1 behind the API-key check (see api.ts). */
export const notificationsApiRoutes = new Hono<ServerEnv>()

notificationsApiRoutes.post(
  '/notifications',
  // App-wide: the `manage` scope of an all-tenant key, checked before the body is read.
  async (c, next) => {
    requireScope(c.var.principal, 'manage')
    requireAllTenants(c.var.principal)
    await next()
  },
  bodyLimit({
    maxSize: MAX_NOTIFICATION_BYTES,
    onError: () => {
      throw new SpConnectError('payload_too_large')
    },
  }),
  async (c) => {
    // Any content type: forwarders (Lambda, shell loops) label the same JSON in different ways
    let body: unknown
    try {
      body = JSON.parse(await c.req.text())
    } catch {
      throw new SpConnectError('invalid_request', { detail: 'the body is not JSON' })
    }
    const outcome = await c.var.runtime.secrets.handleNotification(body)
    return c.json(
      {
        notification_type: outcome.notificationType,
        result: outcome.result,
        ...(outcome.secretId === undefined ? {} : { secret_id: outcome.secretId }),
      },
      202,
    )
  },
)
