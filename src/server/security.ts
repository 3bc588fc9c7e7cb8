/**
 * Response headers every sp-connect page and API answer carries (SECURITY.md §1): no caching of anything that
 * may hold a token, no referrer leaking state or codes, a strict CSP with no third-party resources, no framing.
 */
import type { MiddlewareHandler } from 'hono'
import { SpConnectError } from '../domain/errors.ts'

/** Longest URL (path + query) we accept; real callbacks are well under 1 KiB. */
const MAX_URL_LENGTH = 4096

interface SecurityHeaderOptions {
  formActionOrigins: readonly string[]
  /** Other origins images may come from (the brand logo). */
  imageOrigins?: readonly string[]
  hsts: boolean
}

/** The header set, built once per app (name, value), in the order they are written. */
export function securityHeaderList(options: SecurityHeaderOptions): ReadonlyArray<readonly [string, string]> {
  const formAction = ["'self'", ...options.formActionOrigins].join(' ')
  const csp = [
    "default-src 'none'",
    "style-src 'self'",
    // Pico draws select arrows and checkmarks as data: SVGs.
    ["img-src 'self' data:", ...(options.imageOrigins ?? [])].join(' '),
    // The connect form's redirect goes on to Seller/Vendor Central; browsers check form-action on redirects.
    `form-action ${formAction}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ')
  return Object.freeze([
    ['Content-Security-Policy', csp],
    ['Referrer-Policy', 'no-referrer'],
    ['Cache-Control', 'no-store'],
    ['X-Content-Type-Options', 'nosniff'],
    ['X-Frame-Options', 'DENY'],
    ['Cross-Origin-Opener-Policy', 'same-origin'],
    ['Cross-Origin-Resource-Policy', 'same-origin'],
    ...(options.hsts ? [['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'] as const] : []),
  ] as const)
}

/**
 * Sets the headers on every answer, whatever the route did. They are set before the route runs, so the
 * response it builds with `c.json`/`c.html`/`c.body` (and the error handler's) is created with them: setting
 * a header on a finished response makes Hono copy it into a new one each time and makes @hono/node-server
 * leave its fast path for a stream (docs/decisions/0014-token-api-hot-path.md). Afterwards the finished
 * response is checked, and a route that returned its own `Response` or set one of these headers to something
 * else gets ours written over it, as before.
 */
export function securityHeaders(options: SecurityHeaderOptions): MiddlewareHandler {
  const headers = securityHeaderList(options)
  return async (c, next) => {
    for (const [name, value] of headers) c.header(name, value)
    await next()
    const written = c.res.headers
    for (const [name, value] of headers) {
      if (written.get(name) !== value) {
        for (const [n, v] of headers) c.header(n, v)
        return
      }
    }
  }
}

/**
 * Refuses a URL (path + query, as parsed) longer than {@link MAX_URL_LENGTH}. Parsing can only lengthen a short
 * URL up to nine times (a UTF-16 unit percent-encoded as three UTF-8 bytes), so a raw URL that short cannot be
 * over the limit and is not parsed at all.
 */
export function refuseLongUrls(): MiddlewareHandler {
  return async (c, next) => {
    const raw = c.req.url
    if (raw.length > MAX_URL_LENGTH / 9) {
      const url = new URL(raw)
      if (url.pathname.length + url.search.length > MAX_URL_LENGTH)
        throw new SpConnectError('invalid_request', { detail: 'URL too long' })
    }
    await next()
  }
}
