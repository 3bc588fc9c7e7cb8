/**
 * Where the browser may be sent after the callback: a URL on this service, or on an origin the operator
 * allowed. Anything else would make sp-connect an open redirector next to its OAuth redirect URI (RFC 9700
 * §4.11.1). The value is checked the way a browser will resolve it: relative to the public URL, with dot
 * segments, backslashes and stripped whitespace taken into account, and what is stored and later used is that
 * resolved absolute URL, never the raw string (a path such as `/a/..//evil.example` is harmless only as part of
 * an absolute URL on our origin; as a Location path it would become protocol-relative).
 */
import { SpConnectError } from '../../domain/errors.ts'

const MAX_LENGTH = 2048

export interface ReturnToPolicy {
  /** This service's public origin. */
  readonly publicUrl: string
  /**
   * The path prefix this service is mounted under ('' at the root). When set, a URL on our own origin must be
   * under it (relative values resolve under it), unless the origin is also listed in `allowedOrigins`: the
   * host app's other pages share the origin, and only the operator may open them as destinations.
   */
  readonly basePath?: string
  /** Other origins an app may send its users back to (`SP_CONNECT_RETURN_ORIGINS`). */
  readonly allowedOrigins: readonly string[]
}

/** The absolute URL to store for `return_to`, or `invalid_request` when it is not allowed. */
export function validateReturnTo(value: string, policy: ReturnToPolicy): string {
  const refuse = (detail: string) => new SpConnectError('invalid_request', { detail })
  if (value.length === 0 || value.length > MAX_LENGTH) throw refuse('return_to is empty or too long')
  // Browsers drop tabs and newlines and read `\` as `/`: refuse rather than guess how each one resolves.
  if (/[\s\p{Cc}\\]/u.test(value)) throw refuse('return_to has whitespace, control characters or backslashes')
  let url: URL
  try {
    url = new URL(value, `${policy.publicUrl}${policy.basePath ?? ''}/`)
  } catch {
    throw refuse('return_to is not a URL or path')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refuse('return_to must be http(s)')
  if (url.username || url.password) throw refuse('return_to has credentials')
  if (url.hash) throw refuse('return_to has a fragment')
  const ownOrigin = new URL(policy.publicUrl).origin
  if (url.origin !== ownOrigin && !policy.allowedOrigins.includes(url.origin)) {
    throw refuse('return_to origin is not allowed')
  }
  const basePath = policy.basePath ?? ''
  const underBase = url.pathname === basePath || url.pathname.startsWith(`${basePath}/`)
  if (url.origin === ownOrigin && !underBase && !policy.allowedOrigins.includes(url.origin)) {
    throw refuse('return_to is outside the base path')
  }
  return url.href
}
