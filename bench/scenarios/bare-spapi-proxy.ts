/**
 * The ceiling for spapi-passthrough.ts: a bare `node:http` proxy on 127.0.0.1 (in a process of its own, like
 * the sp-connect instance) that takes the same request, `GET /v1/connections/:id/spapi/<sp-api path>`, and
 * forwards it to the same simulator with the connection's access token in `x-amz-access-token`, over a
 * keep-alive agent, streaming the answer back with its status and SP-API headers. No authentication, no
 * operation check, no limiter, no retries, no token manager: a map lookup and two HTTP hops, what Node alone
 * costs for a passthrough on this machine. Exits when its parent goes away.
 */
import { Agent, createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'

export type BareProxyRequest =
  | {
      readonly op: 'start'
      /** The SP-API base, e.g. `http://127.0.0.1:9000/sellingpartnerapi-na.amazon.com`. */
      readonly upstream: string
      /** Access token per connection id. */
      readonly tokens: Readonly<Record<string, string>>
    }
  | { readonly op: 'close' }
export type BareProxyReply =
  | { readonly type: 'ready'; readonly url: string }
  | { readonly type: 'error'; readonly message: string }

const PREFIX = /^\/v1\/connections\/([^/]+)\/spapi(\/.*)$/
/** The answer headers passed back (sp-connect passes the same ones). */
const PASSED = ['content-type', 'x-amzn-requestid', 'x-amzn-ratelimit-limit'] as const

const agent = new Agent({ keepAlive: true, maxSockets: 256 })
let upstream = new URL('http://127.0.0.1')
let basePath = ''
let tokens = new Map<string, string>()

const server = createServer((req, res) => {
  const match = PREFIX.exec(req.url ?? '')
  const token = match ? tokens.get(match[1] ?? '') : undefined
  if (!match || token === undefined) {
    res.writeHead(404).end()
    return
  }
  const out = request(
    {
      agent,
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: `${basePath}${match[2]}`,
      headers: { 'x-amz-access-token': token, accept: 'application/json', 'user-agent': 'bare-proxy/1.0' },
    },
    (answer) => {
      const headers: Record<string, string> = {}
      for (const name of PASSED) {
        const value = answer.headers[name]
        if (typeof value === 'string') headers[name] = value
      }
      res.writeHead(answer.statusCode ?? 502, headers)
      answer.pipe(res)
    },
  )
  out.on('error', () => {
    if (!res.headersSent) res.writeHead(502)
    res.end()
  })
  req.pipe(out)
})

process.on('disconnect', () => process.exit(0))
process.on('message', (message: BareProxyRequest) => {
  if (message.op === 'start') {
    upstream = new URL(message.upstream)
    basePath = upstream.pathname.replace(/\/+$/, '')
    tokens = new Map(Object.entries(message.tokens))
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      process.send?.({ type: 'ready', url: `http://127.0.0.1:${port}` } satisfies BareProxyReply)
    })
  } else {
    agent.destroy()
    server.closeAllConnections()
    server.close(() => process.disconnect())
  }
})
