/**
 * The simulator over HTTPS, and as an `HTTPS_PROXY` for Amazon's hosts, on one port.
 *
 * The first byte of a connection decides: a TLS handshake (0x16) is served directly with the simulator's leaf
 * certificate; anything else is HTTP/1.1, where
 * - `CONNECT <amazon-host>:443` opens a tunnel whose TLS the simulator terminates itself (it is the only thing
 *   behind the tunnel: nothing is ever forwarded to the network, so it cannot be an open proxy),
 * - an absolute-form request (`GET https://<amazon-host>/…`, how some clients use a proxy) is served as if it
 *   had been sent to that host,
 * - an origin-form request is served by the simulator's path layout, as without `--tls`.
 * Every other proxy target (other hosts, IP literals, other ports, malformed lines) is refused with 403/400 and
 * logged. Requests reach the simulator's fetch handler with `Host` set to the Amazon host the client asked
 * for, which the simulator routes on.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { createSecureContext, TLSSocket } from 'node:tls'
import { getRequestListener } from '@hono/node-server'
import type { SimulatorServer } from './server.ts'
import { isSimulatedAmazonHost, type SimulatorTls } from './tls.ts'

/** What the proxy reports about refused or failed proxy use; never carries request bodies or headers. */
export interface ProxyEvent {
  readonly event: 'proxy_refused' | 'proxy_tunnel_limit' | 'tls_handshake_failed'
  /** The requested target, cut to 200 characters (it is client input). */
  readonly target?: string
  readonly reason?: string
}

export interface SimulatorTlsServerOptions {
  port: number
  /** Address to listen on; 127.0.0.1 by default. */
  hostname?: string
  tls: Pick<SimulatorTls, 'certChainPem' | 'keyPem'>
  /** Open CONNECT tunnels at most; past it CONNECT answers 503. */
  maxTunnels?: number
  /** Open connections at most (the operating system refuses the rest). */
  maxConnections?: number
  log?: (event: ProxyEvent) => void
}

