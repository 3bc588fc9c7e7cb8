/**
 * The SP-API doors of the /v1 API, for apps that let sp-connect hold the seller's token:
 *
 * - `ANY /v1/connections/:id/spapi/<sp-api path>?<query>`: the call goes through the library's one call path
 *   (core/spapi/client.ts): known operations only, the connection's regional endpoint, the usage-plan queue,
 *   safe retries, Restricted Data Tokens for restricted operations. Request and response bodies stream (an
 *   answer of known length up to 64 KiB is read first and sent in one piece); only
 *   allow-listed headers pass either way (the API key in `Authorization` never reaches Amazon). Optional
 *   `x-sp-connect-data-elements: buyerInfo,shippingAddress` narrows a restricted call's RDT. Our own throttling
 *   answers 429 with Retry-After and `spapi_throttled` / `spapi_queue_full`; Amazon's answers pass through.
 * - `POST /v1/connections/:id/restricted-data-tokens {restrictedResources[], targetApplication?}`: an RDT for
 *   callers who call SP-API themselves. Audited as `token.issued` with `kind: 'restricted_data_token'`; the token is never logged.
 *
 * Both need the `tokens` scope (they act with the seller's token) and a key that may see the connection.
 */
import type { HttpBindings } from '@hono/node-server'
import { type Context, Hono } from 'hono'
import type { ContentfulStatusCode, StatusCode } from 'hono/utils/http-status'
import { z } from 'zod'
import { restrictedDataTokenRequestSchema } from '../../api-schemas/spapi.ts'
import { requireScope } from '../../core/access/principal.ts'
import { readCapped } from '../../core/spapi/body.ts'
import { DATA_ELEMENTS } from '../../core/spapi/restricted-data-tokens.ts'
import { SpConnectError } from '../../domain/errors.ts'
import { loadVisibleConnection, recordTokenIssued, requireVisibleConnectionId } from '../access.ts'
import type { ServerEnv } from '../context.ts'
import { parse } from '../parse-request.ts'

export const spapiApiRoutes = new Hono<ServerEnv>()

/** Largest request body the passthrough forwards (declared or streamed). */
const MAX_PASSTHROUGH_BODY_BYTES = 32 * 1024 * 1024
const SPAPI_PREFIX = /^\/v1\/connections\/[^/]+\/spapi(?=\/)/
/** An answer of known length up to this size is read before it is sent on (one write instead of three). */
const BUFFERED_ANSWER_BYTES = 64 * 1024
/** Plain or encoded dot segments in the raw request target, before any URL parser normalised them away. */
const RAW_DOT_SEGMENT = /\/(\.|%2e){1,2}(\/|\?|$)/i
/**
 * An origin-form target (`/path?query`) of characters WHATWG URL parsing keeps as they are in path and query:
 * RFC 3986 pchar, `/` and `?`, except `'` (percent-encoded in the query of http URLs).
 */
const PLAIN_TARGET = /^\/[A-Za-z0-9\-._~!$&()*+,;=:@%/?]*$/

const dataElementsHeader = z.array(z.enum(DATA_ELEMENTS)).max(DATA_ELEMENTS.length)

