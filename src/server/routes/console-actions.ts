/**
 * The operator console's actions: each a POST with the session's CSRF token (requireConsoleCsrf), audited as
 * `operator:<email>`. A refused request (no session, wrong or missing token, foreign origin) changes nothing.
 */
import { Hono } from 'hono'
import { createConnectSession } from '../../core/authorization/connect-sessions.ts'
import { isSpConnectError, SpConnectError } from '../../domain/errors.ts'
import { type AccountType, isAccountType, isRegion, type Region } from '../../domain/regions.ts'
import type { ServerEnv } from '../context.ts'
import { readBindingCookie, writeBindingCookie } from '../cookies.ts'
import { connectLinkPage } from '../pages/dashboard.ts'
import { servicePath, serviceUrl } from '../public-url.ts'
import { CONSOLE_ID, consoleOptions } from './dashboard.ts'
import { actor, type ConsoleEnv, requireConsoleCsrf, requireConsoleSession } from './dashboard-auth.ts'

const actions = new Hono<ConsoleEnv>()
actions.use('*', requireConsoleSession, requireConsoleCsrf)

function regionAndType(form: Record<string, string>): { region: Region; accountType: AccountType } {
  const region = form['region'] ?? 'na'
  const type = form['type'] ?? 'seller'
  if (!isRegion(region) || !isAccountType(type))
    throw new SpConnectError('invalid_request', { detail: 'region or type' })
  return { region, accountType: type }
}

function tenantField(value: string | undefined, required: boolean): string | null {
  const tenant = value?.trim() ?? ''
  if (tenant === '') {
    if (required) throw new SpConnectError('invalid_request', { detail: 'tenant is required' })
    return null
  }
  if (!CONSOLE_ID.test(tenant)) throw new SpConnectError('invalid_request', { detail: 'tenant is malformed' })
  return tenant
}

function connectionId(raw: string): string {
  if (!CONSOLE_ID.test(raw)) throw new SpConnectError('connection_not_found')
  return raw
}

/** "Connect a seller account": starts the website workflow in this browser, as the old GET /connect did. */
actions.post('/connect', async (c) => {
  const { flows, config } = c.var.runtime
  const { region, accountType } = regionAndType(c.var.form)
  const start = await flows.startWebsiteFlow({
    region,
    accountType,
    tenantId: tenantField(c.var.form['tenant'], false),
    browserBinding: readBindingCookie(c, config),
  })
  writeBindingCookie(c, start.browserBinding, config)
  return c.redirect(start.location, 303)
})

/** A connect link for a tenant, shown once. */
actions.post('/connect-links', async (c) => {
  const { store, deps, config } = c.var.runtime
  const { region, accountType } = regionAndType(c.var.form)
  const tenantId = tenantField(c.var.form['tenant'], true) ?? ''
  const input = { tenantId, region, accountType, marketplace: null, returnTo: null, connectionId: null }
  const { token, expiresAt } = await createConnectSession(store, deps, input)
  return c.html(
    connectLinkPage(
      { link: serviceUrl(config, `/connect/s/${token}`), expiresAt, tenantId, purpose: 'connect' },
      consoleOptions(c),
    ),
  )
})

actions.post('/connections/:id/disconnect', async (c) => {
  const { store, tokens, deps, events, config } = c.var.runtime
  const row = await store.disconnectConnection(connectionId(c.req.param('id')), deps.now())
  if (!row) throw new SpConnectError('connection_not_found')
  tokens.forget(row.id)
  c.var.runtime.spapi.forget(row.id)
  await events.record('connection.disconnected', row.id, { by: actor(c) })
  return c.redirect(servicePath(config, `/connections/${row.id}?done=disconnected`), 303)
})

actions.post('/connections/:id/refresh', async (c) => {
  const { store, tokens, deps, config } = c.var.runtime
  const row = await store.getConnection(connectionId(c.req.param('id')))
  if (!row) throw new SpConnectError('connection_not_found')
  let done = 'refreshed'
  try {
    await tokens.getAccessToken(row.id, { forceRefresh: true })
  } catch (error) {
    // The outcome is on the connection (status, last refresh error); the page shows it.
    if (!isSpConnectError(error)) throw error
    deps.logger.warn({ connectionId: row.id, code: error.code, by: actor(c) }, 'console refresh failed')
    done = 'refresh_failed'
  }
  deps.logger.info({ connectionId: row.id, by: actor(c) }, 'console refresh')
  return c.redirect(servicePath(config, `/connections/${row.id}?done=${done}`), 303)
})

/** A link that re-authorizes this connection (its tenant's), shown once. */
actions.post('/connections/:id/reconnect-link', async (c) => {
  const { store, deps, config } = c.var.runtime
  const row = await store.getConnection(connectionId(c.req.param('id')))
  if (!row) throw new SpConnectError('connection_not_found')
  if (row.tenantId === null)
    throw new SpConnectError('invalid_request', { detail: 'connection has no tenant to reconnect for' })
  const input = {
    tenantId: row.tenantId,
    region: row.region,
    accountType: row.accountType,
    marketplace: null,
    returnTo: null,
    connectionId: row.id,
  }
  const { token, expiresAt } = await createConnectSession(store, deps, input)
  return c.html(
    connectLinkPage(
      {
        link: serviceUrl(config, `/connect/s/${token}`),
        expiresAt,
        tenantId: row.tenantId,
        purpose: 'reconnect',
        connectionId: row.id,
      },
      consoleOptions(c),
    ),
  )
})

export const consoleActionRoutes = new Hono<ServerEnv>()
consoleActionRoutes.route('/console', actions as unknown as Hono<ServerEnv>)
