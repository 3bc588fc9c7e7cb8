/**
 * Who may use the operator console (the dashboard): an operator signed in to a console session
 * (docs/decisions/0009-operator-console.md). API keys do not open it. In `dev` (loopback only) a GET without
 * a session starts a pseudo-session for "dev", so nobody signs in locally, but forms still need its CSRF
 * token and state changes are still POSTs.
 *
 * The session cookie is `__Host-sp-connect-console` (Secure, HttpOnly, SameSite=Strict, Path=/, no Domain),
 * or `__Secure-` with Path=<basePath> under a base path (cookies.ts); dev serves plain http, so there it is
 * `sp-connect-console` without Secure (config.insecureCookies).
 */
import type { Context, MiddlewareHandler } from 'hono'
import {
  type ConsoleSession,
  type ConsoleTimeouts,
  DEFAULT_CONSOLE_ABSOLUTE_TIMEOUT_MS,
  DEFAULT_CONSOLE_IDLE_TIMEOUT_MS,
  resumeConsoleSession,
  startConsoleSession,
} from '../../core/access/operators.ts'
import { SpConnectError } from '../../domain/errors.ts'
import type { Runtime } from '../../runtime.ts'
import type { ServerEnv } from '../context.ts'
import { clearCookie, readCookie, writeCookie } from '../cookies.ts'
import { readForm, requireSameOrigin, requireToken, sessionCsrfToken } from '../csrf.ts'
import { servicePath } from '../public-url.ts'

const SESSION_COOKIE = 'sp-connect-console'
const PRE_SESSION_COOKIE = 'sp-connect-console-pre'
/** The pre-session cookie only has to outlive filling in the sign-in form. */
const PRE_SESSION_MAX_AGE_SECONDS = 60 * 60

/** The console's routes see the signed-in session, its CSRF token and (on POST) the form. */
export interface ConsoleEnv {
  Variables: ServerEnv['Variables'] & {
    consoleSession: ConsoleSession
    csrfToken: string
    form: Record<string, string>
  }
}

export function consoleTimeouts(runtime: Runtime): ConsoleTimeouts {
  return {
    idleMs: runtime.config.console?.idleTimeoutMs ?? DEFAULT_CONSOLE_IDLE_TIMEOUT_MS,
    absoluteMs: runtime.config.console?.absoluteTimeoutMs ?? DEFAULT_CONSOLE_ABSOLUTE_TIMEOUT_MS,
  }
}

export function readSessionCookie<E extends ServerEnv>(c: Context<E>): string | undefined {
  return readCookie(c, SESSION_COOKIE, c.var.runtime.config)
}

/** A browser session cookie (no Max-Age): the server's idle and absolute deadlines decide its life. */
export function writeSessionCookie<E extends ServerEnv>(c: Context<E>, id: string): void {
  writeCookie(c, SESSION_COOKIE, id, c.var.runtime.config, { sameSite: 'Strict' })
}

export function clearSessionCookie<E extends ServerEnv>(c: Context<E>): void {
  clearCookie(c, SESSION_COOKIE, c.var.runtime.config)
}

export function readPreSessionCookie<E extends ServerEnv>(c: Context<E>): string | undefined {
  return readCookie(c, PRE_SESSION_COOKIE, c.var.runtime.config)
}

export function writePreSessionCookie<E extends ServerEnv>(c: Context<E>, value: string): void {
  writeCookie(c, PRE_SESSION_COOKIE, value, c.var.runtime.config, {
    sameSite: 'Strict',
    maxAge: PRE_SESSION_MAX_AGE_SECONDS,
  })
}

export function clearPreSessionCookie<E extends ServerEnv>(c: Context<E>): void {
  clearCookie(c, PRE_SESSION_COOKIE, c.var.runtime.config)
}

/**
 * Pages of the console: the live session from the cookie, or (dev only) a new pseudo-session on a GET;
 * otherwise a GET is sent to the sign-in page and anything else is refused.
 */
export const requireConsoleSession: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
  const runtime = c.var.runtime
  const { store, deps, config } = runtime
  const timeouts = consoleTimeouts(runtime)
  let session = await resumeConsoleSession(store, deps, timeouts, readSessionCookie(c))
  const safe = c.req.method === 'GET' || c.req.method === 'HEAD'
  if (!session) {
    if (!safe) throw new SpConnectError('console_session_required')
    if (config.mode !== 'dev') return c.redirect(servicePath(config, '/console/sign-in'), 303)
    session = await startConsoleSession(store, deps, timeouts, { operatorId: null, label: 'dev' })
    writeSessionCookie(c, session.id)
  }
  c.set('consoleSession', session)
  c.set('csrfToken', sessionCsrfToken(session.id))
  return next()
}

/**
 * State-changing console requests: a POST from this origin whose form carries the session's CSRF token.
 * Runs after {@link requireConsoleSession}; a refusal changes nothing (403).
 */
export const requireConsoleCsrf: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
  if (c.req.method !== 'POST') throw new SpConnectError('not_found')
  requireSameOrigin(c, c.var.runtime.config.publicUrl)
  const form = await readForm(c)
  requireToken(c.var.csrfToken, form['csrf'])
  c.set('form', form)
  return next()
}

/** Who did it, for audit events: `operator:<email>` (or `operator:dev`). */
export function actor(c: Context<ConsoleEnv>): string {
  return `operator:${c.var.consoleSession.record.label}`
}
