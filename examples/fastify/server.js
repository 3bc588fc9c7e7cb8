// Fastify 5 app with sp-connect mounted under /amazon, next to the app's own routes and JSON body parsing.
import Fastify from 'fastify'
import { toNodeHandler } from 'sp-connect/node'
import { BASE_PATH, PORT, startSpConnect, tokenStatus } from './sp-connect.js'

const sp = await startSpConnect()
const handle = toNodeHandler(sp)
const app = Fastify()

// sp-connect reads its own request bodies: in its own encapsulated scope, no content-type parser may drain
// them (else it answers 500 and logs why). The '*' parser below accepts any body and leaves the stream unread.
await app.register(async (scope) => {
  scope.removeAllContentTypeParsers()
  scope.addContentTypeParser('*', (request, payload, done) => done(null))
  const route = (request, reply) => {
    reply.hijack() // sp-connect writes the response itself
    handle(request.raw, reply.raw)
  }
  scope.all(BASE_PATH, route)
  scope.all(`${BASE_PATH}/*`, route)
})

// The app's own routes, with Fastify's default JSON parser.
app.post('/echo', async (request) => request.body)
app.get('/connect', async (request, reply) => {
  // In a real app the tenant is the signed-in user's organisation.
  const link = await sp.connectSessions.create({ tenantId: 'acme', region: 'na' })
  return reply.redirect(link.url, 303)
})
app.get('/token', async () => tokenStatus(sp, 'acme'))

await app.listen({ port: PORT, host: '127.0.0.1' })
console.log(`listening on http://127.0.0.1:${PORT}`)
process.on('SIGTERM', () => app.close().then(() => sp.close().then(() => process.exit(0))))
