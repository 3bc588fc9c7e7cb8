/**
 * Website authorization workflow (spapi-facts.md §1): `GET {centralHost}/apps/authorize/consent` shows
 * a simulated sign-in plus the consent page, or Amazon's on-page error; `POST` to the same URL is the
 * Confirm/Cancel click.
 */
import { type Context, Hono } from 'hono'
import {
  checkFlow,
  completeAuthorization,
  findApp,
  REFUSALS,
  type Refusal,
  validSellingPartnerId,
} from './authorization.ts'
import type { SimulatorContext } from './context.ts'
import { CSRF_FIELD, checkCsrf, issueCsrf } from './csrf.ts'
import { newSellingPartnerId } from './ids.ts'
import { consentPage } from './pages.ts'
import { readForm, redirectTo, refusalPage, sendPage, unknownHostPage, withQuery } from './responses.ts'
import { baseUrlOf, type CentralHostInfo, centralHostInfo, consentPath } from './routes.ts'
import type { SimulatedApp } from './types.ts'

/** `/{host}/apps/authorize/consent` has four path segments. */
const ROUTE_SEGMENTS = 4
const PARAMS = ['application_id', 'state', 'version', 'redirect_uri'] as const
type ConsentParams = Partial<Record<(typeof PARAMS)[number], string>>

interface Validated {
  readonly app: SimulatedApp
  readonly redirectUri: string
}

function validate(
  ctx: SimulatorContext,
  params: ConsentParams,
): { ok: true; v: Validated } | { ok: false; refusal: Refusal } {
  const found = findApp(ctx.registry, params.application_id)
  if (!found.ok) return found
  const flow = checkFlow(found.value, params.version, params.redirect_uri)
  if (!flow.ok) return flow
  return { ok: true, v: { app: found.value, redirectUri: flow.value } }
}

function showConsent(
  ctx: SimulatorContext,
  c: Context,
  host: CentralHostInfo,
  params: ConsentParams,
  app: SimulatedApp,
  sellingPartnerId: string,
  notice: string | undefined,
): Promise<Response> {
  const base = baseUrlOf(c.req.url, ROUTE_SEGMENTS)
  const csrf = issueCsrf(c, ctx.signingSecret, base, `consent:${host.host}:${app.appId}`)
  const hidden: [string, string][] = []
  for (const name of PARAMS) {
    const value = params[name]
    if (value !== undefined) hidden.push([name, value])
  }
  hidden.push([CSRF_FIELD, csrf])
  const page = consentPage({
    base,
    host: host.host,
    appName: app.name,
    action: `${base}${consentPath(host.host)}`,
    hidden,
    sellingPartnerId,
    reauthorize: false,
    notice,
  })
  return sendPage(c, page, notice ? 400 : 200, app.redirectUris)
}

export function consentRoutes(ctx: SimulatorContext): Hono {
  const app = new Hono()

  app.get('/:host/apps/authorize/consent', (c) => {
    const host = centralHostInfo(c.req.param('host'))
    if (!host) return unknownHostPage(c, ROUTE_SEGMENTS)
    const params: ConsentParams = {}
    for (const name of PARAMS) {
      const value = c.req.query(name)
      if (value !== undefined) params[name] = value
    }
    const checked = validate(ctx, params)
    const base = baseUrlOf(c.req.url, ROUTE_SEGMENTS)
    if (!checked.ok) return refusalPage(c, base, host.host, params.application_id, checked.refusal)
    return showConsent(ctx, c, host, params, checked.v.app, newSellingPartnerId(), undefined)
  })

  app.post('/:host/apps/authorize/consent', async (c) => {
    const host = centralHostInfo(c.req.param('host'))
    if (!host) return unknownHostPage(c, ROUTE_SEGMENTS)
    const form = await readForm(c)
    const params: ConsentParams = {}
    for (const name of PARAMS) {
      const value = form.get(name)
      if (value !== undefined) params[name] = value
    }
    const base = baseUrlOf(c.req.url, ROUTE_SEGMENTS)
    const checked = validate(ctx, params)
    if (!checked.ok) return refusalPage(c, base, host.host, params.application_id, checked.refusal)
    const { app: registered, redirectUri } = checked.v
    if (!checkCsrf(c, ctx.signingSecret, `consent:${host.host}:${registered.appId}`, form.get(CSRF_FIELD))) {
      return refusalPage(c, base, host.host, registered.appId, REFUSALS.csrf, 403)
    }
    if (form.get('action') === 'cancel') {
      // Amazon documents no error redirect for Cancel (spapi-facts.md §1.5). The simulator sends the
      // browser back the OAuth way: error=access_denied plus the state, and no code.
      const back: [string, string][] = [['error', 'access_denied']]
      if (params.state !== undefined) back.push(['state', params.state])
      return redirectTo(c, withQuery(redirectUri, back))
    }
    const sellingPartnerId = form.get('selling_partner_id')?.trim()
    if (form.get('action') !== 'confirm' || !validSellingPartnerId(sellingPartnerId)) {
      const notice = 'Enter a selling partner id (letters and digits), then choose Confirm or Cancel.'
      return showConsent(ctx, c, host, params, registered, newSellingPartnerId(), notice)
    }
    return completeAuthorization(ctx, c, {
      app: registered,
      host,
      sellingPartnerId,
      redirectUri,
      state: params.state,
    })
  })
  return app
}
