/**
 * "Manage Your Apps" (spapi-facts.md §2.2, §7.3): a simulated sign-in, then the partner's authorized apps
 * in this host's region with Re-Authorize (the Login-URI flow) and Remove app (revocation).
 */
import { Hono } from 'hono'
import { findApp, REFUSALS, validSellingPartnerId } from './authorization.ts'
import type { SimulatorContext } from './context.ts'
import { CSRF_FIELD, checkCsrf, issueCsrf } from './csrf.ts'
import { newSellingPartnerId } from './ids.ts'
import { type ManagedAppRow, manageAppsPage, manageSignInPage } from './pages.ts'
import type { GrantRecord } from './persistence.ts'
import { readForm, redirectTo, refusalPage, sendPage, unknownHostPage } from './responses.ts'
import { appstoreConsentPath, baseUrlOf, centralHostInfo, manageAppsPath } from './routes.ts'
import { GRANT_TTL_MS } from './state.ts'

const LIST_SEGMENTS = 3
const REMOVE_SEGMENTS = 4

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

export function manageRoutes(ctx: SimulatorContext): Hono {
  const app = new Hono()

  app.get('/:host/apps/manage', (c) => {
    const host = centralHostInfo(c.req.param('host'))
    if (!host) return unknownHostPage(c, LIST_SEGMENTS)
    const base = baseUrlOf(c.req.url, LIST_SEGMENTS)
    const action = `${base}${manageAppsPath(host.host)}`
    const sellingPartnerId = c.req.query('selling_partner_id')?.trim()
    if (!validSellingPartnerId(sellingPartnerId)) {
      const page = manageSignInPage({
        base,
        host: host.host,
        action,
        sellingPartnerId: newSellingPartnerId(),
      })
      return sendPage(c, page, 200, [])
    }
    // The newest grant per app stands for the app's authorization.
    const latest = new Map<string, GrantRecord>()
    for (const grant of ctx.state.grants) {
      if (grant.sellingPartnerId === sellingPartnerId && grant.region === host.region)
        latest.set(grant.appId, grant)
    }
    const now = ctx.now()
    const rows: ManagedAppRow[] = []
    for (const grant of latest.values()) {
      const registered = ctx.registry.byAppId(grant.appId)
      if (!registered) continue
      const revoked = ctx.state.isRevoked({
        sellingPartnerId,
        clientId: grant.clientId,
        serial: grant.serial,
      })
      const expiresAt = grant.issuedAt + GRANT_TTL_MS
      const q = new URLSearchParams({ selling_partner_id: sellingPartnerId, reauth: '1' })
      // A draft app can only run a test flow, so its Re-Authorize carries version=beta (simulator choice).
      if (registered.status === 'draft') q.set('version', 'beta')
      rows.push({
        appId: registered.appId,
        appName: registered.name,
        authorizedOn: day(grant.issuedAt),
        expiresOn: day(expiresAt),
        status: revoked ? 'Removed' : now > expiresAt ? 'Expired' : 'Active',
        reauthorizeHref: `${base}${appstoreConsentPath(host.host, registered.appId)}?${q.toString()}`,
      })
    }
    const csrf = issueCsrf(c, ctx.signingSecret, base, `manage:${host.host}`)
    const page = manageAppsPage({
      base,
      host: host.host,
      sellingPartnerId,
      rows,
      removeAction: `${action}/remove`,
      csrf,
    })
    return sendPage(c, page, 200, [])
  })

  app.post('/:host/apps/manage/remove', async (c) => {
    const host = centralHostInfo(c.req.param('host'))
    if (!host) return unknownHostPage(c, REMOVE_SEGMENTS)
    const base = baseUrlOf(c.req.url, REMOVE_SEGMENTS)
    const form = await readForm(c)
    const found = findApp(ctx.registry, form.get('app_id'))
    if (!found.ok) return refusalPage(c, base, host.host, form.get('app_id'), found.refusal)
    if (!checkCsrf(c, ctx.signingSecret, `manage:${host.host}`, form.get(CSRF_FIELD))) {
      return refusalPage(c, base, host.host, found.value.appId, REFUSALS.csrf, 403)
    }
    const sellingPartnerId = form.get('selling_partner_id')?.trim()
    if (!validSellingPartnerId(sellingPartnerId)) return redirectTo(c, `${base}${manageAppsPath(host.host)}`)
    ctx.state.revoke(sellingPartnerId, found.value.clientId, ctx.now())
    const q = new URLSearchParams({ selling_partner_id: sellingPartnerId })
    return redirectTo(c, `${base}${manageAppsPath(host.host)}?${q.toString()}`)
  })
  return app
}
