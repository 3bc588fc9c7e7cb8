/**
 * How one SP-API request leaves the process: the seam between the call path (./client.ts) and the network.
 *
 * - {@link fetchTransport} sends through `Deps.fetch`, the default: whatever a caller injected (tests routing
 *   into the simulator, a proxying fetch) keeps working, and so do `NODE_USE_ENV_PROXY` and a global undici
 *   dispatcher.
 * - {@link nodeHttpTransport} sends with `node:http`/`node:https` over keep-alive agents of its own. It skips
 *   fetch's WHATWG Request/Headers/Response machinery (and its resource-timing entries): about 190 µs of CPU
 *   per passthrough call here (docs/decisions/0016-passthrough-hot-path.md).
 *   It sends no `Accept-Encoding` and decodes a gzip/deflate/br answer anyway, follows no redirects, and
 *   ignores proxy environment variables: a deployment behind an egress proxy keeps the fetch transport.
 *
 * Either way the client has checked everything sent (./request-parts.ts) already; a transport only carries it.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { Readable } from 'node:stream'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'

/** One request, as the client built it. */
export interface UpstreamRequest {
  readonly url: URL
  readonly method: string
  /** Lower-case names, values already checked. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string | Uint8Array | ReadableStream<Uint8Array> | null
  /** Aborts the exchange (the client's per-attempt timeout and the caller's signal). */
  readonly signal: AbortSignal
}

/** The answer, once its headers arrived; the body streams. */
export interface UpstreamResponse {
  readonly status: number
  readonly headers: { get(name: string): string | null }
  /** Decoded (no content coding left), to read once or cancel. */
  readonly body: ReadableStream<Uint8Array> | null
}

/**
 * Sends one request and resolves with the answer's head. Rejects when no answer came: the error (or its
 * `cause` chain) carries the system error code (`ECONNREFUSED`, …) when there is one.
 */
export type SpApiTransport = (request: UpstreamRequest) => Promise<UpstreamResponse>

/** Sends through `fetch` (by default `Deps.fetch`). */
export function fetchTransport(fetch: typeof globalThis.fetch): SpApiTransport {
  return (request) =>
    fetch(request.url.href, {
      method: request.method,
      headers: request.headers,
      body: request.method === 'GET' || request.method === 'HEAD' ? null : request.body,
      redirect: 'manual',
      signal: request.signal,
      // Needed by undici for a stream body; harmless otherwise.
      ...(request.body instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit)
}

interface NodeHttpTransportOptions {
  /** Open connections kept per host for reuse; default 64. */
  readonly maxFreeSockets?: number
  /** Idle connections are closed after this many ms; default 30 s (Amazon's endpoints keep them longer). */
  readonly idleTimeoutMs?: number
}

/** Sends with `node:http`/`node:https` over keep-alive agents owned by the returned transport. */
export function nodeHttpTransport(options: NodeHttpTransportOptions = {}): SpApiTransport & {
  /** Closes the idle connections. */
  close(): void
} {
  const agentOptions = {
    keepAlive: true,
    maxFreeSockets: options.maxFreeSockets ?? 64,
    timeout: options.idleTimeoutMs ?? 30_000,
    scheduling: 'lifo' as const,
  }
  const http = new HttpAgent(agentOptions)
  const https = new HttpsAgent(agentOptions)
  const send: SpApiTransport = (request) =>
    new Promise<UpstreamResponse>((resolve, reject) => {
      const { url, method, body, signal } = request
      const secure = url.protocol === 'https:'
      if (!secure && url.protocol !== 'http:') return reject(new TypeError('unsupported protocol'))
      const headers: Record<string, string | number> = { ...request.headers }
      const sent = method === 'GET' || method === 'HEAD' ? null : body
      if (typeof sent === 'string') headers['content-length'] = Buffer.byteLength(sent)
      else if (sent instanceof Uint8Array) headers['content-length'] = sent.byteLength
      let out: ReturnType<typeof httpRequest>
      try {
        out = (secure ? httpsRequest : httpRequest)(url, {
          method,
          headers,
          agent: secure ? https : http,
          signal,
        })
      } catch (error) {
        return reject(error)
      }
      out.once('error', reject)
      out.once('response', (answer) => {
        out.off('error', reject)
        // A failure after the head belongs to the body's reader, not to this exchange.
        out.on('error', () => {})
        resolve(toUpstreamResponse(answer, method))
      })
      if (sent === null) out.end()
      else if (typeof sent === 'string' || sent instanceof Uint8Array) out.end(sent)
      else {
        const source = Readable.fromWeb(sent as import('node:stream/web').ReadableStream<Uint8Array>)
        source.once('error', (error) => out.destroy(error))
        source.pipe(out)
      }
    })
  return Object.assign(send, {
    close() {
      http.destroy()
      https.destroy()
    },
  })
}

function toUpstreamResponse(answer: IncomingMessage, method: string): UpstreamResponse {
  const status = answer.statusCode ?? 502
  const headers = {
    get(name: string): string | null {
      const value = answer.headers[name.toLowerCase()]
      if (value === undefined) return null
      return Array.isArray(value) ? value.join(', ') : value
    },
  }
  if (method === 'HEAD' || status === 204 || status === 205 || status === 304) {
    answer.resume()
    return { status, headers, body: null }
  }
  const coding = answer.headers['content-encoding']?.trim().toLowerCase()
  const decoder =
    coding === 'gzip' || coding === 'x-gzip'
      ? createGunzip()
      : coding === 'deflate'
        ? createInflate()
        : coding === 'br'
          ? createBrotliDecompress()
          : undefined
  let source: Readable = answer
  if (decoder) {
    answer.once('error', (error) => decoder.destroy(error))
    source = answer.pipe(decoder)
  }
  return { status, headers, body: Readable.toWeb(source) as ReadableStream<Uint8Array> }
}
