/** Serves a fetch app on a port with @hono/node-server and closes it cleanly. */

import { Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'

export interface Listening {
  readonly port: number
  close(): Promise<void>
}

type FetchHandler = (request: Request) => Response | Promise<Response>

export function listen(fetch: FetchHandler, port: number, hostname: string): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port, hostname }, (info: AddressInfo) => {
      resolve({
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            // Keep-alive sockets would hold close() open; end them.
            if (server instanceof HttpServer) server.closeAllConnections()
          }),
      })
    })
    server.once('error', reject)
  })
}
