/**
 * `dev` only: a stand-in for the app's own sign-in page (`SP_CONNECT_APP_SIGNIN_URL`), so the Appstore and
 * re-authorization workflows run end to end on one machine. A real app signs its user in, then calls
 * `POST /v1/login-requests/:id/approve` from its backend; this page does the same through the library with a
 * tenant picked in a form. It is not mounted outside dev.
 */
import { Hono } from 'hono'
import { SpConnectError } from '../../domain/errors.ts'
import type { ServerEnv } from '../context.ts'
import { cancelledPage, devSignInPage } from '../pages/seller-pages.ts'
import { servicePath } from '../public-url.ts'
import { readTextCapped } from '../read-body.ts'
import { sellerPageOptions } from './authorize.ts'

const DEV_SIGN_IN_PATH = '/dev/sign-in'
const MAX_FORM_BYTES = 2048

export const devSignInRoutes = new Hono<ServerEnv>()

devSignInRoutes.get(DEV_SIGN_IN_PATH, async (c) => {
  const { loginRequests, store, config } = c.var.runtime
  const login = c.req.query('sp_connect_login') ?? ''
  const request = await loginRequests.describe(login)
  // The tenants that already have connections, as suggestions.
  const tenants = [
    ...new Set(
      (await store.listConnections({ limit: 200 })).flatMap((row) => (row.tenantId ? [row.tenantId] : [])),
    ),
  ]
  return c.html(
    devSignInPage(
      request,
      { action: servicePath(config, DEV_SIGN_IN_PATH), login, tenants },
      sellerPageOptions(c),
    ),
  )
})

devSignInRoutes.post(DEV_SIGN_IN_PATH, async (c) => {
  const { loginRequests, config } = c.var.runtime
  const form = new URLSearchParams(await readTextCapped(c, MAX_FORM_BYTES))
  const login = form.get('login') ?? ''
  if (form.get('action') === 'reject') {
    await loginRequests.reject(login, { by: 'dev-sign-in', tenants: null })
    return c.html(cancelledPage(config.sellerStartUrl, sellerPageOptions(c)))
  }
  const tenantId = (form.get('tenant_id') ?? '').trim()
  const tenantName = (form.get('tenant_name') ?? '').trim()
  if (tenantId === '' || tenantId.length > 256 || /\p{Cc}/u.test(tenantId) || tenantName.length > 120)
    throw new SpConnectError('invalid_request', { detail: 'tenant id' })
  const approved = await loginRequests.approve(login, {
    tenantId,
    tenantName: tenantName === '' || /\p{Cc}/u.test(tenantName) ? null : tenantName,
    approvedBy: 'dev-sign-in',
  })
  return c.redirect(approved.redirectUrl, 303)
})
