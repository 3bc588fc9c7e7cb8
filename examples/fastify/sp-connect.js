// sp-connect against the Amazon simulator, as `sp-connect dev` runs it: a simulated app registration, the
// simulator on a free port, SQLite in a temp folder. In production this file is just
// `createSpConnect(fromEnv(process.env))` with SP_CONNECT_BASE_PATH=/amazon. (Same file in every example.)
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSpConnect, fromEnv } from 'sp-connect'
import { createSimulator, generateDevApp, startSimulatorServer } from 'sp-connect/simulator'

export const PORT = Number(process.env.PORT ?? 3000)
export const ORIGIN = `http://127.0.0.1:${PORT}`
export const BASE_PATH = '/amazon'

export async function startSpConnect() {
  const app = generateDevApp({
    redirectUri: `${ORIGIN}${BASE_PATH}/callback`,
    loginUri: `${ORIGIN}${BASE_PATH}/login`,
  })
  const amazon = await startSimulatorServer(createSimulator({ apps: [app] }), { port: 0 })
  const sp = await createSpConnect(
    fromEnv({
      SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK: '1', // the simulator and this app speak plain http on loopback
      SP_CONNECT_PUBLIC_URL: ORIGIN,
      SP_CONNECT_BASE_PATH: BASE_PATH,
      SP_CONNECT_APP_ID: app.appId,
      SP_CONNECT_LWA_CLIENT_ID: app.clientId,
      SP_CONNECT_LWA_CLIENT_SECRET: app.clientSecrets[0].secret,
      SP_CONNECT_LWA_TOKEN_URL: `${amazon.url}/auth/o2/token`,
      SP_CONNECT_CENTRAL_URL_TEMPLATE: `${amazon.url}/{host}`,
      SP_CONNECT_SPAPI_URL_TEMPLATE: `${amazon.url}/{host}`,
      DATABASE_URL: join(mkdtempSync(join(tmpdir(), 'sp-connect-example-')), 'sp-connect.db'),
      SP_CONNECT_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
      SP_CONNECT_API_KEYS: `backend:${process.env.SP_CONNECT_API_KEY ?? randomBytes(24).toString('base64url')}`,
      SP_CONNECT_LOG_LEVEL: process.env.SP_CONNECT_LOG_LEVEL ?? 'warn',
    }),
  )
  sp.start()
  return sp
}

/** The app's own use of sp-connect: an access token for the tenant's connection (never printed). */
export async function tokenStatus(sp, tenantId) {
  const [connection] = await sp.connections.list({ tenantId, status: 'active' })
  if (!connection) return { connected: false, gotToken: false }
  const token = await sp.tokens.getAccessToken(connection.id)
  return { connected: true, gotToken: token.accessToken.length > 0, expiresAt: token.expiresAt }
}