const DEFAULT_MAX_TUNNELS = 256
const DEFAULT_MAX_CONNECTIONS = 1024
/** A connection that sends nothing, or does not finish its TLS handshake, is dropped after this. */
const FIRST_BYTES_TIMEOUT_MS = 10_000
const TLS_HANDSHAKE_BYTE = 0x16
const CONNECT_TARGET = /^([A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/

type Fetch = (request: Request) => Response | Promise<Response>

/** Whether a CONNECT target may be tunnelled; the reason when not. */
function checkConnectTarget(
  target: string,
): { ok: true; host: string } | { ok: false; status: 400 | 403; reason: string } {
  const match = CONNECT_TARGET.exec(target)
  if (!match) return { ok: false, status: 400, reason: 'malformed CONNECT target' }
  const [, host = '', port] = match
  if (!isSimulatedAmazonHost(host)) return { ok: false, status: 403, reason: 'not a simulated Amazon host' }
  if (port !== '443') return { ok: false, status: 403, reason: 'only port 443 is served' }
  return { ok: true, host: host.toLowerCase().replace(/\.$/, '') }
}

/** The Amazon host of an absolute-form request URL, or the reason it is refused. */
function checkAbsoluteTarget(url: string): { ok: true; host: string; path: string } | { ok: false } {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return { ok: false }
  }
  const defaultPort = parsed.port === ''
  const scheme = parsed.protocol === 'https:' || parsed.protocol === 'http:'
  if (!scheme || !defaultPort || parsed.username !== '' || parsed.password !== '') return { ok: false }
  if (!isSimulatedAmazonHost(parsed.hostname)) return { ok: false }
  return {
    ok: true,
    host: parsed.hostname.toLowerCase().replace(/\.$/, ''),
    path: parsed.pathname + parsed.search,
  }
}

function clip(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what gets removed
  return value.slice(0, 200).replace(/[\u0000-\u001f\u007f]/g, '?')
}

function refuseSocket(socket: Duplex, status: 400 | 403 | 503, text: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\nConnection: close\r\n\r\n${text}`,
  )
}

/**
 * Listens on `hostname:port` serving HTTPS, plain HTTP and proxy requests for the simulator (see above).
 * `fetch` is the simulator app's fetch handler.
 */
export function startSimulatorTlsServer(
  fetch: Fetch,
  options: SimulatorTlsServerOptions,
): Promise<SimulatorServer> {
  const hostname = options.hostname ?? '127.0.0.1'
  const maxTunnels = options.maxTunnels ?? DEFAULT_MAX_TUNNELS
  const log = options.log ?? (() => {})
  const secureContext = createSecureContext({ cert: options.tls.certChainPem, key: options.tls.keyPem })
  /** The Amazon host each tunnelled TLS socket was opened for. */
  const tunnelHosts = new WeakMap<object, string>()
  const sockets = new Set<Socket>()
  let tunnels = 0

  const listener = getRequestListener(fetch)
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    // Hop-by-hop proxy headers are for us, not for the simulated Amazon.
    delete req.headers['proxy-authorization']
    delete req.headers['proxy-connection']
    const tunnelHost = tunnelHosts.get(req.socket)
    if (tunnelHost !== undefined) {
      const asked = (req.headers.host ?? '').toLowerCase().replace(/:443$/, '')
      // A tunnel serves the host it was opened for: another Host, or an absolute-form target naming any host,
      // inside it is a misdirected request.
      if (asked !== tunnelHost || req.url === undefined || !req.url.startsWith('/')) {
        res.writeHead(421, { 'Content-Type': 'text/plain', Connection: 'close' }).end('Misdirected Request')
        return
      }
      req.headers.host = tunnelHost
    } else if (req.url !== undefined && !req.url.startsWith('/') && req.url !== '*') {
      const target = checkAbsoluteTarget(req.url)
      if (!target.ok) {
        log({ event: 'proxy_refused', target: clip(req.url), reason: 'absolute-form target refused' })
        res.writeHead(403, { 'Content-Type': 'text/plain', Connection: 'close' }).end('Forbidden')
        return
      }
      req.url = target.path
      req.headers.host = target.host
    }
    void listener(req, res)
  }

  const http = createHttpServer({ headersTimeout: FIRST_BYTES_TIMEOUT_MS, requestTimeout: 60_000 }, handle)
  http.on('clientError', (_err, socket) => {
    if (socket.writable) refuseSocket(socket, 400, 'Bad Request')
    else socket.destroy()
  })
  http.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const target = req.url ?? ''
    const checked = checkConnectTarget(target)
    if (!checked.ok) {
      log({ event: 'proxy_refused', target: clip(target), reason: checked.reason })
      refuseSocket(socket, checked.status, checked.status === 400 ? 'Bad Request' : 'Forbidden')
      return
    }
    if (tunnels >= maxTunnels) {
      log({ event: 'proxy_tunnel_limit', target: checked.host })
      refuseSocket(socket, 503, 'Service Unavailable')
      return
    }
    tunnels += 1
    socket.once('close', () => {
      tunnels -= 1
    })
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    if (head.length > 0) socket.unshift(head)
    serveTls(socket, checked.host)
  })

  /** Terminates TLS on `raw` and hands the decrypted stream to the HTTP server. */
  const serveTls = (raw: Duplex, tunnelHost: string | undefined) => {
    const secure = new TLSSocket(raw, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] })
    if (tunnelHost !== undefined) tunnelHosts.set(secure, tunnelHost)
    const timer = setTimeout(() => secure.destroy(), FIRST_BYTES_TIMEOUT_MS)
    secure.once('secure', () => {
      clearTimeout(timer)
      http.emit('connection', secure)
    })
    secure.on('error', (err: Error & { code?: string }) => {
      clearTimeout(timer)
      log({ event: 'tls_handshake_failed', reason: clip(err.code ?? 'error') })
      secure.destroy()
      raw.destroy()
    })
    secure.once('close', () => clearTimeout(timer))
  }

  const front = createNetServer({ pauseOnConnect: true }, (socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    socket.setTimeout(FIRST_BYTES_TIMEOUT_MS, () => socket.destroy())
    socket.once('data', (chunk: Buffer) => {
      socket.pause()
      socket.setTimeout(0)
      socket.unshift(chunk)
      if (chunk[0] === TLS_HANDSHAKE_BYTE) serveTls(socket, undefined)
      else http.emit('connection', socket)
      process.nextTick(() => socket.resume())
    })
    socket.resume()
  })
  front.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS

  return new Promise((resolve, reject) => {
    front.once('error', reject)
    front.listen(options.port, hostname, () => {
      front.off('error', reject)
      const address = front.address()
      const port = typeof address === 'object' && address !== null ? address.port : options.port
      const host = hostname.includes(':') ? `[${hostname}]` : hostname
      resolve({
        url: `https://${host}:${port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            front.close((err) => (err ? fail(err) : done()))
            http.closeAllConnections()
            for (const socket of sockets) socket.destroy()
          }),
      })
    })
  })
}
