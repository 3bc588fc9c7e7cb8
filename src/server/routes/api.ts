/**
 * The API for the application's backend, behind `Authorization: Bearer <api key>`. Errors are
 * `{error: {code, message}}` with the stable codes of core/errors.ts.
 */
import { Hono } from 'hono'
import { z } from 'zod'
import { SpConnectError } from '../../core/errors.ts'
import { CONNECTION_STATUSES } from '../../store/store.ts'
import { bearerToken, findApiKey } from '../api-keys.ts'
import type { ServerEnv } from '../context.ts'
import { connectionJson, eventJson } from '../serialize.ts'
import { connectSessionsApiRoutes } from './connect-sessions-api.ts'
import { eventsApiRoutes } from './events-api.ts'
import { notificationsApiRoutes } from './notifications-api.ts'

export const apiRoutes = new Hono<ServerEnv>()

apiRoutes.use('*', async (c, next) => {
  const key = findApiKey(c.var.runtime.config.apiKeys, bearerToken(c.req.header('authorization')))
  if (!key) throw new SpConnectError('unauthenticated')
  c.set('apiKeyName', key.name)
  await next()
})

const listQuery = z
  .object({
    tenant_id: z.string().min(1).max(256).optional(),
    status: z.enum(CONNECTION_STATUSES).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    after: z.string().min(1).max(128).optional(),
  })
  .strict()

apiRoutes.get('/connections', async (c) => {
  const q = parse(listQuery, c.req.query())
  const rows = await c.var.runtime.store.listConnections({
    ...(q.tenant_id ? { tenantId: q.tenant_id } : {}),
    ...(q.status ? { status: q.status } : {}),
    ...(q.after ? { after: q.after } : {}),
    limit: q.limit,
  })
  const last = rows.at(-1)
  return c.json({
    data: rows.map(connectionJson),
    next_after: rows.length === q.limit && last ? last.id : null,
  })
})

apiRoutes.get('/connections/:id', async (c) => {
  const row = await c.var.runtime.store.getConnection(c.req.param('id'))
  if (!row) throw new SpConnectError('connection_not_found')
  return c.json(connectionJson(row))
})

apiRoutes.get('/connections/:id/events', async (c) => {
  const { store } = c.var.runtime
  const row = await store.getConnection(c.req.param('id'))
  if (!row) throw new SpConnectError('connection_not_found')
  const events = await store.listEvents({ connectionId: row.id, limit: 200 })
  return c.json({ data: events.map(eventJson) })
})

apiRoutes.delete('/connections/:id', async (c) => {
  const { store, tokens, deps, events } = c.var.runtime
  const row = await store.disconnectConnection(c.req.param('id'), deps.now())
  if (!row) throw new SpConnectError('connection_not_found')
  tokens.forget(row.id)
  await events.record('connection.disconnected', row.id, { by: `api:${c.var.apiKeyName}` })
  return c.json(connectionJson(row))
})

apiRoutes.post('/connections/:id/access-token', async (c) => {
  const token = await c.var.runtime.tokens.getAccessToken(c.req.param('id'))
  return c.json({
    access_token: token.accessToken,
    token_type: 'bearer',
    expires_at: new Date(token.expiresAt).toISOString(),
  })
})

const grantlessBody = z.object({ scope: z.string().min(1).max(512) }).strict()

apiRoutes.post('/grantless-tokens', async (c) => {
  const body = parse(grantlessBody, await c.req.json().catch(() => undefined))
  const token = await c.var.runtime.grantless.getToken(body.scope)
  return c.json({
    access_token: token.accessToken,
    token_type: 'bearer',
    expires_at: new Date(token.expiresAt).toISOString(),
  })
})

apiRoutes.route('/', connectSessionsApiRoutes)
apiRoutes.route('/', eventsApiRoutes)
apiRoutes.route('/', notificationsApiRoutes)

export function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value)
  if (!result.success) {
    const fields = result.error.issues.map((issue) => issue.path.join('.') || 'body').join(', ')
    throw new SpConnectError('invalid_request', { detail: `invalid: ${fields}` })
  }
  return result.data
}
