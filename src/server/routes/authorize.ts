/**
 * The browser-facing routes of both workflows, all seller-facing:
 *
 * - `GET /connect/s/:token`: a connect-session link (new connection, or a reconnect of one connection);
 * - `GET /login`: Amazon's Login URI (Appstore workflow and re-authorization), handed to the app's sign-in;
 * - `GET|POST /login/continue/:token`: after the app approved the request, the confirmation in the same browser;
 * - `GET /callback`: the OAuth Redirect URI;
 * - `GET /connected`: the landing when the flow named no return URL.
 *
 * The operator console starts its own flows with a CSRF-protected POST (console routes); there is no GET that
 * starts a flow without a server-side record saying for whom.
 */
import { type Context, Hono } from 'hono'
import { openConnectSession } from '../../core/authorization/connect-sessions.ts'
import { SpConnectError } from '../../domain/errors.ts'
import type { ServerEnv } from '../context.ts'
import { readBindingCookie, writeBindingCookie } from '../cookies.ts'
import {
  BRAND_STYLESHEET_PATH,
  brandStylesheet,
  cancelledPage,
  confirmationPage,
  connectedPage,
  type SellerPageOptions,
} from '../pages/seller-pages.ts'
import { servicePath } from '../public-url.ts'
import { readTextCapped } from '../read-body.ts'

export const authorizeRoutes = new Hono<ServerEnv>()

/** Longest form body the confirmation page accepts (two short fields). */
const MAX_FORM_BYTES = 2048

authorizeRoutes.get('/connect/s/:token', async (c) => {
  const { flows, config, store, deps } = c.var.runtime
  const session = await openConnectSession(store, deps, c.req.param('token'))
  const start = await flows.startWebsiteFlow({
    region: session.region,
    accountType: session.accountType,
    marketplace: session.marketplace ?? undefined,
    tenantId: session.tenantId,
    returnTo: session.returnTo,
    connectionId: session.connectionId,
    browserBinding: readBindingCookie(c, config),
  })
  return redirectWithBinding(c, start)
})

authorizeRoutes.get('/login', async (c) => {
  const { loginRequests, config } = c.var.runtime
  const start = await loginRequests.start({
    query: new URL(c.req.url).searchParams,
    browserBinding: readBindingCookie(c, config),
  })
  return redirectWithBinding(c, start)
})

authorizeRoutes.get('/login/continue/:token', async (c) => {
  const { loginRequests, config } = c.var.runtime
  const token = c.req.param('token')
  const { request, csrfToken } = await loginRequests.openConfirmation(token, readBindingCookie(c, config))
  return c.html(
    confirmationPage(
      request,
      { action: servicePath(config, `/login/continue/${token}`), csrfToken },
      sellerPageOptions(c),
    ),
  )
})

authorizeRoutes.post('/login/continue/:token', async (c) => {
  const { loginRequests, config, deps } = c.var.runtime
  const form = await readSmallForm(c)
  const action = form.get('action')
  if (action !== 'confirm' && action !== 'cancel')
    throw new SpConnectError('invalid_request', { detail: 'action must be confirm or cancel' })
  const answer = await loginRequests.answer({
    continueToken: c.req.param('token'),
    browserBinding: readBindingCookie(c, config),
    csrfToken: form.get('csrf') ?? undefined,
    action,
  })
  deps.logger.info({ action, region: answer.request.region }, 'login request answered')
  if (answer.location === null) return c.html(cancelledPage(config.sellerStartUrl, sellerPageOptions(c)))
  return c.redirect(answer.location, 303)
})

authorizeRoutes.get('/callback', async (c) => {
  const { flows, config } = c.var.runtime
  const result = await flows.completeCallback({
    query: new URL(c.req.url).searchParams,
    browserBinding: readBindingCookie(c, config),
  })
  c.var.runtime.deps.logger.info(
    { connectionId: result.connection.id, outcome: result.outcome, region: result.connection.region },
    'authorization completed',
  )
  return c.redirect(landingUrl(c, result.connection.id, result.returnTo), 303)
})

/** Where a seller lands after a successful connection when the app named no return URL. */
authorizeRoutes.get('/connected', (c) => c.html(connectedPage(sellerPageOptions(c))))

authorizeRoutes.get(BRAND_STYLESHEET_PATH, (c) => {
  c.header('Content-Type', 'text/css; charset=utf-8')
  return c.body(brandStylesheet(c.var.runtime.config.brand))
})

export function sellerPageOptions(c: Context<ServerEnv>): SellerPageOptions {
  const { config } = c.var.runtime
  return { brand: config.brand, devMode: config.mode === 'dev', basePath: config.basePath }
}

function redirectWithBinding(
  c: Context<ServerEnv>,
  start: { location: string; browserBinding: string },
): Response {
  writeBindingCookie(c, start.browserBinding, c.var.runtime.config)
  return c.redirect(start.location, 303)
}

/**
 * The stored `return_to` is an absolute URL already resolved and checked (return-to.ts); it is used as it is,
 * with the connection id added, never as a bare path a browser could read as protocol-relative.
 */
function landingUrl(c: Context<ServerEnv>, connectionId: string, returnTo: string | null): string {
  const { config } = c.var.runtime
  if (returnTo !== null) {
    const url = new URL(returnTo)
    url.searchParams.set('connection_id', connectionId)
    return url.href
  }
  // In dev the person connecting is the developer at the console; in production it is a seller.
  return servicePath(
    config,
    config.mode === 'dev' ? `/connections/${connectionId}?connected=1` : '/connected',
  )
}

/** A urlencoded form of at most a few fields; anything else is refused before it is parsed. */
async function readSmallForm(c: Context<ServerEnv>): Promise<URLSearchParams> {
  const type = c.req.header('content-type') ?? ''
  if (!type.startsWith('application/x-www-form-urlencoded'))
    throw new SpConnectError('invalid_request', { detail: 'expected a form' })
  return new URLSearchParams(await readTextCapped(c, MAX_FORM_BYTES))
}
