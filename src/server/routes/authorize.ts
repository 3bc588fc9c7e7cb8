/**
 * The browser-facing routes of both workflows: /connect (dashboard button), /connect/s/:token (connect-session
 * links), /login (Amazon's Login URI: Appstore and re-authorization) and /callback (the OAuth Redirect URI).
 */
import { type Context, Hono } from 'hono'
import { html } from 'hono/html'
import { openConnectSession, validateReturnTo } from '../../core/authorization/connect-sessions.ts'
import { SpConnectError } from '../../core/errors.ts'
import { isAccountType, isRegion } from '../../core/regions.ts'
import type { ServerEnv } from '../context.ts'
import { readBindingCookie, writeBindingCookie } from '../cookies.ts'
import { layout } from '../pages/layout.ts'
import { requireDashboardAccess } from './dashboard-auth.ts'

export const authorizeRoutes = new Hono<ServerEnv>()

authorizeRoutes.get('/connect', requireDashboardAccess, async (c) => {
  const { flows, config } = c.var.runtime
  const region = c.req.query('region') ?? 'na'
  const type = c.req.query('type') ?? 'seller'
  if (!isRegion(region) || !isAccountType(type))
    throw new SpConnectError('invalid_request', { detail: 'region or type' })
  const returnTo = c.req.query('return_to')
  const start = await flows.startWebsiteFlow({
    region,
    accountType: type,
    marketplace: c.req.query('marketplace'),
    returnTo: returnTo === undefined ? null : validateReturnTo(returnTo, []),
    browserBinding: readBindingCookie(c, config.insecureCookies),
  })
  return redirectWithBinding(c, start)
})

authorizeRoutes.get('/connect/s/:token', async (c) => {
  const { flows, config, store, deps } = c.var.runtime
  const session = await openConnectSession(store, deps, c.req.param('token'))
  const start = await flows.startWebsiteFlow({
    region: session.region,
    accountType: session.accountType,
    marketplace: session.marketplace ?? undefined,
    tenantId: session.tenantId,
    returnTo: session.returnTo,
    browserBinding: readBindingCookie(c, config.insecureCookies),
  })
  return redirectWithBinding(c, start)
})

authorizeRoutes.get('/login', async (c) => {
  const { flows, config } = c.var.runtime
  const start = await flows.startAppstoreFlow({
    query: new URL(c.req.url).searchParams,
    browserBinding: readBindingCookie(c, config.insecureCookies),
  })
  return redirectWithBinding(c, start)
})

authorizeRoutes.get('/callback', async (c) => {
  const { flows, config } = c.var.runtime
  const result = await flows.completeCallback({
    query: new URL(c.req.url).searchParams,
    browserBinding: readBindingCookie(c, config.insecureCookies),
  })
  c.var.runtime.deps.logger.info(
    { connectionId: result.connection.id, outcome: result.outcome, region: result.connection.region },
    'authorization completed',
  )
  return c.redirect(landingUrl(c, result.connection.id, result.returnTo), 303)
})

/** Where a seller lands after a successful connection when the app named no return URL. */
authorizeRoutes.get('/connected', (c) =>
  c.html(
    layout(
      'Connected',
      html`<article><h1>Your Amazon account is connected</h1><p>You can close this window.</p></article>`,
      { devMode: c.var.runtime.config.mode === 'dev' },
    ),
  ),
)

function redirectWithBinding(
  c: Context<ServerEnv>,
  start: { location: string; browserBinding: string },
): Response {
  writeBindingCookie(c, start.browserBinding, c.var.runtime.config.insecureCookies)
  return c.redirect(start.location, 303)
}

function landingUrl(c: Context<ServerEnv>, connectionId: string, returnTo: string | null): string {
  if (returnTo !== null) {
    const url = new URL(returnTo, c.var.runtime.config.publicUrl)
    url.searchParams.set('connection_id', connectionId)
    return returnTo.startsWith('/') ? `${url.pathname}${url.search}` : url.href
  }
  // The operator's dashboard needs credentials the seller's browser does not have, outside dev.
  return c.var.runtime.config.mode === 'dev' ? `/connections/${connectionId}?connected=1` : '/connected'
}
