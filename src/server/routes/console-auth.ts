/**
 * Signing in to and out of the operator console. The sign-in form is protected against login CSRF by a
 * pre-session cookie and a token derived from it; a successful sign-in always issues a new session id (a
 * session id planted beforehand is never adopted) and ends the browser's previous session.
 */
import { Hono } from 'hono'
import {
  authenticateOperator,
  endConsoleSession,
  newSignInThrottles,
  type SignInThrottles,
  startConsoleSession,
} from '../../core/access/operators.ts'
import { base64url } from '../../core/encoding.ts'
import { isSpConnectError, SpConnectError } from '../../domain/errors.ts'
import type { Runtime } from '../../runtime.ts'
import { addressBucket, resolveClientAddress, socketAddress, UNKNOWN_ADDRESS } from '../client-address.ts'
import type { ServerEnv } from '../context.ts'
import { readForm, requireSameOrigin, requireToken, signInCsrfToken } from '../csrf.ts'
import { signInPage } from '../pages/console-sign-in.ts'
import { servicePath } from '../public-url.ts'
import {
  actor,
  type ConsoleEnv,
  clearPreSessionCookie,
  clearSessionCookie,
  consoleTimeouts,
  readPreSessionCookie,
  readSessionCookie,
  requireConsoleCsrf,
  requireConsoleSession,
  writePreSessionCookie,
  writeSessionCookie,
} from './dashboard-auth.ts'

/** Lockouts live with the process serving the console (one set per runtime). */
const throttles = new WeakMap<Runtime, SignInThrottles>()
function throttlesFor(runtime: Runtime): SignInThrottles {
  let found = throttles.get(runtime)
  if (!found) {
    found = newSignInThrottles()
    throttles.set(runtime, found)
  }
  return found
}

const PRE_SESSION = /^[A-Za-z0-9_-]{43}$/

export const consoleAuthRoutes = new Hono<ServerEnv>()

consoleAuthRoutes.get('/console/sign-in', async (c) => {
  const runtime = c.var.runtime
  let pre = readPreSessionCookie(c)
  if (pre === undefined || !PRE_SESSION.test(pre)) {
    pre = base64url(runtime.deps.randomBytes(32))
    writePreSessionCookie(c, pre)
  }
  const error =
    c.req.query('error') === 'throttled' ? 'Too many failed sign-ins. Wait a few minutes.' : undefined
  return c.html(
    signInPage({
      csrfToken: signInCsrfToken(pre),
      error,
      devMode: runtime.config.mode === 'dev',
      basePath: runtime.config.basePath,
    }),
  )
})

consoleAuthRoutes.post('/console/sign-in', async (c) => {
  const runtime = c.var.runtime
  const { store, deps, events, config } = runtime
  requireSameOrigin(c, config.publicUrl)
  const form = await readForm(c)
  const pre = readPreSessionCookie(c)
  if (pre === undefined || !PRE_SESSION.test(pre))
    throw new SpConnectError('console_csrf_invalid', { detail: 'no pre-session cookie' })
  requireToken(signInCsrfToken(pre), form['csrf'])
  const address = resolveClientAddress(
    socketAddress(c),
    c.req.header('x-forwarded-for'),
    config.trustedProxyHops,
  )
  let account: Awaited<ReturnType<typeof authenticateOperator>>
  try {
    account = await authenticateOperator(store, deps, events, throttlesFor(runtime), {
      email: form['email'] ?? '',
      password: form['password'] ?? '',
      // Requests whose address is unknown share one key; locking it would lock everybody out.
      source: address === UNKNOWN_ADDRESS ? undefined : addressBucket(address),
    })
  } catch (error) {
    if (
      isSpConnectError(error, 'console_sign_in_failed') ||
      isSpConnectError(error, 'console_sign_in_throttled')
    ) {
      c.status(error.status as 401)
      if (error.retryAfterSeconds !== undefined) c.header('Retry-After', String(error.retryAfterSeconds))
      return c.html(
        signInPage({
          csrfToken: signInCsrfToken(pre),
          error: error.message,
          devMode: config.mode === 'dev',
          basePath: config.basePath,
        }),
      )
    }
    throw error
  }
  // No fixation: whatever session this browser had ends, and the new one gets a fresh id.
  const previous = readSessionCookie(c)
  if (previous !== undefined) await endConsoleSession(store, previous)
  const session = await startConsoleSession(store, deps, consoleTimeouts(runtime), {
    operatorId: account.id,
    label: account.email,
  })
  writeSessionCookie(c, session.id)
  clearPreSessionCookie(c)
  await events.record('operator.signed_in', null, { operator: account.email })
  return c.redirect(servicePath(config, '/'), 303)
})

const signOut = new Hono<ConsoleEnv>()
signOut.use('*', requireConsoleSession, requireConsoleCsrf)
signOut.post('/', async (c) => {
  const { store, events, config } = c.var.runtime
  await endConsoleSession(store, c.var.consoleSession.id)
  clearSessionCookie(c)
  await events.record('operator.signed_out', null, { by: actor(c) })
  return c.redirect(servicePath(config, config.mode === 'dev' ? '/' : '/console/sign-in'), 303)
})
consoleAuthRoutes.route('/console/sign-out', signOut as unknown as Hono<ServerEnv>)
