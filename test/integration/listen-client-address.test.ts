/** `listen` hands the app @hono/node-server's bindings, so the app sees the client's socket address. */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { listen } from '../../src/cli/listen.ts'
import { socketAddress } from '../../src/server/client-address.ts'

describe('listen', () => {
  it('passes the socket to the app: the client address comes from the connection, not a header', async () => {
    const app = new Hono()
    app.get('/', (c) => c.text(socketAddress(c) ?? 'none'))
    const server = await listen(app.fetch, 0, '127.0.0.1')
    try {
      const response = await fetch(`http://127.0.0.1:${server.port}/`, {
        headers: { 'x-forwarded-for': '198.51.100.1' },
      })
      expect(await response.text()).toMatch(/^(::ffff:)?127\.0\.0\.1$/)
    } finally {
      await server.close()
    }
  })
})
