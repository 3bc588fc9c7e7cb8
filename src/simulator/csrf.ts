/**
 * CSRF protection for the simulator's own forms (Confirm/Cancel, Remove): a random per-browser cookie plus
 * a hidden field holding an HMAC of that cookie and the form's purpose. A cross-site page can make the
 * browser send the cookie but cannot read it, so it cannot compute the field.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Context } from 'hono'
import { getCookie, setCookie } from 'hono/cookie'

const CSRF_COOKIE = 'amzn_sim_csrf'
export const CSRF_FIELD = 'sim_csrf'
const COOKIE_VALUE = /^[A-Za-z0-9_-]{22,64}$/

function fieldFor(secret: string, cookie: string, purpose: string): string {
  return createHmac('sha256', secret).update(`csrf\n${cookie}\n${purpose}`, 'utf8').digest('base64url')
}

/** The hidden-field value for a form with this purpose, setting the browser cookie when missing. */
export function issueCsrf(c: Context, secret: string, base: string, purpose: string): string {
  let cookie = getCookie(c, CSRF_COOKIE)
  if (cookie === undefined || !COOKIE_VALUE.test(cookie)) {
    cookie = randomBytes(24).toString('base64url')
    const url = new URL(base)
    setCookie(c, CSRF_COOKIE, cookie, {
      path: url.pathname === '' ? '/' : url.pathname,
      httpOnly: true,
      sameSite: 'Lax',
      secure: url.protocol === 'https:',
      maxAge: 3600,
    })
  }
  return fieldFor(secret, cookie, purpose)
}

export function checkCsrf(
  c: Context,
  secret: string,
  purpose: string,
  submitted: string | undefined,
): boolean {
  const cookie = getCookie(c, CSRF_COOKIE)
  if (cookie === undefined || submitted === undefined || !COOKIE_VALUE.test(cookie)) return false
  const expected = Buffer.from(fieldFor(secret, cookie, purpose), 'utf8')
  const given = Buffer.from(submitted, 'utf8')
  return expected.length === given.length && timingSafeEqual(expected, given)
}
