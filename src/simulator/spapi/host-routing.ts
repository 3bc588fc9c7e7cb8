/**
 * Routing by host name. The simulator's layout puts every Amazon host under a path prefix equal to its name
 * (routes.ts). A request that reaches it under the host's own name instead (the Host header, or :authority,
 * as sent through the HTTPS server, the CONNECT proxy or a private /etc/hosts) is routed as if its path carried
 * that prefix, so unmodified clients work. Paths that already start with a served host, and the simulator's
 * own `/_static` and `/_control` paths, are left alone.
 */
import { getPath } from 'hono/utils/url'
import { allCentralHosts, SPAPI_HOSTS } from '../../domain/regions.ts'
import { CONTROL_PREFIX, LWA_HOST, STYLESHEET_PATH } from '../routes.ts'

const SERVED_HOSTS: ReadonlySet<string> = new Set([
  LWA_HOST,
  ...Object.values(SPAPI_HOSTS).flatMap((hosts) => [hosts.production, hosts.sandbox]),
  ...allCentralHosts(),
])

const AUTHORITY = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i
const STATIC_PREFIX = STYLESHEET_PATH.slice(0, STYLESHEET_PATH.indexOf('/', 1) + 1)

/** The served Amazon host a request URL names, lowercased, without port or trailing dot; else undefined. */
function servedHostOf(url: string): string | undefined {
  const authority = AUTHORITY.exec(url)?.[1]
  if (authority === undefined || authority.startsWith('[')) return undefined
  const host = authority.replace(/:\d*$/, '').replace(/\.$/, '').toLowerCase()
  return SERVED_HOSTS.has(host) ? host : undefined
}

/** Hono `getPath`: the request's path, prefixed with its Amazon host name when it was sent to one. */
export function hostRoutedPath(request: Request): string {
  const path = getPath(request)
  const host = servedHostOf(request.url)
  if (host === undefined) return path
  if (path.startsWith(STATIC_PREFIX) || path === CONTROL_PREFIX || path.startsWith(`${CONTROL_PREFIX}/`)) {
    return path
  }
  const first = path.slice(1).split('/', 1)[0] ?? ''
  if (SERVED_HOSTS.has(first)) return path
  return `/${host}${path}`
}
