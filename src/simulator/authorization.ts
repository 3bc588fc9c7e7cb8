/**
 * Rules and outcome shared by the website consent flow and the Login-URI confirm step: which request
 * parameters Amazon refuses (on its own page) and the redirect that carries the authorization code.
 */
import type { Context } from 'hono'
import type { SimulatorContext } from './context.ts'
import { newAuthorizationCode, newMwsAuthToken } from './ids.ts'
import { type AppRegistry, betaAllowed, resolveRedirectUri } from './registry.ts'
import { redirectTo, withQuery } from './responses.ts'
import type { CentralHostInfo } from './routes.ts'
import { CODE_TTL_MS } from './state.ts'
import type { SimulatedApp } from './types.ts'

export interface Refusal {
  readonly message: string
  readonly errorCode: string | undefined
}

export const REFUSALS = {
  unknownApp: { message: 'Unable to find application.', errorCode: undefined },
  MD1000: {
    message: 'This app is in Draft status and can only be authorized in a test flow (version=beta).',
    errorCode: 'MD1000',
  },
  MD5101: {
    message: "The redirect URI is not one of the app's registered OAuth Redirect URIs.",
    errorCode: 'MD5101',
  },
  MD5110: { message: 'The redirect URI must not contain a fragment (#).', errorCode: 'MD5110' },
  // Simulator-specific: Amazon documents no error for a bad amazon_state.
  amazonState: {
    message: 'This authorization request has expired or was already used. Start again from Seller Central.',
    errorCode: 'INVALID_AMAZON_STATE',
  },
  // Simulator-specific: the simulator's own CSRF check on its forms.
  csrf: {
    message: 'Your session has expired. Open the authorization link again.',
    errorCode: 'SIMULATOR_SESSION_EXPIRED',
  },
} as const satisfies Record<string, Refusal>

type Checked<T> = { ok: true; value: T } | { ok: false; refusal: Refusal }

export function findApp(registry: AppRegistry, appId: string | undefined): Checked<SimulatedApp> {
  const app = registry.byAppId(appId)
  return app ? { ok: true, value: app } : { ok: false, refusal: REFUSALS.unknownApp }
}

/** The beta rule, then the redirect-URI rules; the resolved redirect URI on success. */
export function checkFlow(
  app: SimulatedApp,
  version: string | undefined,
  redirectUri: string | undefined,
): Checked<string> {
  if (!betaAllowed(app, version)) return { ok: false, refusal: REFUSALS.MD1000 }
  const resolved = resolveRedirectUri(app, redirectUri)
  return resolved.ok
    ? { ok: true, value: resolved.redirectUri }
    : { ok: false, refusal: REFUSALS[resolved.errorCode] }
}

/** Selling partner ids the simulated sign-in accepts: letters, digits, `.`, `_`, `-`, up to 64 characters. */
export function validSellingPartnerId(value: string | undefined): value is string {
  return value !== undefined && /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(value)
}

interface Completion {
  readonly app: SimulatedApp
  readonly host: CentralHostInfo
  readonly sellingPartnerId: string
  readonly redirectUri: string
  readonly state: string | undefined
}

/**
 * A new grant and its single-use, 5-minute code, then the redirect Amazon makes (spapi-facts.md §1.4):
 * `state` (only when given), `mws_auth_token` (hybrid seller apps), `selling_partner_id`, `spapi_oauth_code`.
 */
export function completeAuthorization(ctx: SimulatorContext, c: Context, done: Completion): Response {
  const now = ctx.now()
  const grant = ctx.state.addGrant({
    sellingPartnerId: done.sellingPartnerId,
    appId: done.app.appId,
    clientId: done.app.clientId,
    region: done.host.region,
    issuedAt: now,
    kind: 'oauth',
  })
  const code = newAuthorizationCode()
  ctx.state.putCode(
    code,
    {
      grantId: grant.id,
      grantSerial: grant.serial,
      clientId: done.app.clientId,
      sellingPartnerId: done.sellingPartnerId,
      region: done.host.region,
      issuedAt: now,
      redirectUri: done.redirectUri,
      expiresAt: now + CODE_TTL_MS,
    },
    now,
  )
  const params: [string, string][] = []
  if (done.state !== undefined) params.push(['state', done.state])
  if (done.app.hybrid === true && done.host.accountType === 'seller')
    params.push(['mws_auth_token', newMwsAuthToken()])
  params.push(['selling_partner_id', done.sellingPartnerId], ['spapi_oauth_code', code])
  return redirectTo(c, withQuery(done.redirectUri, params))
}
