/**
 * The control API under `/_control`: JSON endpoints that drive the simulator the way tests and developers
 * need (revoke, expire tokens, faults, counters, clock, self-authorization, app list, client-secret expiry
 * warnings, client-secret expiry times and usage, notification deliveries, SP-API usage-plan overrides). Not an
 * Amazon API. It never returns a client secret.
 * POST bodies must be `application/json`, which a cross-site HTML form cannot send.
 */
import { type Context, Hono } from 'hono'
import { z } from 'zod'
import { REGIONS } from '../domain/regions.ts'
import { newSellingPartnerId } from './ids.ts'
import { CONTROL_PREFIX } from './routes.ts'
import { GRANT_TYPES, type Simulator, type TokenFaults } from './types.ts'

const revokeBody = z.object({ sellingPartnerId: z.string().min(1), appId: z.string().min(1).optional() })
const expireBody = z.object({ sellingPartnerId: z.string().min(1).optional() })
const faultsBody = z.object({
  errorRate: z.number().min(0).max(1).optional(),
  throttleRate: z.number().min(0).max(1).optional(),
  retryAfterSeconds: z.number().nonnegative().optional(),
  latencyMs: z.number().nonnegative().optional(),
  outageUntil: z.number().optional(),
  grants: z.array(z.enum(GRANT_TYPES)).optional(),
})
const clockBody = z.object({ advanceMs: z.number().finite() })
const usagePlanBody = z.object({
  operation: z.string().min(1).max(200),
  rate: z.number().positive().finite(),
  burst: z.number().int().min(1).max(1_000_000),
})
const secretExpiryBody = z.object({
  appId: z.string().min(1),
  /** Simulator-clock ms. */
  expiresAt: z.number().finite().optional(),
  reason: z
    .string()
    .regex(/^[A-Z0-9_]{1,64}$/)
    .optional(),
  enforce: z.boolean().optional(),
})
const selfAuthorizeBody = z.object({
  appId: z.string().min(1),
  sellingPartnerId: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)
    .optional(),
  region: z.enum(REGIONS),
})

function reply(c: Context, status: 200 | 400 | 404 | 415, body: object): Response {
  return c.body(JSON.stringify(body), status, {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
  })
}

/** The JSON body parsed by `schema`, or the 4xx response to send. */
async function readJson<T>(
  c: Context,
  schema: z.ZodType<T>,
): Promise<{ ok: true; value: T } | { ok: false; response: Response }> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/json') {
    return {
      ok: false,
      response: reply(c, 415, { error: 'unsupported_media_type', message: 'Send application/json.' }),
    }
  }
  const text = await c.req.text()
  let raw: unknown
  try {
    raw = text.trim() === '' ? {} : JSON.parse(text)
  } catch {
    return {
      ok: false,
      response: reply(c, 400, { error: 'invalid_request', message: 'The body is not valid JSON.' }),
    }
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(body)'))].join(', ')
    return {
      ok: false,
      response: reply(c, 400, { error: 'invalid_request', message: `Invalid fields: ${fields}` }),
    }
  }
  return { ok: true, value: parsed.data }
}

function withoutUndefined(faults: z.infer<typeof faultsBody>): TokenFaults {
  const out: TokenFaults = {}
  if (faults.errorRate !== undefined) out.errorRate = faults.errorRate
  if (faults.throttleRate !== undefined) out.throttleRate = faults.throttleRate
  if (faults.retryAfterSeconds !== undefined) out.retryAfterSeconds = faults.retryAfterSeconds
  if (faults.latencyMs !== undefined) out.latencyMs = faults.latencyMs
  if (faults.outageUntil !== undefined) out.outageUntil = faults.outageUntil
  if (faults.grants !== undefined) out.grants = faults.grants
  return out
}

interface ControlDeps {
  readonly simulator: Omit<Simulator, 'app'>
  readonly faults: () => TokenFaults
  readonly clockOffsetMs: () => number
  readonly apps: () => { appId: string; name: string; status: 'draft' | 'published' }[]
}

