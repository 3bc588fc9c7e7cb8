/**
 * The dashboard and the bare /connect button are for the application's operators. In dev they are open on
 * localhost; in production they need HTTP Basic credentials whose password is one of the API keys.
 */
import type { MiddlewareHandler } from 'hono'
import { basicPassword, findApiKey } from '../api-keys.ts'
import type { ServerEnv } from '../context.ts'

export const requireDashboardAccess: MiddlewareHandler<ServerEnv> = async (c, next) => {
  const { config } = c.var.runtime
  if (config.mode === 'dev') return next()
  const key = findApiKey(config.apiKeys, basicPassword(c.req.header('authorization')))
  if (!key) {
    c.header('WWW-Authenticate', 'Basic realm="sp-connect", charset="UTF-8"')
    return c.text('Authentication required: use any user name and an API key as the password.', 401)
  }
  return next()
}
