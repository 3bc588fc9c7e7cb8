/**
 * Selling Partner Appstore workflow and re-authorization (spapi-facts.md §2): the app detail page with
 * "Authorize now", a consent step that sends the browser to the app's OAuth Login URI with
 * `amazon_callback_uri`, `amazon_state` and `selling_partner_id`, and the confirm step at
 * `amazon_callback_uri` that checks `amazon_state` and redirects like the website workflow.
 */
import { type Context, Hono } from 'hono'
import {
  checkFlow,
  completeAuthorization,
  findApp,
  REFUSALS,
  validSellingPartnerId,
} from './authorization.ts'
import type { SimulatorContext } from './context.ts'
import { CSRF_FIELD, checkCsrf, issueCsrf } from './csrf.ts'
import { newAmazonState, newSellingPartnerId } from './ids.ts'
import { appstorePage, consentPage } from './pages.ts'
import { readForm, redirectTo, refusalPage, sendPage, unknownHostPage, withQuery } from './responses.ts'
import {
  appstoreConsentPath,
  appstorePath,
  baseUrlOf,
  type CentralHostInfo,
  centralHostInfo,
  confirmPath,
  manageAppsPath,
} from './routes.ts'
import { AMAZON_STATE_TTL_MS } from './state.ts'
import type { SimulatedApp } from './types.ts'

/** `/{host}/apps/appstore/{appId}` has 4 path segments; `/{host}/apps/authorize/{appstore|confirm}/{appId}` 5. */
const DETAIL_SEGMENTS = 4
const STEP_SEGMENTS = 5

interface FlowOptions {
  /** The flow is a test flow (started with version=beta); the Login URI then gets version=beta. */
  readonly beta: boolean
  /** Started from Manage Your Apps "Re-Authorize". */
  readonly reauthorize: boolean
}

function flowQuery(flow: FlowOptions, sellingPartnerId: string | undefined): string {
  const q = new URLSearchParams()
  if (flow.beta) q.set('version', 'beta')
  if (flow.reauthorize) q.set('reauth', '1')
  if (sellingPartnerId !== undefined) q.set('selling_partner_id', sellingPartnerId)
  const s = q.toString()
  return s === '' ? '' : `?${s}`
}

function showConsent(
  ctx: SimulatorContext,
  c: Context,
  host: CentralHostInfo,
  app: SimulatedApp,
  flow: FlowOptions,
  sellingPartnerId: string,
  notice: string | undefined,
): Promise<Response> {
  const base = baseUrlOf(c.req.url, STEP_SEGMENTS)
  const csrf = issueCsrf(c, ctx.signingSecret, base, `appstore:${host.host}:${app.appId}`)
  const hidden: [string, string][] = []
  if (flow.beta) hidden.push(['version', 'beta'])
  if (flow.reauthorize) hidden.push(['reauth', '1'])
  hidden.push([CSRF_FIELD, csrf])
  const page = consentPage({
    base,
    host: host.host,
    appName: app.name,
    action: `${base}${appstoreConsentPath(host.host, app.appId)}`,
    hidden,
    sellingPartnerId,
    reauthorize: flow.reauthorize,
    notice,
  })
  return sendPage(c, page, notice ? 400 : 200, [app.loginUri])
}