export function controlRoutes(deps: ControlDeps): Hono {
  const { simulator: sim } = deps
  const app = new Hono().basePath(CONTROL_PREFIX)
  const appExists = (appId: string) => deps.apps().some((a) => a.appId === appId)
  const notFound = (c: Context) =>
    reply(c, 404, { error: 'not_found', message: 'No simulated app has that appId.' })
  const clock = () => ({ now: sim.now(), offsetMs: deps.clockOffsetMs() })

  app.get('/apps', (c) => reply(c, 200, { apps: deps.apps() }))

  app.post('/revoke', async (c) => {
    const body = await readJson(c, revokeBody)
    if (!body.ok) return body.response
    if (body.value.appId !== undefined && !appExists(body.value.appId)) return notFound(c)
    sim.revoke(body.value.sellingPartnerId, body.value.appId)
    return reply(c, 200, { ok: true })
  })

  app.post('/expire-tokens', async (c) => {
    const body = await readJson(c, expireBody)
    if (!body.ok) return body.response
    sim.expireAccessTokens(body.value.sellingPartnerId)
    return reply(c, 200, { ok: true })
  })

  app.get('/faults', (c) => reply(c, 200, deps.faults()))
  app.post('/faults', async (c) => {
    const body = await readJson(c, faultsBody)
    if (!body.ok) return body.response
    sim.setFaults(withoutUndefined(body.value))
    return reply(c, 200, deps.faults())
  })

  app.get('/counters', (c) => reply(c, 200, { ...sim.counters(), spapi: sim.spapiCounters() }))
  app.post('/reset-counters', async (c) => {
    const body = await readJson(c, z.object({}))
    if (!body.ok) return body.response
    sim.resetCounters()
    return reply(c, 200, { ...sim.counters(), spapi: sim.spapiCounters() })
  })

  app.get('/usage-plans', (c) => reply(c, 200, { overrides: sim.usagePlanOverrides() }))
  app.post('/usage-plans', async (c) => {
    const body = await readJson(c, usagePlanBody)
    if (!body.ok) return body.response
    const { operation, rate, burst } = body.value
    let name: string
    try {
      name = sim.setUsagePlan(operation, { rate, burst })
    } catch {
      return reply(c, 400, { error: 'invalid_request', message: 'No SP-API operation has that name.' })
    }
    return reply(c, 200, { operation: name, rate, burst, overrides: sim.usagePlanOverrides() })
  })

  app.get('/clock', (c) => reply(c, 200, clock()))
  app.post('/clock', async (c) => {
    const body = await readJson(c, clockBody)
    if (!body.ok) return body.response
    sim.advanceClock(body.value.advanceMs)
    return reply(c, 200, clock())
  })

  app.post('/secret-expiry', async (c) => {
    const body = await readJson(c, secretExpiryBody)
    if (!body.ok) return body.response
    const { appId, expiresAt, reason, enforce } = body.value
    if (!appExists(appId)) return notFound(c)
    sim.emitSecretExpiry(appId, {
      ...(expiresAt === undefined ? {} : { expiresAt }),
      ...(reason === undefined ? {} : { reason }),
      ...(enforce === undefined ? {} : { enforce }),
    })
    return reply(c, 200, { ok: true })
  })

  app.get('/client-secrets', (c) => {
    const appId = c.req.query('appId')
    if (appId === undefined || appId === '') {
      return reply(c, 400, { error: 'invalid_request', message: 'Invalid fields: appId' })
    }
    if (!appExists(appId)) return notFound(c)
    return reply(c, 200, { appId, secrets: sim.clientSecretInfo(appId) })
  })

  app.get('/notifications', (c) => reply(c, 200, { deliveries: sim.notificationLog() }))

  app.post('/self-authorize', async (c) => {
    const body = await readJson(c, selfAuthorizeBody)
    if (!body.ok) return body.response
    const { appId, region } = body.value
    if (!appExists(appId)) return notFound(c)
    const sellingPartnerId = body.value.sellingPartnerId ?? newSellingPartnerId()
    const refreshToken = sim.selfAuthorize(appId, sellingPartnerId, region)
    return reply(c, 200, { appId, sellingPartnerId, region, refreshToken })
  })
  return app
}