spapiApiRoutes.all('/connections/:id/spapi/*', async (c) => {
  const { principal, runtime } = c.var
  requireScope(principal, 'tokens')
  // The id is all the call needs: the tenant check runs per request (from memory once the connection was
  // read), and the connection's status is the token manager's to check, as for the token API.
  const connectionId = await requireVisibleConnectionId(c, c.req.param('id'))
  const target = spapiTarget(c)
  const declared = Number(c.req.header('content-length') ?? '0')
  if (!(declared <= MAX_PASSTHROUGH_BODY_BYTES)) throw new SpConnectError('payload_too_large')
  const elements = c.req.header('x-sp-connect-data-elements')
  const dataElements =
    elements === undefined
      ? undefined
      : parse(
          dataElementsHeader,
          elements
            .split(',')
            .map((e) => e.trim())
            .filter(Boolean),
        )
  const method = c.req.method
  const request = c.req.raw
  const response = await runtime.spapi.call(connectionId, {
    method,
    path: target,
    headers: request.headers,
    body: method === 'GET' || method === 'HEAD' ? null : request.body,
    signal: request.signal,
    ...(dataElements === undefined ? {} : { dataElements }),
  })
  // Built with c.body, so the headers the middleware set before the route (security headers, request id) are
  // in it from the start: a Response of our own would be copied after next() to add them, and
  // @hono/node-server would then probe the copied stream with a timer before writing (about a millisecond per
  // call). SP-API answers carry seller data (and PII with an RDT): nothing may keep a copy.
  const headers: Record<string, string> = { 'cache-control': 'no-store' }
  for (const [name, value] of response.headers) headers[name] = value
  const body = method === 'HEAD' ? null : response.body
  if (body === null) {
    await response.body?.cancel().catch(() => {})
    return c.body(null, response.status as StatusCode, headers)
  }
  const status = response.status as ContentfulStatusCode
  if (response.bodyLength === null || response.bodyLength > BUFFERED_ANSWER_BYTES)
    return c.body(body, status, headers)
  // A small answer of known size goes out in one write, with its length: streamed, @hono/node-server would
  // flush the headers on their own and end with a chunked terminator, three writes for one short answer.
  let bytes: Uint8Array
  try {
    bytes = await readCapped(body, BUFFERED_ANSWER_BYTES)
  } catch (cause) {
    throw cause instanceof SpConnectError
      ? cause
      : new SpConnectError('spapi_unreachable', { cause, detail: 'SP-API answer broke off' })
  }
  return c.body(bytes as Uint8Array<ArrayBuffer>, status, headers)
})

/**
 * The SP-API path and query of the request, still percent-encoded, as received. A request target made only of
 * characters WHATWG URL parsing leaves alone is taken as it is; anything else goes through the parser, as
 * before, so both give the same path. Dot segments and backslashes in the raw target are refused first, since
 * the parser would resolve them away.
 */
function spapiTarget(c: Context<ServerEnv>): string {
  const raw = (c.env as Partial<HttpBindings> | undefined)?.incoming?.url
  if (raw !== undefined && (RAW_DOT_SEGMENT.test(raw) || raw.includes('\\')))
    throw new SpConnectError('invalid_request', { detail: 'SP-API path has dot segments' })
  let pathname: string
  let search: string
  if (raw !== undefined && PLAIN_TARGET.test(raw)) {
    const mark = raw.indexOf('?')
    pathname = mark === -1 ? raw : raw.slice(0, mark)
    search = mark === -1 ? '' : raw.slice(mark)
  } else {
    const url = new URL(c.req.url)
    pathname = url.pathname
    search = url.search
  }
  // The SP-API path is what follows `/spapi` (anything before `/v1/connections/`, a base path, goes first).
  pathname = pathname.replace(/^.*?(?=\/v1\/connections\/)/, '')
  const prefix = SPAPI_PREFIX.exec(pathname)
  if (!prefix) throw new SpConnectError('invalid_request', { detail: 'SP-API path missing' })
  return `${pathname.slice(prefix[0].length)}${search}`
}

spapiApiRoutes.post('/connections/:id/restricted-data-tokens', async (c) => {
  const { principal, runtime } = c.var
  requireScope(principal, 'tokens')
  const row = await loadVisibleConnection(c, c.req.param('id'))
  const body = parse(restrictedDataTokenRequestSchema, await c.req.json().catch(() => undefined))
  const token = await runtime.spapi.createRestrictedDataToken(
    row.id,
    body.restrictedResources.map(({ method, path, dataElements }) => ({
      method,
      path,
      ...(dataElements === undefined ? {} : { dataElements }),
    })),
    body.targetApplication,
  )
  await recordTokenIssued(runtime, principal, row.id, token.expiresAt, 'restricted_data_token')
  c.header('cache-control', 'no-store')
  return c.json({ restricted_data_token: token.restrictedDataToken, expires_in: token.expiresIn })
})
