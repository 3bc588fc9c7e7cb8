// Express 5 app with sp-connect mounted under /amazon, next to the app's own routes and a global JSON parser.
import express from 'express'
import { toNodeHandler } from 'sp-connect/node'
import { BASE_PATH, PORT, startSpConnect, tokenStatus } from './sp-connect.js'

const sp = await startSpConnect()
const app = express()

// sp-connect reads its own request bodies: mount it BEFORE any body parser (else it answers 500 and logs why).
app.use(BASE_PATH, toNodeHandler(sp))
app.use(express.json())

// The app's own routes.
app.post('/echo', (req, res) => res.json(req.body))
app.get('/connect', async (req, res) => {
  // In a real app the tenant is the signed-in user's organisation.
  const link = await sp.connectSessions.create({ tenantId: 'acme', region: 'na' })
  res.redirect(303, link.url)
})
app.get('/token', async (req, res) => res.json(await tokenStatus(sp, 'acme')))

const server = app.listen(PORT, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${PORT}`))
process.on('SIGTERM', () => {
  server.close(() => sp.close().then(() => process.exit(0)))
  server.closeAllConnections()
})
