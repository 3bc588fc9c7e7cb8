/**
 * The cookies sp-connect sets, and the binding cookie that ties a `state` to the browser that started the flow.
 * At the root, in production, a cookie is `__Host-` (Secure, Path=/, no Domain). Under a base path it is
 * `__Secure-` with Path=<basePath>: `__Host-` requires Path=/, and a cookie for the whole origin would travel
 * to the host app's other routes (docs/decisions/0012-base-path.md). Only dev on http://localhost may use a
 * plain cookie. The binding cookie is HttpOnly and SameSite=Lax: Lax still travels on Amazon's top-level
 * redirect back to the callback.
 */
import type { Context } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import type { AppConfig } from '../config.ts'
import { cookiePath } from './public-url.ts'

/** What decides a cookie's name prefix, Secure flag and Path. */
type CookieConfig = Pick<AppConfig, 'insecureCookies' | 'basePath'>

const NAME = 'sp-connect-binding'
/** Long enough to outlive any state (10 minutes) with room; renewed on every flow start. */
const MAX_AGE_SECONDS = 24 * 60 * 60

function prefix(config: CookieConfig): 'host' | 'secure' | undefined {
  if (config.insecureCookies) return undefined
  return config.basePath ? 'secure' : 'host'
}

export function readCookie(c: Context, name: string, config: CookieConfig): string | undefined {
  const wanted = prefix(config)
  return wanted ? getCookie(c, name, wanted) : getCookie(c, name)
}

export function writeCookie(
  c: Context,
  name: string,
  value: string,
  config: CookieConfig,
  options: { sameSite: 'Lax' | 'Strict'; maxAge?: number | undefined },
): void {
  const wanted = prefix(config)
  setCookie(c, name, value, {
    path: cookiePath(config),
    httpOnly: true,
    sameSite: options.sameSite,
    ...(options.maxAge === undefined ? {} : { maxAge: options.maxAge }),
    ...(wanted ? { secure: true, prefix: wanted } : {}),
  })
}

export function clearCookie(c: Context, name: string, config: CookieConfig): void {
  const wanted = prefix(config)
  deleteCookie(c, name, { path: cookiePath(config), ...(wanted ? { secure: true, prefix: wanted } : {}) })
}

export function readBindingCookie(c: Context, config: CookieConfig): string | undefined {
  return readCookie(c, NAME, config)
}

export function writeBindingCookie(c: Context, value: string, config: CookieConfig): void {
  writeCookie(c, NAME, value, config, { sameSite: 'Lax', maxAge: MAX_AGE_SECONDS })
}
