/**
 * The API for the application's backend, behind `Authorization: Bearer <api key>`. Errors are
 * `{error: {code, message}}` with the stable codes of core/errors.ts.
 *
 * Every route checks the key's scope (`read` for GETs, `tokens` for tokens, `manage` for changes) and, for a
 * tenant-scoped key, its tenants: another tenant's connection, or one without a tenant, is a 404 exactly like a
 * missing one (see ../access.ts). Listing with `tenant_id` of a tenant the key does not have gives an empty list.
 */
import { Hono } from 'hono'
import { grantlessTokenBodySchema, listConnectionsQuerySchema } from '../../api-schemas/connections.ts'
import { canSeeTenant, requireAllTenants, requireScope } from '../../core/access/principal.ts'
import { SpConnectError } from '../../domain/errors.ts'
import type { ConnectionRecord } from '../../store/store.ts'
import {
  authenticateApiKey,
  loadVisibleConnection,
  recordTokenIssued,
  requireVisibleConnectionId,
} from '../access.ts'
import { bearerToken } from '../api-keys.ts'
import type { ServerEnv } from '../context.ts'
import { parse } from '../parse-request.ts'
import { readBodyCapped } from '../read-body.ts'
import { connectionJson, eventJson } from '../serialize.ts'
import { apiKeysApiRoutes } from './api-keys-api.ts'
import { connectSessionsApiRoutes } from './connect-sessions-api.ts'
import { eventsApiRoutes } from './events-api.ts'
import { loginRequestsApiRoutes } from './login-requests-api.ts'
import { notificationsApiRoutes } from './notifications-api.ts'
import { openApiRoute } from './openapi-api.ts'
import { spapiApiRoutes } from './spapi-api.ts'

export const apiRoutes = new Hono<ServerEnv>()

// Before the API-key check: the contract documents shapes only, no data or secrets (decision 0011).
apiRoutes.route('/', openApiRoute)

apiRoutes.use('*', async (c, next) => {
  const principal = await authenticateApiKey(c.var.runtime, bearerToken(c.req.header('authorization')))
  if (!principal) throw new SpConnectError('unauthenticated')
  c.set('principal', principal)
  c.set('apiKeyName', principal.name)
  await next()
})

/**
 * JSON bodies of /v1 are small (the largest, an RDT request, is 50 resources): without a bound, one key could
 * make the service buffer gigabytes before zod ever sees them. The SP-API passthrough streams bodies and has
 * its own cap (spapi-api.ts).
 */
const MAX_JSON_BODY_BYTES = 256 * 1024
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const SPAPI_PASSTHROUGH = /\/connections\/[^/]+\/spapi(\/|$)/
apiRoutes.use('*', async (c, next) => {
  // Only methods with a body: touching c.req.raw materialises a whole Request on @hono/node-server.
  if (BODY_METHODS.has(c.req.method) && !SPAPI_PASSTHROUGH.test(c.req.path) && c.req.raw.body !== null) {
    // Buffered here, bounded, so routes can parse it as usual.
    c.req.raw = new Request(c.req.raw, { body: await readBodyCapped(c, MAX_JSON_BODY_BYTES) })
  }
  await next()
})

apiRoutes.get('/connections', async (c) => {
  const { principal } = c.var
  requireScope(principal, 'read')
  const q = parse(listConnectionsQuerySchema, c.req.query())
  const filter = {
    ...(q.status ? { status: q.status } : {}),
    ...(q.after ? { after: q.after } : {}),
    limit: q.limit,
  }
  const store = c.var.runtime.store
  let rows: ConnectionRecord[]
  if (q.tenant_id !== undefined) {
    // Another tenant's id gives an empty page, as a tenant without connections would.
    rows = canSeeTenant(principal, q.tenant_id)
      ? await store.listConnections({ ...filter, tenantId: q.tenant_id })
      : []
  } else if (principal.tenants === null) {
    rows = await store.listConnections(filter)
  } else {
    // One keyset page per tenant, merged: the first `limit` of the union in (created_at, id) order is the
    // union's next page, since each tenant's page holds that tenant's first `limit` after the cursor.
    const pages = await Promise.all(
      principal.tenants.map((tenantId) => store.listConnections({ ...filter, tenantId })),
    )
    rows = pages
      .flat()
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, q.limit)
  }
  const last = rows.at(-1)
  return c.json({
    data: rows.map(connectionJson),
    next_after: rows.length === q.limit && last ? last.id : null,
  })
})

apiRoutes.get('/connections/:id', async (c) => {
  requireScope(c.var.principal, 'read')
  const row = await loadVisibleConnection(c, c.req.param('id'))
  return c.json(connectionJson(row))
})

apiRoutes.get('/connections/:id/events', async (c) => {
  requireScope(c.var.principal, 'read')
  const { store } = c.var.runtime
  const row = await loadVisibleConnection(c, c.req.param('id'))
  const events = await store.listEvents({ connectionId: row.id, limit: 200 })
  return c.json({ data: events.map(eventJson) })
})

apiRoutes.delete('/connections/:id', async (c) => {
  requireScope(c.var.principal, 'manage')
  const { store, tokens, deps, events } = c.var.runtime
  const visible = await loadVisibleConnection(c, c.req.param('id'))
  const row = await store.disconnectConnection(visible.id, deps.now())
  if (!row) throw new SpConnectError('connection_not_found')
  tokens.forget(row.id)
  c.var.runtime.spapi.forget(row.id)
  await events.record('connection.disconnected', row.id, {
    by: `api:${c.var.principal.name}`,
    key_id: c.var.principal.keyId,
  })
  return c.json(connectionJson(row))
})

apiRoutes.post('/connections/:id/access-token', async (c) => {
  const { principal, runtime } = c.var
  requireScope(principal, 'tokens')
  // No store read per call once the connection is known (access.ts); the token manager checks its status.
  const id = await requireVisibleConnectionId(c, c.req.param('id'))
  const token = await runtime.tokens.getAccessToken(id)
  await recordTokenIssued(runtime, principal, id, token.expiresAt)
  c.header('cache-control', 'no-store')
  return c.json({
    access_token: token.accessToken,
    token_type: 'bearer',
    expires_at: new Date(token.expiresAt).toISOString(),
  })
})

apiRoutes.post('/grantless-tokens', async (c) => {
  // Grantless tokens act for the whole application, not for a seller: all-tenant keys only.
  requireScope(c.var.principal, 'tokens')
  requireAllTenants(c.var.principal)
  const body = parse(grantlessTokenBodySchema, await c.req.json().catch(() => undefined))
  const token = await c.var.runtime.grantless.getToken(body.scope)
  c.header('cache-control', 'no-store')
  return c.json({
    access_token: token.accessToken,
    token_type: 'bearer',
    expires_at: new Date(token.expiresAt).toISOString(),
  })
})

apiRoutes.route('/', connectSessionsApiRoutes)
apiRoutes.route('/', loginRequestsApiRoutes)
apiRoutes.route('/', apiKeysApiRoutes)
apiRoutes.route('/', eventsApiRoutes)
apiRoutes.route('/', notificationsApiRoutes)
apiRoutes.route('/', spapiApiRoutes)
