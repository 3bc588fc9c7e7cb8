/**
 * The Application Management API's one operation, `rotateApplicationClientSecret`:
 * `POST /{spapiHost}/applications/2023-11-30/clientSecret` (spapi-facts.md §7.1; the 2023-11-30 model).
 *
 * Order of checks (Amazon's is undocumented): access token (missing, malformed, expired → 403 Unauthorized),
 * a grantless token with the `sellingpartnerapi::client_credential:rotation` scope (otherwise 403 with empty
 * details, as for a missing role), a notification destination (otherwise 400 InvalidInput "not enrolled",
 * the model's text; sandbox hosts always answer that, as the model's sandbox response does), then the rate
 * (1 per 60 s per app on the simulator clock, 429 QuotaExceeded). Success: 204, the app's secret rotated, and
 * APPLICATION_OAUTH_CLIENT_NEW_SECRET sent to the destination.
 */
import { type Context, Hono } from 'hono'
import { rotateSecret } from './client-secrets.ts'
import type { SimulatorContext } from './context.ts'
import { newRequestId } from './ids.ts'
import { newSecretNotification } from './notifications.ts'
import { spapiHostInfo } from './routes.ts'
import { SPAPI_DENIED } from './spapi.ts'
import { isGrantless, verifyAccessToken } from './tokens.ts'

export const ROTATION_PATH = '/applications/2023-11-30/clientSecret'
export const ROTATION_SCOPE = 'sellingpartnerapi::client_credential:rotation'
/** Rate 0.0167 requests per second, burst 1. */
export const ROTATION_INTERVAL_MS = 60_000
const RATE_LIMIT = '0.0167'
const NOT_ENROLLED =
  'Application is not enrolled for rotation notification. Please update application notification preference in Developer console.'

function answer(c: Context, status: 204 | 400 | 403 | 429, errors?: object[]): Response {
  const headers: Record<string, string> = { 'x-amzn-RequestId': newRequestId() }
  // Best effort on Amazon's side, and never on 403 or 429 (spapi-facts.md §6.2).
  if (status === 204 || status === 400) headers['x-amzn-RateLimit-Limit'] = RATE_LIMIT
  if (status === 403) headers['x-amzn-ErrorType'] = 'AccessDeniedException'
  if (status === 204 || errors === undefined) return c.body(null, 204, headers)
  headers['Content-Type'] = 'application/json'
  return c.body(JSON.stringify({ errors }), status, headers)
}

function denied(c: Context, details: string): Response {
  return answer(c, 403, [
    { code: 'Unauthorized', message: 'Access to requested resource is denied.', details },
  ])
}

export function rotationRoutes(ctx: SimulatorContext): Hono {
  const app = new Hono()

  app.post(`/:host${ROTATION_PATH}`, (c, next) => {
    const host = spapiHostInfo(c.req.param('host'))
    if (!host) return next()
    const token = c.req.header('x-amz-access-token')?.trim()
    if (token === undefined || token === '') return denied(c, SPAPI_DENIED.missing)
    const claims = verifyAccessToken(ctx.signingSecret, token)
    if (!claims) return denied(c, SPAPI_DENIED.invalid)
    const now = ctx.now()
    if (now >= claims.exp || ctx.state.isForcedExpired(undefined, claims.n)) {
      return denied(c, SPAPI_DENIED.expired)
    }
    if (!isGrantless(claims) || !claims.s.split(' ').includes(ROTATION_SCOPE)) {
      return denied(c, SPAPI_DENIED.noAccess)
    }
    const registered = ctx.registry.byClientId(claims.c)
    if (!registered) return denied(c, SPAPI_DENIED.invalid)
    if (host.sandbox || !ctx.notifier.enabled) {
      return answer(c, 400, [{ code: 'InvalidInput', message: NOT_ENROLLED }])
    }
    const last = ctx.state.lastRotationAt.get(registered.clientId)
    if (last !== undefined && now - last < ROTATION_INTERVAL_MS) {
      return answer(c, 429, [
        { code: 'QuotaExceeded', message: 'You exceeded your quota for the requested resource.' },
      ])
    }
    ctx.state.lastRotationAt.set(registered.clientId, now)
    const rotation = rotateSecret(registered, now)
    ctx.state.secretsChanged(registered.clientId, registered.clientSecrets)
    const message = newSecretNotification(registered, now, {
      newClientSecret: rotation.newClientSecret,
      newExpiresAt: rotation.newExpiresAt,
      oldExpiresAt: rotation.oldExpiresAt,
    })
    ctx.notifier.send(registered.appId, message, now)
    return answer(c, 204)
  })
  return app
}