export function appstoreRoutes(ctx: SimulatorContext): Hono {
  const app = new Hono()

  // The Appstore lists seller apps only (§1.1); a draft app is reachable only in a test flow.
  app.get('/:host/apps/appstore/:appId', (c) => {
    const host = centralHostInfo(c.req.param('host'))
    if (host?.accountType !== 'seller') return unknownHostPage(c, DETAIL_SEGMENTS)
    const base = baseUrlOf(c.req.url, DETAIL_SEGMENTS)
    const found = findApp(ctx.registry, c.req.param('appId'))
    if (!found.ok) return refusalPage(c, base, host.host, c.req.param('appId'), found.refusal)
    const beta = c.req.query('version') === 'beta'
    if (found.value.status === 'draft' && !beta)
      return refusalPage(c, base, host.host, found.value.appId, REFUSALS.MD1000)
    const query = flowQuery({ beta, reauthorize: false }, undefined)
    const authorizeHref = `${base}${appstoreConsentPath(host.host, found.value.appId)}${query}`
    const page = appstorePage({
      base,
      host: host.host,
      appName: found.value.name,
      appId: found.value.appId,
      authorizeHref,
    })
    return sendPage(c, page, 200, null)
  })

  app.get('/:host/apps/authorize/appstore/:appId', (c) => {
    const host = centralHostInfo(c.req.param('host'))
    if (!host) return unknownHostPage(c, STEP_SEGMENTS)
    const base = baseUrlOf(c.req.url, STEP_SEGMENTS)
    const found = findApp(ctx.registry, c.req.param('appId'))
    if (!found.ok) return refusalPage(c, base, host.host, c.req.param('appId'), found.refusal)
    const flow = { beta: c.req.query('version') === 'beta', reauthorize: c.req.query('reauth') === '1' }
    if (found.value.status === 'draft' && !flow.beta)
      return refusalPage(c, base, host.host, found.value.appId, REFUSALS.MD1000)
    const signedIn = c.req.query('selling_partner_id')
    const sellingPartnerId = validSellingPartnerId(signedIn) ? signedIn : newSellingPartnerId()
    return showConsent(ctx, c, host, found.value, flow, sellingPartnerId, undefined)
  })

  app.post('/:host/apps/authorize/appstore/:appId', async (c) => {
    const host = centralHostInfo(c.req.param('host'))
    if (!host) return unknownHostPage(c, STEP_SEGMENTS)
    const base = baseUrlOf(c.req.url, STEP_SEGMENTS)
    const found = findApp(ctx.registry, c.req.param('appId'))
    if (!found.ok) return refusalPage(c, base, host.host, c.req.param('appId'), found.refusal)
    const registered = found.value
    const form = await readForm(c)
    if (!checkCsrf(c, ctx.signingSecret, `appstore:${host.host}:${registered.appId}`, form.get(CSRF_FIELD))) {
      return refusalPage(c, base, host.host, registered.appId, REFUSALS.csrf, 403)
    }
    const flow = { beta: form.get('version') === 'beta', reauthorize: form.get('reauth') === '1' }
    if (registered.status === 'draft' && !flow.beta)
      return refusalPage(c, base, host.host, registered.appId, REFUSALS.MD1000)
    const sellingPartnerId = form.get('selling_partner_id')?.trim()
    if (form.get('action') === 'cancel') {
      // Undocumented; the simulator returns to where the flow started.
      const signedIn = validSellingPartnerId(sellingPartnerId) ? sellingPartnerId : undefined
      const back = flow.reauthorize
        ? `${base}${manageAppsPath(host.host)}${flowQuery({ beta: false, reauthorize: false }, signedIn)}`
        : `${base}${appstorePath(host.host, registered.appId)}${flowQuery({ beta: flow.beta, reauthorize: false }, undefined)}`
      return redirectTo(c, back)
    }
    if (form.get('action') !== 'confirm' || !validSellingPartnerId(sellingPartnerId)) {
      const notice = 'Enter a selling partner id (letters and digits), then choose Confirm or Cancel.'
      return showConsent(ctx, c, host, registered, flow, newSellingPartnerId(), notice)
    }
    const now = ctx.now()
    const amazonState = newAmazonState()
    ctx.state.putAmazonState(
      amazonState,
      {
        appId: registered.appId,
        sellingPartnerId,
        centralHost: host.host,
        expiresAt: now + AMAZON_STATE_TTL_MS,
      },
      now,
    )
    const params: [string, string][] = [
      ['amazon_callback_uri', `${base}${confirmPath(host.host, registered.appId)}`],
      ['amazon_state', amazonState],
      ['selling_partner_id', sellingPartnerId],
    ]
    if (flow.beta) params.push(['version', 'beta'])
    return redirectTo(c, withQuery(registered.loginUri, params))
  })

  // amazon_callback_uri: the app sends the browser here after its own sign-in (§2.1 step 3).
  app.get('/:host/apps/authorize/confirm/:appId', (c) => {
    const host = centralHostInfo(c.req.param('host'))
    if (!host) return unknownHostPage(c, STEP_SEGMENTS)
    const base = baseUrlOf(c.req.url, STEP_SEGMENTS)
    const found = findApp(ctx.registry, c.req.param('appId'))
    if (!found.ok) return refusalPage(c, base, host.host, c.req.param('appId'), found.refusal)
    const registered = found.value
    const amazonState = c.req.query('amazon_state') ?? ''
    const now = ctx.now()
    const issued = ctx.state.peekAmazonState(amazonState, now)
    if (!issued || issued.appId !== registered.appId || issued.centralHost !== host.host) {
      return refusalPage(c, base, host.host, registered.appId, REFUSALS.amazonState)
    }
    const flow = checkFlow(registered, c.req.query('version'), c.req.query('redirect_uri'))
    if (!flow.ok) return refusalPage(c, base, host.host, registered.appId, flow.refusal)
    // Single use: consumed only once the request is good, so a fixable mistake can be retried.
    ctx.state.consumeAmazonState(amazonState)
    return completeAuthorization(ctx, c, {
      app: registered,
      host,
      sellingPartnerId: issued.sellingPartnerId,
      redirectUri: flow.value,
      state: c.req.query('state'),
    })
  })
  return app
}
