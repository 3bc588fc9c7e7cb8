/**
 * The framework's floor under the token API (docs/decisions/0014-token-api-hot-path.md): server CPU per request
 * of bare `node:http`, bare `node:http` with the security headers, a minimal Hono app on @hono/node-server, and
 * that app with as many pass-through middlewares as the service has plus the headers set by one of them. No
 * sp-connect code runs; the gap between the last line and sp-connect's own figure is what our middleware costs.
 *
 *   ./node_modules/.bin/node bench/lib/framework-floor.ts
 */
import { fork } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { serve } from '@hono/node-server'
import autocannon from 'autocannon'
import { Hono } from 'hono'
import { securityHeaderList } from '../../src/server/security.ts'

const KINDS = ['bare', 'bare-headers', 'hono', 'hono-middleware'] as const
type Kind = (typeof KINDS)[number]
type Message = { port: number } | { cpu: number }

const kind = process.argv[2] as Kind | undefined

function startServer(kind: Kind): void {
  const body = JSON.stringify({
    access_token: 'Atza|'.padEnd(300, 'x'),
    token_type: 'bearer',
    expires_at: new Date().toISOString(),
  })
  // The service's own header set (as in `serve`, with HSTS), plus a request id.
  const headers: ReadonlyArray<readonly [string, string]> = [
    ...securityHeaderList({ formActionOrigins: [], hsts: true }),
    ['x-request-id', crypto.randomUUID()],
  ]
  const ready = (port: number) => process.send?.({ port } satisfies Message)
  process.on('message', () => {
    const usage = process.cpuUsage()
    process.send?.({ cpu: (usage.user + usage.system) / 1e6 } satisfies Message)
  })
  if (kind === 'bare' || kind === 'bare-headers') {
    const server = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        const head: Record<string, string | number> = {
          'content-type': 'application/json',
          'content-length': body.length,
        }
        if (kind === 'bare-headers') for (const [name, value] of headers) head[name] = value
        res.writeHead(200, head)
        res.end(body)
      })
    })
    server.listen(0, '127.0.0.1', () => ready((server.address() as AddressInfo).port))
    return
  }
  const app = new Hono()
  if (kind === 'hono-middleware') {
    // The service's chain in front of the token route: request id and log, headers, URL, query, limits, key.
    for (let i = 0; i < 6; i++) app.use('*', async (_c, next) => await next())
    app.use('*', async (c, next) => {
      for (const [name, value] of headers) c.header(name, value)
      await next()
    })
  }
  app.post('/v1/connections/:id/access-token', (c) => c.json(JSON.parse(body)))
  serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => ready(info.port))
}

async function measure(): Promise<void> {
  for (const k of KINDS) {
    const child = fork(fileURLToPath(import.meta.url), [k])
    const next = () => new Promise<Message>((resolve) => child.once('message', resolve))
    const started = await next()
    if (!('port' in started)) throw new Error('no port')
    const cpu = async () => {
      child.send('cpu')
      const m = await next()
      return 'cpu' in m ? m.cpu : Number.NaN
    }
    const fire = (duration: number) =>
      autocannon({
        url: `http://127.0.0.1:${started.port}`,
        connections: 48,
        duration,
        method: 'POST',
        headers: { authorization: 'Bearer x' },
        requests: [{ method: 'POST', path: '/v1/connections/con_x/access-token' }],
      })
    await fire(2)
    const before = await cpu()
    const result = await fire(6)
    const used = (await cpu()) - before
    console.log(
      `${k.padEnd(16)} ${String(Math.round(result.requests.total / result.duration)).padStart(6)} req/s  ` +
        `p99 ${result.latency.p99} ms  ${((used * 1e6) / result.requests.total).toFixed(1)} µs CPU/request`,
    )
    child.kill()
  }
  process.exit()
}

if (kind) startServer(kind)
else await measure()
