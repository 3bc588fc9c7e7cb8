// Plain node:http app with sp-connect under /amazon, next to the app's own routes (which parse their bodies).
import { createServer } from 'node:http'
import { toNodeHandler } from 'sp-connect/node'
import { BASE_PATH, PORT, startSpConnect, tokenStatus } from './sp-connect.js'

const sp = await startSpConnect()
const handle = toNodeHandler(sp)

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value))
}

const server = createServer(async (req, res) => {
  const path = new URL(req.url, 'http://localhost').pathname
  // Everything under the prefix goes to sp-connect first, its body unread.
  if (path === BASE_PATH || path.startsWith(`${BASE_PATH}/`)) return handle(req, res)
  if (req.method === 'POST' && path === '/echo') {
    let body = ''
    for await (const chunk of req) body += chunk
    return json(res, 200, JSON.parse(body))
  }
  if (path === '/connect') {
    // In a real app the tenant is the signed-in user's organisation.
    const link = await sp.connectSessions.create({ tenantId: 'acme', region: 'na' })
    return res.writeHead(303, { location: link.url }).end()
  }
  if (path === '/token') return json(res, 200, await tokenStatus(sp, 'acme'))
  json(res, 404, { error: 'not found' })
})

server.listen(PORT, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${PORT}`))
process.on('SIGTERM', () => {
  server.close(() => sp.close().then(() => process.exit(0)))
  server.closeAllConnections()
})
