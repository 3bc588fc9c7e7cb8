/**
 * CSRF protection for the operator console (OWASP CSRF Prevention: synchronizer token). A console form
 * carries `csrf` = HMAC-SHA256(session id, purpose): tied to one session, unforgeable without the session id
 * (which only the HttpOnly cookie holds), and nothing to store. The sign-in form, before any session exists,
 * uses a pre-session cookie the same way (login CSRF). A state-changing request also must not come from a
 * foreign `Origin`, when the browser names one.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Context } from 'hono'
import { SpConnectError } from '../domain/errors.ts'
import { readTextCapped } from './read-body.ts'

const SESSION_PURPOSE = 'sp-connect console csrf v1'
const SIGN_IN_PURPOSE = 'sp-connect console sign-in csrf v1'

function mac(key: string, purpose: string): string {
  return createHmac('sha256', key).update(purpose).digest('base64url')
}

/** The token forms of this session carry. */
export function sessionCsrfToken(sessionId: string): string {
  return mac(sessionId, SESSION_PURPOSE)
}

/** The token the sign-in form carries, for the browser holding this pre-session cookie. */
export function signInCsrfToken(preSessionId: string): string {
  return mac(preSessionId, SIGN_IN_PURPOSE)
}

function equal(a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

/** Throws `console_csrf_invalid` (403) unless `presented` is the expected token. */
export function requireToken(expected: string, presented: unknown): void {
  if (typeof presented !== 'string' || !equal(expected, presented))
    throw new SpConnectError('console_csrf_invalid', { detail: 'csrf token missing or wrong' })
}

/**
 * Refuses a POST that says it came from another site: by `Sec-Fetch-Site` (sent by current browsers) or by
 * an `Origin` naming another origin. `Origin: null` proves nothing either way (browsers send it for our own
 * forms because pages are served with `Referrer-Policy: no-referrer`), and requests with neither header
 * (non-browser clients) are left to the token, which they cannot have.
 */
export function requireSameOrigin(c: Context, publicUrl: string): void {
  const site = c.req.header('sec-fetch-site')
  if (site !== undefined && site !== 'same-origin' && site !== 'none')
    throw new SpConnectError('console_csrf_invalid', { detail: 'cross-site form post' })
  const origin = c.req.header('origin')
  if (origin !== undefined && origin !== 'null' && origin !== new URL(publicUrl).origin)
    throw new SpConnectError('console_csrf_invalid', { detail: 'cross-origin form post' })
}

/** Longest console form body read, in bytes. */
const MAX_FORM_BYTES = 16 * 1024

/** The form fields of a console POST (urlencoded, small), as strings. */
export async function readForm(c: Context): Promise<Record<string, string>> {
  const type = c.req.header('content-type') ?? ''
  if (!type.startsWith('application/x-www-form-urlencoded'))
    throw new SpConnectError('console_csrf_invalid', { detail: 'not a form post' })
  const text = await readTextCapped(c, MAX_FORM_BYTES)
  const fields: Record<string, string> = {}
  for (const [key, value] of new URLSearchParams(text)) if (!(key in fields)) fields[key] = value
  return fields
}
