/**
 * The browser-binding cookie ties a `state` to the browser that started the flow. In production it is a
 * `__Host-` cookie (Secure, path /, no Domain), HttpOnly and SameSite=Lax: Lax still travels on Amazon's
 * top-level redirect back to the callback. Only dev on http://localhost may use a plain cookie.
 */
import type { Context } from 'hono'
import { getCookie, setCookie } from 'hono/cookie'

const NAME = 'sp-connect-binding'
/** Long enough to outlive any state (10 minutes) with room; renewed on every flow start. */
const MAX_AGE_SECONDS = 24 * 60 * 60

export function readBindingCookie(c: Context, insecure: boolean): string | undefined {
  return insecure ? getCookie(c, NAME) : getCookie(c, NAME, 'host')
}

export function writeBindingCookie(c: Context, value: string, insecure: boolean): void {
  const common = { path: '/', httpOnly: true, sameSite: 'Lax', maxAge: MAX_AGE_SECONDS } as const
  if (insecure) setCookie(c, NAME, value, common)
  else setCookie(c, NAME, value, { ...common, secure: true, prefix: 'host' })
}
