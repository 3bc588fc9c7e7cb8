/**
 * The sp-connect HTTP service as a Web-standard fetch app. Errors are mapped in one place: API routes answer
 * `{error: {code, message}}`, pages show a fixed text for the code. Nothing from the request is echoed.
 */

import type { Context } from 'hono'
import { Hono } from 'hono'
import { checkPublicLocation } from '../config.ts'
import { centralOrigins } from '../core/authorization/consent-url.ts'
import { chooseRequestId, runInRequestContext } from '../core/request-context.ts'
import { isSpConnectError, SpConnectError } from '../domain/errors.ts'
import type { Runtime } from '../runtime.ts'
import { isStoreUnavailableError } from '../store/errors.ts'
import { mountAssets } from './assets.ts'
import type { ServerEnv, ServerOptions } from './context.ts'
import { metricsRoute } from './metrics.ts'
import { errorPage } from './pages/error-page.ts'
import { sellerErrorPage } from './pages/seller-pages.ts'
import { withoutBasePath } from './public-url.ts'
import { refuseQueryCredentials } from './query-credentials.ts'
import { abuseLimits } from './rate-limit.ts'
import { checkReadiness } from './readiness.ts'
import { apiRoutes } from './routes/api.ts'
import { authorizeRoutes, sellerPageOptions } from './routes/authorize.ts'
import { consoleActionRoutes } from './routes/console-actions.ts'
import { consoleAuthRoutes } from './routes/console-auth.ts'
import { dashboardRoutes } from './routes/dashboard.ts'
import { devSignInRoutes } from './routes/dev-sign-in.ts'
import { refuseLongUrls, securityHeaders } from './security.ts'

export function createServerApp(runtime: Runtime, options: ServerOptions = {}): Hono<ServerEnv> {
  const app = new Hono<ServerEnv>()
  const { config, deps } = runtime
  checkPublicLocation(config)

  app.use('*', async (c, next) => {
    const started = performance.now()
    c.set('runtime', runtime)
    c.set('options', options)
    // Every log line written while serving this request carries its id (src/core/request-context.ts).
    const requestId = chooseRequestId(c.req.header('x-request-id'))
    // Set before the route builds its response (see securityHeaders), and again if it returned its own.
    c.header('x-request-id', requestId)
    await runInRequestContext({ requestId }, async () => {
      await next()
      if (c.res.headers.get('x-request-id') !== requestId) c.header('x-request-id', requestId)
      // The path only: query strings carry state values and authorization codes.
      deps.logger.info(
        {
          method: c.req.method,
          path: c.req.routePath,
          status: c.res.status,
          ms: Math.round(performance.now() - started),
        },
        'request',
      )
    })
  })
  app.use(
    '*',
    securityHeaders({
      formActionOrigins: centralOrigins(config.amazon.centralUrlTemplate),
      imageOrigins: config.brand.logoUrl ? [new URL(config.brand.logoUrl).origin] : [],
      hsts: config.mode !== 'dev',
    }),
  )
  app.use('*', refuseLongUrls())
  app.use('*', refuseQueryCredentials())
  // Before every route: per-address limits on browser entry points, per-key limits and bad-key slowdown on /v1.
  app.use('*', abuseLimits(runtime))

  app.get('/healthz', async (c) => {
    await runtime.store.getConnection('healthz')
    return c.json({ status: 'ok' })
  })
  app.get('/readyz', async (c) => {
    const report = await checkReadiness(runtime)
    return c.json(report, report.status === 'ready' ? 200 : 503)
  })
  app.get('/metrics', metricsRoute)
  mountAssets(app)
  app.get('/favicon.ico', (c) => c.body(null, 204))
  app.route('/v1', apiRoutes)
  app.route('/', authorizeRoutes)
  if (config.mode === 'dev') app.route('/', devSignInRoutes)
  app.route('/', consoleAuthRoutes)
  app.route('/', consoleActionRoutes)
  app.route('/', dashboardRoutes)

  app.notFound((c) => respondWithError(c, new SpConnectError('not_found')))
  app.onError((error, c) => respondWithError(c, error))
  return config.basePath ? underBasePath(app, config.basePath) : app
}

/**
 * The routes served under `basePath` (docs/decisions/0012-base-path.md): the prefix is taken off before
 * routing, so every route, limit and log sees the same paths as at the root; anything outside it is a 404.
 */
function underBasePath(app: Hono<ServerEnv>, basePath: string): Hono<ServerEnv> {
  const mounted = new Hono<ServerEnv>()
  mounted.all('*', (c) => {
    const inner = withoutBasePath(c.req.raw, basePath)
    if (inner) return app.fetch(inner, c.env)
    // Not ours: whatever else serves this origin answers there; here a bare 404 that reveals nothing.
    return new Response('Not Found', {
      status: 404,
      headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' },
    })
  })
  return mounted
}

function respondWithError(c: Context<ServerEnv>, error: unknown): Response | Promise<Response> {
  const runtime = c.var.runtime
  const known = isSpConnectError(error)
    ? error
    : isStoreUnavailableError(error)
      ? new SpConnectError('store_unavailable', { cause: error, retryAfterSeconds: 1 })
      : new SpConnectError('internal', { cause: error })
  const log = known.status >= 500 ? runtime.deps.logger.error : runtime.deps.logger.warn
  log.call(
    runtime.deps.logger,
    {
      code: known.code,
      detail: known.detail,
      ...loggedPath(new URL(c.req.url).pathname),
      // Unexpected errors: their name and message for operators; our own errors carry no secrets.
      ...(isSpConnectError(error) ? {} : { errorName: error instanceof Error ? error.name : typeof error }),
    },
    'request failed',
  )
  if (known.retryAfterSeconds !== undefined) c.header('Retry-After', String(known.retryAfterSeconds))
  const status = known.status as 400
  if (new URL(c.req.url).pathname.startsWith('/v1/') || JSON_PATHS.has(c.req.path)) {
    const body =
      known.code === 'invalid_request' && known.detail
        ? { ...known.toJSON(), detail: known.detail }
        : known.toJSON()
    return c.json({ error: body }, status)
  }
  if (isSellerFacing(c.req.path)) {
    return c.html(sellerErrorPage(known, runtime.config.sellerStartUrl, sellerPageOptions(c)), status)
  }
  return c.html(
    errorPage(known, { devMode: runtime.config.mode === 'dev', basePath: runtime.config.basePath }),
    status,
  )
}

/** Non-API paths that answer JSON (probes, scrapes), errors included. */
const JSON_PATHS = new Set(['/healthz', '/readyz', '/metrics'])

/** Longest path logged whole; a longer one (say, a rejected oversized URL) is logged cut, with its length. */
const LOGGED_PATH_MAX = 200

/** SP-API passthrough paths carry seller data (order ids, SKUs): logged as the route, never the path. */
const SPAPI_PASSTHROUGH_PATH = /\/v1\/connections\/[^/]+\/spapi(\/|$)/

function loggedPath(path: string): { path: string; pathLength?: number } {
  if (SPAPI_PASSTHROUGH_PATH.test(path)) return { path: '/v1/connections/:id/spapi/*' }
  return path.length <= LOGGED_PATH_MAX
    ? { path }
    : { path: path.slice(0, LOGGED_PATH_MAX), pathLength: path.length }
}

/** Pages a seller reaches (from Amazon or an app's connect link): they get the app's branding, not the console's. */
const SELLER_PATHS = /^\/(connect\/s\/|login(\/|$)|callback$|connected$|dev\/sign-in$)/

function isSellerFacing(path: string): boolean {
  return SELLER_PATHS.test(path)
}
