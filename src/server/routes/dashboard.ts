/**
 * The operator console's pages (GET only: nothing here changes anything). Actions are in console-actions.ts.
 */
import { Hono } from 'hono'
import { SpConnectError } from '../../domain/errors.ts'
import { CONNECTION_STATUSES, type ConnectionStatus } from '../../store/store.ts'
import type { ServerEnv } from '../context.ts'
import { connectionPage, type DashboardOptions, dashboardPage } from '../pages/dashboard.ts'
import { type ConsoleEnv, requireConsoleSession } from './dashboard-auth.ts'

/** Connections per console page. */
const CONSOLE_PAGE_SIZE = 50
const EVENTS_SHOWN = 50
/** Tenant and connection ids as the console accepts them in a query or path. */
export const CONSOLE_ID = /^[\p{L}\p{N}._:@-]{1,200}$/u

const pages = new Hono<ConsoleEnv>()
pages.use('*', requireConsoleSession)

export function consoleOptions(c: { var: ConsoleEnv['Variables'] }): DashboardOptions {
  return {
    devMode: c.var.runtime.config.mode === 'dev',
    basePath: c.var.runtime.config.basePath,
    simulatorLinks: c.var.options.simulatorLinks,
    console: { label: c.var.consoleSession.record.label, csrfToken: c.var.csrfToken },
  }
}

function optionalId(value: string | undefined, what: string): string | undefined {
  if (value === undefined || value === '') return undefined
  if (!CONSOLE_ID.test(value)) throw new SpConnectError('invalid_request', { detail: `${what} is malformed` })
  return value
}

pages.get('/', async (c) => {
  const { store } = c.var.runtime
  const statusQuery = c.req.query('status')
  let status: ConnectionStatus | undefined
  if (statusQuery !== undefined && statusQuery !== '') {
    status = CONNECTION_STATUSES.find((s) => s === statusQuery)
    if (!status) throw new SpConnectError('invalid_request', { detail: 'status' })
  }
  const tenant = optionalId(c.req.query('tenant'), 'tenant')
  const after = optionalId(c.req.query('after'), 'after')
  const rows = await store.listConnections({
    limit: CONSOLE_PAGE_SIZE + 1,
    ...(status ? { status } : {}),
    ...(tenant ? { tenantId: tenant } : {}),
    ...(after ? { after } : {}),
  })
  const shown = rows.slice(0, CONSOLE_PAGE_SIZE)
  return c.html(
    dashboardPage(
      {
        connections: shown,
        status,
        tenant,
        nextAfter: rows.length > CONSOLE_PAGE_SIZE ? shown[shown.length - 1]?.id : undefined,
        paged: after !== undefined,
      },
      consoleOptions(c),
    ),
  )
})

pages.get('/connections/:id', async (c) => {
  const { store } = c.var.runtime
  const id = optionalId(c.req.param('id'), 'connection id')
  const connection = id === undefined ? undefined : await store.getConnection(id)
  if (!connection) throw new SpConnectError('connection_not_found')
  const events = await store.listEvents({ connectionId: connection.id, limit: EVENTS_SHOWN })
  const withDeliveries = await Promise.all(
    events.map(async (event) => ({ event, deliveries: await store.listDeliveries({ eventId: event.id }) })),
  )
  return c.html(
    connectionPage(connection, withDeliveries, {
      ...consoleOptions(c),
      justConnected: c.req.query('connected') === '1',
      done: c.req.query('done'),
    }),
  )
})

export const dashboardRoutes = new Hono<ServerEnv>()
dashboardRoutes.route('/', pages as unknown as Hono<ServerEnv>)
