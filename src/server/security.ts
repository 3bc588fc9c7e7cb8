/**
 * Response headers every sp-connect page and API answer carries (SECURITY.md §1): no caching of anything that
 * may hold a token, no referrer leaking state or codes, a strict CSP with no third-party resources, no framing.
 */
import type { MiddlewareHandler } from 'hono'

/** Longest URL (path + query) we accept; real callbacks are well under 1 KiB. */
export const MAX_URL_LENGTH = 4096

export function securityHeaders(options: {
  formActionOrigins: readonly string[]
  /** Other origins images may come from (the brand logo). */
  imageOrigins?: readonly string[]
  hsts: boolean
}): MiddlewareHandler {
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
  return async (c, next) => {
    await next()
    c.header('Content-Security-Policy', csp)
    c.header('Referrer-Policy', 'no-referrer')
    c.header('Cache-Control', 'no-store')
    c.header('X-Content-Type-Options', 'nosniff')
    c.header('X-Frame-Options', 'DENY')
    c.header('Cross-Origin-Opener-Policy', 'same-origin')
    c.header('Cross-Origin-Resource-Policy', 'same-origin')
    if (options.hsts) c.header('Strict-Transport-Security', 'max-age=31536000; includeSubDomains')
  }
}
