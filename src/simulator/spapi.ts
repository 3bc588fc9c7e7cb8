/**
 * The simulated SP-API on the three production and three sandbox hosts. Every request goes through the same
 * steps, in Amazon's order as far as it shows (spapi-facts.md §6):
 * 1. the path must be an operation of the published models (src/core/spapi/operations.ts) that the simulator
 *    implements, else 404 NotFound;
 * 2. `x-amz-access-token` must hold a live LWA access token or Restricted Data Token (403 Unauthorized with
 *    Amazon's details otherwise). SigV4 headers are ignored, as SP-API has done since October 2023;
 * 3. the token must fit the operation: a seller token of the host's region for seller operations, a grantless
 *    token with the operation's scope for grantless ones, and an RDT only for the restricted resources it names
 *    (403 with empty details otherwise, like a missing role);
 * 4. the usage plan of (app, seller, operation) must have a token left: 429 QuotaExceeded otherwise;
 * 5. sandbox hosts answer the models' static sandbox responses; production hosts run the operation.
 */
import { type Context, Hono } from 'hono'
import {
  findOperation,
  findOperationByName,
  OPERATIONS,
  type SpApiOperation,
} from '../core/spapi/operations.ts'
import type { SimulatorContext } from './context.ts'
import { type SpapiHostInfo, spapiHostInfo } from './routes.ts'
import type { GrantlessCaller, OperationImpl, SellerCaller, SpapiCall } from './spapi/call.ts'
import { DESTINATION_OPERATIONS } from './spapi/destinations.ts'
import { ORDERS_OPERATIONS } from './spapi/orders.ts'
import { coveringResource, isRdt, verifyRdt } from './spapi/rdt.ts'
import { notFound, QUOTA_EXCEEDED, spapiErrors } from './spapi/respond.ts'
import { sandboxResponse } from './spapi/sandbox.ts'
import { SELLERS_OPERATIONS } from './spapi/sellers.ts'
import { TOKENS_OPERATIONS } from './spapi/tokens-api.ts'
import { isGrantless, verifyAccessToken } from './tokens.ts'

export { sellerParticipations } from './spapi/sellers.ts'

export const SPAPI_DENIED = {
  missing: 'Access token is missing in the request header.',
  invalid: 'The access token you provided is revoked, malformed or invalid.',
  // [U] in the facts: a variant for expired tokens exists per third-party summaries; this text is chosen.
  expired: 'The access token you provided has expired.',
  // Observed for a wrong region or a missing role: empty details (spapi-facts.md §6.2).
  noAccess: '',
} as const

/** The operations the simulator runs, by table name (see `SpApiOperation.name`). */
const IMPLEMENTED: ReadonlyMap<SpApiOperation, OperationImpl> = (() => {
  const all: Record<string, OperationImpl> = {
    ...(SELLERS_OPERATIONS as Record<string, OperationImpl>),
    ...(ORDERS_OPERATIONS as Record<string, OperationImpl>),
    ...(TOKENS_OPERATIONS as Record<string, OperationImpl>),
    ...(DESTINATION_OPERATIONS as Record<string, OperationImpl>),
  }
  const map = new Map<SpApiOperation, OperationImpl>()
  for (const [name, impl] of Object.entries(all)) {
    const operation = findOperationByName(name)
    if (!operation) throw new Error(`The simulator implements ${name}, which the operations table lacks.`)
    map.set(operation, impl)
  }
  return map
})()

/**
 * The operation a control-API caller means: a table name (`orders.v0.getOrders`), or an operationId that only
 * one operation has (`getMarketplaceParticipations`).
 */
export function resolveOperation(name: string): SpApiOperation | undefined {
  const exact = findOperationByName(name)
  if (exact) return exact
  const byId = OPERATIONS.filter((op) => op.operationId === name)
  return byId.length === 1 ? byId[0] : undefined
}

function denied(c: Context, details: string): Response {
  return spapiErrors(c, 403, [
    { code: 'Unauthorized', message: 'Access to requested resource is denied.', details },
  ])
}

/** The operation's path: the request path after the host segment (the app may be mounted under a prefix). */
function operationPath(c: Context, host: string): string {
  const path = c.req.path
  const marker = `/${host}/`
  const at = path.indexOf(marker)
  return at < 0 ? '' : path.slice(at + marker.length - 1)
}

