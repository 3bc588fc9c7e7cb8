/**
 * `POST /auth/o2/token`: the LWA token endpoint. Faults apply first (after reading the grant type, so
 * they can target grants), then the grant logic in token-grants.ts. Every call is counted.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { type Context, Hono } from 'hono'
import type { SimulatorContext } from './context.ts'
import { chooseFault, type FaultDecision, faultLatency } from './faults.ts'
import { newErrorIndex, newRequestId } from './ids.ts'
import { LWA_ERROR_CODE, LWA_ERRORS } from './lwa-errors.ts'
import { LWA_HOST, TOKEN_PATH } from './routes.ts'
import { grantTypeOf, processTokenRequest } from './token-grants.ts'
import { parseTokenBody } from './token-request.ts'

function jsonResponse(status: number, body: object, extra: Record<string, string> = {}): Response {
  const requestId =
    'request_id' in body && typeof body.request_id === 'string' ? body.request_id : newRequestId()
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      // Amazon's documented header value (spapi-facts.md §4.3).
      'Content-Type': 'application/json;charset=UTF-8',
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
      'x-amzn-RequestId': requestId,
      ...extra,
    },
  })
}

function errorResponse(
  status: number,
  error: string,
  description: string,
  extra: Record<string, string> = {},
) {
  const body = {
    error_description: description,
    error,
    error_index: newErrorIndex(),
    request_id: newRequestId(),
  }
  return jsonResponse(status, body, extra)
}

function faultResponse(fault: FaultDecision): Response {
  if (fault.kind === 'throttle') {
    const { description } = LWA_ERRORS.throttled
    return errorResponse(429, LWA_ERROR_CODE.throttled, description, {
      'Retry-After': String(fault.retryAfterSeconds),
    })
  }
  const key = fault.status === 500 ? 'server_error' : 'temporarily_unavailable'
  return errorResponse(fault.status, LWA_ERROR_CODE[key], LWA_ERRORS[key].description)
}

export function tokenRoutes(ctx: SimulatorContext): Hono {
  const app = new Hono()

  const handle = async (c: Context): Promise<Response> => {
    const params = parseTokenBody(c.req.header('content-type'), await c.req.text())
    const grant = grantTypeOf(params)
    const { faults } = ctx.state
    const latency = faultLatency(faults, grant)
    if (latency > 0) await delay(latency)
    const fault = chooseFault(faults, grant, ctx.now(), ctx.random)
    if (fault) {
      // A burst is a countdown: the decision is pure, the simulator's state keeps the count.
      if (fault.kind === 'burst' && faults.failNext !== undefined) faults.failNext -= 1
      ctx.state.count(grant, 'fault')
      return faultResponse(fault)
    }
    const result = processTokenRequest(ctx, params, c.req.header('authorization'))
    ctx.state.count(grant, result.ok ? 'ok' : 'error')
    if (result.ok) return jsonResponse(200, result.body)
    const extra: Record<string, string> = result.challenge ? { 'WWW-Authenticate': 'Basic realm="LWA"' } : {}
    return errorResponse(result.status, result.error, result.description, extra)
  }

  const methodNotAllowed = (c: Context) => c.body(null, 405, { Allow: 'POST' })

  for (const path of [TOKEN_PATH, `/${LWA_HOST}${TOKEN_PATH}`]) {
    app.post(path, handle)
    app.on(['GET', 'PUT', 'DELETE', 'PATCH'], path, methodNotAllowed)
  }
  return app
}
