/**
 * `sp-connect/node` (src/node.ts) in a real `node:http` server next to the host's own routes: requests under
 * the prefix reach sp-connect with their bodies, a mount that strips the prefix from `req.url` (Express keeps
 * it in `originalUrl`) still routes, and a host that drained the body first gets a loud 500 and a log line
 * naming the fix, never a request handled with a body other than the one the client sent.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BODY_ALREADY_READ, toNodeHandler } from '../../src/node.ts'
import { createServerApp } from '../../src/server/app.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

describe('toNodeHandler under /amazon', () => {
  let stack: Stack
  let server: Server
  let origin: string
  const logged: { fields: object; message: string | undefined }[] = []

  beforeAll(async () => {
    stack = await startStack({ basePath: '/amazon' })
    const app = createServerApp(stack.runtime)
    const sp = toNodeHandler(app, {
      logger: { error: (fields, message) => logged.push({ fields, message }) },
    })
    server = createServer((req: IncomingMessage & { originalUrl?: string }, res: ServerResponse) => {
      const path = req.url ?? ''
      if (path === '/own') return res.end('host route')
      // A host body parser that runs before sp-connect, as a global express.json() would.
      if (path.startsWith('/amazon/') && req.headers['x-parse-first'] === '1') {
        let body = ''
        req.on('data', (chunk) => {
          body += chunk
        })
        req.on('end', () => {
          ;(req as { body?: unknown }).body = JSON.parse(body)
          sp(req, res)
        })
        return
      }
      // A mount that strips its path, as Express's app.use('/amazon', …) does.
      if (path.startsWith('/stripped/amazon/')) {
        req.originalUrl = path.slice('/stripped'.length)
        req.url = path.slice('/stripped/amazon'.length)
        return sp(req, res)
      }
      if (path === '/amazon' || path.startsWith('/amazon/')) return sp(req, res)
      res.statusCode = 404
      res.end('host 404')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve))
    await stack?.close()
  })

  const createSession = (init: { headers?: Record<string, string>; path?: string } = {}) =>
    fetch(`${origin}${init.path ?? '/amazon/v1/connect-sessions'}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${stack.apiKey}`,
        'content-type': 'application/json',
        ...init.headers,
      },
      body: JSON.stringify({ tenant_id: 'acme', region: 'na' }),
    })

  it('serves sp-connect under the prefix, bodies included, next to the host routes', async () => {
    expect(await (await fetch(`${origin}/own`)).text()).toBe('host route')
    expect((await fetch(`${origin}/amazon/healthz`)).status).toBe(200)
    const created = await createSession()
    expect(created.status).toBe(201)
    expect(((await created.json()) as { url: string }).url).toContain('/amazon/connect/s/')
  })

  it('routes on the full path when the host stripped its mount path from req.url', async () => {
    expect((await fetch(`${origin}/stripped/amazon/healthz`)).status).toBe(200)
    expect((await createSession({ path: '/stripped/amazon/v1/connect-sessions' })).status).toBe(201)
  })

  it('refuses with 500 and a log naming the fix when a host body parser ran first', async () => {
    const before = logged.length
    const answer = await createSession({ headers: { 'x-parse-first': '1' } })
    expect(answer.status).toBe(500)
    expect(await answer.json()).toEqual({ error: { code: 'internal', message: expect.any(String) } })
    const line = logged.slice(before).find((entry) => entry.message === BODY_ALREADY_READ)
    expect(line?.fields).toEqual({ method: 'POST', path: '/amazon/v1/connect-sessions' })
    expect(BODY_ALREADY_READ).toContain('express.json()')
    expect(BODY_ALREADY_READ).toContain('before the body parsers')
  })
})
