/** Serves a fetch app on a port with @hono/node-server and closes it cleanly. */

import { Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type HttpBindings, serve } from '@hono/node-server'

export interface Listening {
  readonly port: number
  close(): Promise<void>
}

/** How long a stopping server waits for requests in flight. */
const SHUTDOWN_GRACE_MS = 10_000

/**
 * A fetch handler as @hono/node-server calls it: the request, and the Node bindings (`incoming`, `outgoing`)
 * as the env. Pass the env on to a Hono app (`app.fetch(request, env)`): the abuse limits read the client's
 * socket address from it, and without it every request counts as one shared unknown client.
 */
export type FetchHandler = (request: Request, env: HttpBindings) => Response | Promise<Response>

export function listen(fetch: FetchHandler, port: number, hostname: string): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: (request, env) => fetch(request, env as HttpBindings), port, hostname },
      (info: AddressInfo) => {
        resolve({
          port: info.port,
          close: () =>
            new Promise<void>((done) => {
              // Stop accepting, let requests in flight finish, and end idle keep-alive sockets that would hold
              // close() open; whatever is still running after the grace period is cut.
              server.close(() => done())
              if (server instanceof HttpServer) {
                server.closeIdleConnections()
                setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref()
              }
            }),
        })
      },
    )
    server.once('error', reject)
  })
}
