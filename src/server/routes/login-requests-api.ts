/**
 * The app's side of the Login-URI handoff (login-requests.ts), server to server with an API key:
 *
 * - `GET /v1/login-requests/:id` → what Amazon asked for (seller, region, status), for the app's sign-in page;
 * - `POST /v1/login-requests/:id/approve {tenant_id, tenant_name?}` → `{redirect_url, expires_at}`: the app
 *   signed its user in and says which tenant the seller account is for; send the browser to `redirect_url`;
 * - `POST /v1/login-requests/:id/reject` → the request ends.
 *
 * `:id` is the `sp_connect_login` value the app's sign-in page received. Every call needs the `manage` scope; a
 * tenant-scoped key may approve only for its tenants (refusals audited), and once a request is approved, only
 * keys that may see its tenant can read or reject it (others get 404, as for a missing one).
 */
import { Hono } from 'hono'
import { approveLoginRequestBodySchema } from '../../api-schemas/login-requests.ts'
import { requireScope } from '../../core/access/principal.ts'
import type { LoginRequestView } from '../../core/authorization/login-requests.ts'
import { requireTenantAudited } from '../access.ts'
import type { ServerEnv } from '../context.ts'
import { parse } from '../parse-request.ts'

export const loginRequestsApiRoutes = new Hono<ServerEnv>()

function requestJson(view: LoginRequestView) {
  return {
    status: view.status,
    selling_partner_id: view.sellingPartnerId,
    region: view.region,
    tenant_id: view.tenantId,
    tenant_name: view.tenantName,
    reauthorization: view.reauthorization,
    expires_at: new Date(view.expiresAt).toISOString(),
  }
}

loginRequestsApiRoutes.get('/login-requests/:id', async (c) => {
  requireScope(c.var.principal, 'manage')
  const view = await c.var.runtime.loginRequests.describe(c.req.param('id'), {
    tenants: c.var.principal.tenants,
  })
  return c.json(requestJson(view))
})

loginRequestsApiRoutes.post('/login-requests/:id/approve', async (c) => {
  const { principal, runtime } = c.var
  requireScope(principal, 'manage')
  const body = parse(approveLoginRequestBodySchema, await c.req.json().catch(() => undefined))
  await requireTenantAudited(c, body.tenant_id)
  const approved = await runtime.loginRequests.approve(c.req.param('id'), {
    tenantId: body.tenant_id,
    tenantName: body.tenant_name ?? null,
    approvedBy: principal.keyId,
  })
  return c.json({
    redirect_url: approved.redirectUrl,
    expires_at: new Date(approved.expiresAt).toISOString(),
    request: requestJson(approved.request),
  })
})

loginRequestsApiRoutes.post('/login-requests/:id/reject', async (c) => {
  const { principal, runtime } = c.var
  requireScope(principal, 'manage')
  const view = await runtime.loginRequests.reject(c.req.param('id'), {
    by: principal.keyId,
    tenants: principal.tenants,
  })
  return c.json(requestJson(view))
})