type Authenticated = { ok: true; caller: SellerCaller | GrantlessCaller } | { ok: false; response: Response }

/** Steps 2 and 3: who calls, and whether that token may call this operation on this host. */
function authenticate(
  ctx: SimulatorContext,
  c: Context,
  host: SpapiHostInfo,
  operation: SpApiOperation,
  impl: OperationImpl,
  path: string,
): Authenticated {
  const fail = (details: string): Authenticated => ({ ok: false, response: denied(c, details) })
  const token = c.req.header('x-amz-access-token')?.trim()
  if (token === undefined || token === '') return fail(SPAPI_DENIED.missing)
  const now = ctx.now()
  if (isRdt(token)) {
    const rdt = verifyRdt(ctx.signingSecret, token)
    if (!rdt) return fail(SPAPI_DENIED.invalid)
    if (now >= rdt.exp || ctx.state.isForcedExpired(rdt.sp, rdt.n)) return fail(SPAPI_DENIED.expired)
    if (ctx.state.isRevoked({ sellingPartnerId: rdt.sp, clientId: rdt.c, serial: rdt.gn })) {
      return fail(SPAPI_DENIED.invalid)
    }
    // [U] Amazon's exact answer to an RDT used outside its resources is not published; 403 as for a missing role.
    const resource = operation.restricted ? coveringResource(rdt, operation.method, path) : undefined
    if (!resource || impl.auth !== 'seller' || rdt.r !== host.region) return fail(SPAPI_DENIED.noAccess)
    return {
      ok: true,
      caller: {
        kind: 'seller',
        clientId: rdt.c,
        sellingPartnerId: rdt.sp,
        region: rdt.r,
        grantSerial: rdt.gn,
        rdt: resource,
      },
    }
  }
  const claims = verifyAccessToken(ctx.signingSecret, token)
  if (!claims) return fail(SPAPI_DENIED.invalid)
  const sellingPartnerId = isGrantless(claims) ? undefined : claims.sp
  if (now >= claims.exp || ctx.state.isForcedExpired(sellingPartnerId, claims.n)) {
    return fail(SPAPI_DENIED.expired)
  }
  if (isGrantless(claims)) {
    const scopes = claims.s.split(' ')
    // A grantless token carries no seller, so a seller operation is denied like a missing role.
    if (impl.auth === 'seller' || !scopes.includes(impl.auth.grantlessScope))
      return fail(SPAPI_DENIED.noAccess)
    return { ok: true, caller: { kind: 'grantless', clientId: claims.c, scopes } }
  }
  if (ctx.state.isRevoked({ sellingPartnerId: claims.sp, clientId: claims.c, serial: claims.gn })) {
    return fail(SPAPI_DENIED.invalid)
  }
  if (impl.auth !== 'seller' || claims.r !== host.region) return fail(SPAPI_DENIED.noAccess)
  return {
    ok: true,
    caller: {
      kind: 'seller',
      clientId: claims.c,
      sellingPartnerId: claims.sp,
      region: claims.r,
      grantSerial: claims.gn,
    },
  }
}

export function spapiRoutes(ctx: SimulatorContext): Hono {
  const app = new Hono()

  app.all('/:host/*', async (c, next) => {
    const hostName = c.req.param('host')
    const host = spapiHostInfo(hostName)
    if (!host) return next()
    const path = operationPath(c, hostName)
    const match = findOperation(c.req.method, path)
    const impl = match && IMPLEMENTED.get(match.operation)
    if (!match || !impl) return notFound(c)
    const { operation, params } = match
    const auth = authenticate(ctx, c, host, operation, impl, path)
    if (!auth.ok) return auth.response
    const { caller } = auth
    const plans = ctx.state.spapi.usagePlans
    const sellerKey = caller.kind === 'seller' ? caller.sellingPartnerId : ''
    if (!plans.take(operation, caller.clientId, sellerKey, ctx.now())) {
      return spapiErrors(c, 429, [QUOTA_EXCEEDED])
    }
    const call: SpapiCall = { c, ctx, host, operation, params, rate: plans.planOf(operation).rate, caller }
    if (host.sandbox) return sandboxResponse(call)
    return impl.handle(call)
  })
  return app
}
