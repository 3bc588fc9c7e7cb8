/** Serving a simulator over HTTP with @hono/node-server. */
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import type { Simulator } from './types.ts'

export interface SimulatorServerOptions {
  /** 0 picks a free port. */
  port: number
  /** Address to listen on; 127.0.0.1 by default. */
  hostname?: string
}

export interface SimulatorServer {
  /** Like `http://127.0.0.1:9000`, without a trailing slash. */
  readonly url: string
  close(): Promise<void>
}

/** Listens on `hostname:port` and resolves once the socket is bound. */
export function startSimulatorServer(
  sim: Simulator,
  options: SimulatorServerOptions,
): Promise<SimulatorServer> {
  const hostname = options.hostname ?? '127.0.0.1'
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: sim.app.fetch, port: options.port, hostname }, (info: AddressInfo) => {
      server.off('error', reject)
      const host = info.address.includes(':') ? `[${info.address}]` : info.address
      resolve({
        url: `http://${host}:${info.port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()))
            // Keep-alive sockets (fetch reuses them) would otherwise hold close() open.
            if ('closeAllConnections' in server) server.closeAllConnections()
          }),
      })
    })
    server.once('error', reject)
  })
}
