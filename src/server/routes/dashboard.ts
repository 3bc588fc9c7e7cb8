import { Hono } from 'hono'
import { SpConnectError } from '../../core/errors.ts'
import type { ServerEnv } from '../context.ts'
import { connectionPage, dashboardPage } from '../pages/dashboard.ts'
import { requireDashboardAccess } from './dashboard-auth.ts'

export const dashboardRoutes = new Hono<ServerEnv>()

dashboardRoutes.use('/', requireDashboardAccess)
dashboardRoutes.use('/connections/*', requireDashboardAccess)

dashboardRoutes.get('/', async (c) => {
  const { store, config } = c.var.runtime
  const connections = await store.listConnections({ limit: 500 })
  return c.html(
    dashboardPage(connections, {
      devMode: config.mode === 'dev',
      simulatorLinks: c.var.options.simulatorLinks,
    }),
  )
})

dashboardRoutes.get('/connections/:id', async (c) => {
  const { store, config } = c.var.runtime
  const connection = await store.getConnection(c.req.param('id'))
  if (!connection) throw new SpConnectError('connection_not_found')
  const events = await store.listEvents({ connectionId: connection.id, limit: 50 })
  return c.html(
    connectionPage(connection, events, {
      devMode: config.mode === 'dev',
      simulatorLinks: c.var.options.simulatorLinks,
      justConnected: c.req.query('connected') === '1',
    }),
  )
})
