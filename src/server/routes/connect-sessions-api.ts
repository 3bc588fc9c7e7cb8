/**
 * `POST /v1/connect-sessions`: a link the app's backend sends one of its users to, to connect (or reconnect)
 * a seller account for that user's tenant.
 */
import { Hono } from 'hono'
import { z } from 'zod'
import { createConnectSession, validateReturnTo } from '../../core/authorization/connect-sessions.ts'
import { SpConnectError } from '../../core/errors.ts'
import { ACCOUNT_TYPES, findMarketplace, REGIONS } from '../../core/regions.ts'
import type { ServerEnv } from '../context.ts'
import { parse } from './api.ts'

export const connectSessionsApiRoutes = new Hono<ServerEnv>()

const connectSessionBody = z
  .object({
    tenant_id: z.string().min(1).max(256),
    region: z.enum(REGIONS),
    account_type: z.enum(ACCOUNT_TYPES).default('seller'),
    marketplace: z.string().min(2).max(32).optional(),
    return_to: z.string().min(1).max(2048).optional(),
  })
  .strict()

connectSessionsApiRoutes.post('/connect-sessions', async (c) => {
  const { store, deps, config } = c.var.runtime
  const body = parse(connectSessionBody, await c.req.json().catch(() => undefined))
  const marketplace = body.marketplace ? findMarketplace(body.marketplace) : undefined
  if (body.marketplace && marketplace?.region !== body.region) {
    throw new SpConnectError('invalid_request', { detail: 'marketplace is unknown or not in the region' })
  }
  const session = await createConnectSession(store, deps, {
    tenantId: body.tenant_id,
    region: body.region,
    accountType: body.account_type,
    marketplace: marketplace?.country ?? null,
    returnTo: body.return_to === undefined ? null : validateReturnTo(body.return_to, config.returnOrigins),
  })
  return c.json(
    {
      url: `${config.publicUrl}/connect/s/${session.token}`,
      expires_at: new Date(session.expiresAt).toISOString(),
    },
    201,
  )
})
