/**
 * `sp-connect/node`: the service mounted inside a Node HTTP framework (Express, Fastify, Connect, plain
 * `node:http`), next to the host app's own routes. The handler serves the request's full path (Express's
 * `originalUrl`, since Express strips its mount path), so sp-connect's `basePath` must be the mount path.
 *
 * sp-connect reads the raw request body itself. A body parser that ran first (a global `express.json()`,
 * `express.urlencoded()`, a Fastify content-type parser) has already drained the stream; sp-connect then answers
 * 500 and logs how to fix the order, rather than re-serialising the parsed body, which is not the body the
 * client sent (docs/decisions/0012-base-path.md).
 *
 * ```ts
 * import express from 'express'
 * import { toNodeHandler } from 'sp-connect/node'
 *
 * const app = express()
 * app.use('/amazon', toNodeHandler(sp)) // before any body parser
 * app.use(express.json())
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import { SpConnectError } from './domain/errors.ts'

/** Anything with sp-connect's Web fetch handler: the object {@link createSpConnect} returns. */
export interface FetchService {
  readonly fetch: (request: Request, env?: object) => Response | Promise<Response>
}

export interface NodeHandlerOptions {
  /** Where a mounting mistake is reported (pino-compatible `error(obj, msg)`); default `console.error`. */
  readonly logger?: { error(obj: object, msg?: string): void }
}

/** A Node request listener that is also Express/Connect middleware (it always answers; `next` is unused). */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse, next?: unknown) => void

/** What the log line says, so the operator can fix the host app without reading sp-connect's code. */
export const BODY_ALREADY_READ =
  'sp-connect: the request body was read by another handler before sp-connect (a body parser such as a global ' +
  'express.json()/express.urlencoded() or a Fastify content-type parser). Mount sp-connect before the body ' +
  "parsers, or keep them off sp-connect's path prefix (README, Embedding)."

/** The sp-connect service as a Node `(req, res)` handler; see the module comment for mounting rules. */
export function toNodeHandler(service: FetchService, options: NodeHandlerOptions = {}): NodeHandler {
  // Not overriding the global Request/Response: they belong to the host app.
  const listener = getRequestListener((request, env) => service.fetch(request, env), {
    overrideGlobalObjects: false,
  })
  const report = (fields: object, message: string) =>
    options.logger ? options.logger.error(fields, message) : console.error(message, fields)
  return (req, res) => {
    if (bodyAlreadyRead(req)) {
      // The path only: a query string may carry state values or authorization codes.
      report({ method: req.method, path: pathOf(req) }, BODY_ALREADY_READ)
      const error = new SpConnectError('internal', { detail: 'request body already read by the host app' })
      res.writeHead(500, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
      res.end(JSON.stringify({ error: error.toJSON() }))
      return
    }
    // Express strips the mount path from req.url and keeps the full one in originalUrl; sp-connect routes on
    // the full path. The listener reads the URL synchronously, so the host's value is restored right after.
    const hostUrl = req.url
    const originalUrl = (req as { originalUrl?: unknown }).originalUrl
    if (typeof originalUrl === 'string') req.url = originalUrl
    try {
      listener(req, res).catch((error: unknown) => {
        report(
          { errorName: error instanceof Error ? error.name : typeof error },
          'sp-connect: response failed',
        )
      })
    } finally {
      req.url = hostUrl
    }
  }
}

/** True when something already consumed (or started consuming) the request's body stream. */
function bodyAlreadyRead(req: IncomingMessage): boolean {
  return req.readableDidRead || req.readableEnded || (req as { _body?: unknown })._body === true
}

function pathOf(req: IncomingMessage): string {
  const url = (req as { originalUrl?: unknown }).originalUrl ?? req.url ?? ''
  return String(url).split('?')[0] ?? ''
}
