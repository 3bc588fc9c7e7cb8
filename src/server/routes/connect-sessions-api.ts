/**
 * `POST /v1/connect-sessions`: a link the app's backend sends one of its users to, to connect a seller account
 * for that user's tenant (`{tenant_id, region, …}`), or to re-authorize one connection that tenant already owns
 * (`{connection_id}`: the link can then only re-authorize that connection, for that seller and region).
 * Needs the `manage` scope and a key that may act for the tenant.
 */
import { Hono } from 'hono'
import { newConnectionBodySchema, reconnectBodySchema } from '../../api-schemas/connect-sessions.ts'
import { requireScope } from '../../core/access/principal.ts'
import { createConnectSession } from '../../core/authorization/connect-sessions.ts'
import { validateReturnTo } from '../../core/authorization/return-to.ts'
import { isTenantId, requireId } from '../../core/ids.ts'
import { SpConnectError } from '../../domain/errors.ts'
import { type AccountType, findMarketplace, type Region } from '../../domain/regions.ts'
import { loadVisibleConnection, requireTenantAudited } from '../access.ts'
import type { ServerEnv } from '../context.ts'
import { parse } from '../parse-request.ts'
import { returnToPolicy, serviceUrl } from '../public-url.ts'

export const connectSessionsApiRoutes = new Hono<ServerEnv>()

connectSessionsApiRoutes.post('/connect-sessions', async (c) => {
  const { store, deps, config } = c.var.runtime
  requireScope(c.var.principal, 'manage')
  const raw: unknown = await c.req.json().catch(() => undefined)
  const reconnect = typeof raw === 'object' && raw !== null && 'connection_id' in raw
  let target: { tenantId: string; region: Region; accountType: AccountType; connectionId: string | null }
  let body: { marketplace?: string | undefined; return_to?: string | undefined }
  if (reconnect) {
    const parsed = parse(reconnectBodySchema, raw)
    // Owner only: a key that cannot see the connection gets the same 404 as for a missing one (audited).
    const connection = await loadVisibleConnection(c, parsed.connection_id)
    if (connection.tenantId === null) {
      throw new SpConnectError('invalid_request', {
        detail: 'connection has no tenant: reconnect it from the operator console',
      })
    }
    target = {
      tenantId: connection.tenantId,
      region: connection.region,
      accountType: connection.accountType,
      connectionId: connection.id,
    }
    body = parsed
  } else {
    const parsed = parse(newConnectionBodySchema, raw)
    requireId(isTenantId, parsed.tenant_id, 'tenant id')
    await requireTenantAudited(c, parsed.tenant_id)
    target = {
      tenantId: parsed.tenant_id,
      region: parsed.region,
      accountType: parsed.account_type,
      connectionId: null,
    }
    body = parsed
  }
  const marketplace = body.marketplace ? findMarketplace(body.marketplace) : undefined
  if (body.marketplace && marketplace?.region !== target.region) {
    throw new SpConnectError('invalid_request', { detail: 'marketplace is unknown or not in the region' })
  }
  const session = await createConnectSession(store, deps, {
    ...target,
    marketplace: marketplace?.country ?? null,
    returnTo: body.return_to === undefined ? null : validateReturnTo(body.return_to, returnToPolicy(config)),
  })
  return c.json(
    {
      url: serviceUrl(config, `/connect/s/${session.token}`),
      expires_at: new Date(session.expiresAt).toISOString(),
      ...(target.connectionId ? { connection_id: target.connectionId } : {}),
    },
    201,
  )
})
