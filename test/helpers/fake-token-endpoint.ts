/**
 * A fake LWA token endpoint: a real node:http server on loopback whose answers a test scripts, for what the
 * simulator cannot produce (HTML 500s, hangs, trickling bodies, huge `expires_in` or `Retry-After`, rotated
 * refresh tokens, redirects). It records every request's form body and keeps hanging requests open until
 * `close()`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type FakeHandler = (request: FakeRequest, response: ServerResponse) => void

export interface FakeRequest {
  readonly form: URLSearchParams
  readonly raw: IncomingMessage
}

export interface FakeTokenEndpoint {
  readonly url: string
  /** Form bodies of every request received, in order. */
  readonly requests: URLSearchParams[]
  /** Requests whose response has not ended (hanging or trickling). */
  readonly open: () => number
  /** Handlers in order; the last one answers every further request. */
  script(...handlers: FakeHandler[]): void
  close(): Promise<void>
}

export async function startFakeTokenEndpoint(): Promise<FakeTokenEndpoint> {
  let handlers: FakeHandler[] = [json(200, tokenBody())]
  const requests: URLSearchParams[] = []
  const pending = new Set<ServerResponse>()
  const timers = new Set<NodeJS.Timeout>()
  const server = createServer((raw, response) => {
    const chunks: Buffer[] = []
    raw.on('data', (chunk: Buffer) => chunks.push(chunk))
    raw.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
      const handler = handlers[requests.length] ?? handlers[handlers.length - 1]
      requests.push(form)
      pending.add(response)
      response.on('close', () => pending.delete(response))
      response.on('finish', () => pending.delete(response))
      handler?.({ form, raw }, response)
    })
  })
  // Trickling handlers register their timers here so close() can stop them
  server.on('request', (_req, res: ServerResponse & { timers?: Set<NodeJS.Timeout> }) => {
    res.timers = timers
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/auth/o2/token`,
    requests,
    open: () => pending.size,
    script(...next) {
      handlers = next
    },
    async close() {
      for (const timer of timers) clearInterval(timer)
      for (const response of pending) response.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

let counter = 0

/** A well-formed success body; `overrides` replace or add fields. */
export function tokenBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  counter++
  return { access_token: `Atza|fake-access-${counter}`, token_type: 'bearer', expires_in: 3600, ...overrides }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): FakeHandler {
  return (_request, response) => {
    // A fresh body per answer, so each access token differs
    const value = typeof body === 'function' ? (body as () => unknown)() : body
    response.writeHead(status, { 'content-type': 'application/json;charset UTF-8', ...headers })
    response.end(JSON.stringify(value))
  }
}

export function html(status: number, headers: Record<string, string> = {}): FakeHandler {
  return (_request, response) => {
    response.writeHead(status, { 'content-type': 'text/html', ...headers })
    response.end('<html><body><h1>500 Internal Server Error</h1></body></html>')
  }
}

/** Reads the request and never answers. */
export const hang: FakeHandler = () => {}

/** Sends headers, then one byte of a never-ending body every `everyMs`. */
export function trickle(everyMs: number): FakeHandler {
  return (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.write('{')
    const timer = setInterval(() => response.write(' '), everyMs)
    ;(response as ServerResponse & { timers?: Set<NodeJS.Timeout> }).timers?.add(timer)
    response.on('close', () => clearInterval(timer))
  }
}

export function redirect(status: number, location: string): FakeHandler {
  return (_request, response) => {
    response.writeHead(status, { location })
    response.end()
  }
}

/** Reads the whole request, then drops the connection without an answer: sent, outcome unknown. */
export const reset: FakeHandler = (_request, response) => {
  response.socket?.destroy()
}
