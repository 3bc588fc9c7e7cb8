/**
 * Credentials never travel in a query string (RFC 6750 §2.3 and §5.3, RFC 9700 §4.3.2): URLs end up in logs,
 * browser history, proxies and Referer headers. Any request whose query has a parameter named like a
 * credential is refused with 400 `invalid_request` on every route, before anything reads it, so a client that
 * tried learns at once instead of having its key quietly work (or quietly leak). Path parameters such as the
 * connect-link token in `/connect/s/:token` are unaffected.
 */
import type { MiddlewareHandler } from 'hono'
import { SpConnectError } from '../domain/errors.ts'

/** Query parameter names refused everywhere, compared case-insensitively. */
const CREDENTIAL_QUERY_PARAMETERS: ReadonlySet<string> = new Set([
  'api_key',
  'apikey',
  'key',
  'access_token',
  'token',
  'refresh_token',
  'client_secret',
  'authorization',
  'password',
])

/** The first credential-like parameter name in `search` (a URL's `?…`), lower-cased, if any. */
export function credentialQueryParameter(search: string): string | undefined {
  if (search.length <= 1) return undefined
  for (const name of new URLSearchParams(search).keys()) {
    const lower = name.toLowerCase()
    if (CREDENTIAL_QUERY_PARAMETERS.has(lower)) return lower
  }
  return undefined
}

/** Middleware refusing requests with credentials in the query string. */
export function refuseQueryCredentials(): MiddlewareHandler {
  return async (c, next) => {
    // A URL without a `?` has no query to parse (most API calls): skip parsing it.
    const raw = c.req.url
    const found = raw.includes('?') ? credentialQueryParameter(new URL(raw).search) : undefined
    if (found !== undefined) {
      // The parameter's name only: its value is the very secret that must not be echoed or logged.
      throw new SpConnectError('invalid_request', {
        detail: `credentials are not accepted in the query string (${found}); send an Authorization header`,
      })
    }
    await next()
  }
}
