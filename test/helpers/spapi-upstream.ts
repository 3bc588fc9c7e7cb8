/**
 * A recording HTTP proxy on loopback between sp-connect and the simulator's SP-API hosts: it keeps every
 * request's method, path, headers and body size, and forwards it unchanged to the simulator, which answers for
 * real (Orders, Tokens API, usage plans with Amazon's 429). Tests may have it answer a request itself, but only
 * for what the simulator cannot produce on demand: a 5xx once the body was sent, a 429 with a Retry-After hint,
 * a connection reset mid-exchange, a multi-megabyte streamed body, an operation the simulator does not run.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type Stack, startStack } from './stack.ts'

export interface SeenRequest {
  readonly method: string
  /** Path and query as received (starting with `/{host}`). */
  readonly url: string
  readonly headers: IncomingMessage['headers']
  bytes: number
}

/** Answers a request itself (return true) or lets it through (false). */
export type Intercept = (
  seen: SeenRequest,
  req: IncomingMessage,
  res: ServerResponse,
) => boolean | Promise<boolean>

export interface SpApiUpstream {
  readonly url: string
  readonly seen: SeenRequest[]
  /** Interceptors tried in order on every request. */
  readonly intercepts: Intercept[]
  setTarget(simulatorUrl: string): void
  close(): Promise<void>
}

export async function startSpApiUpstream(): Promise<SpApiUpstream> {
  let target = ''
  const seen: SeenRequest[] = []
  const intercepts: Intercept[] = []
  const server = createServer(async (req, res) => {
    const entry: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      bytes: 0,
    }
    seen.push(entry)
    for (const intercept of intercepts) {
      if (await intercept(entry, req, res)) return
    }
    const upstream = new URL(req.url ?? '/', target)
    const out = httpRequest(
      upstream,
      { method: req.method, headers: { ...req.headers, host: upstream.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    out.on('error', () => res.destroy())
    req.on('data', (chunk: Buffer) => {
      entry.bytes += chunk.length
    })
    req.pipe(out)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    intercepts,
    setTarget(simulatorUrl) {
      target = simulatorUrl
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Reads and counts a request body, then answers with `status` and a JSON body in SP-API's error shape. */
export async function answer(
  seen: SeenRequest,
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: object,
  headers: Record<string, string> = {},
): Promise<void> {
  for await (const chunk of req) seen.bytes += (chunk as Buffer).length
  res.writeHead(status, {
    'content-type': 'application/json',
    'x-amzn-RequestId': `req-${status}`,
    ...headers,
  })
  res.end(JSON.stringify(body))
}

/** A stack whose SP-API calls pass through a recording upstream in front of the stack's own simulator. */
export async function startStackBehindUpstream(): Promise<{ stack: Stack; upstream: SpApiUpstream }> {
  const upstream = await startSpApiUpstream()
  const stack = await startStack({ env: { SP_CONNECT_SPAPI_URL_TEMPLATE: `${upstream.url}/{host}` } })
  upstream.setTarget(stack.simulatorUrl)
  return { stack, upstream }
}
