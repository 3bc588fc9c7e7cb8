/**
 * Which client a request comes from, for abuse limits. The socket's remote address is the truth unless the
 * operator says that N proxies of theirs sit in front (`SP_CONNECT_TRUSTED_PROXY_HOPS`): each appends the
 * address it received the request from to `X-Forwarded-For`, so the Nth entry from the right was written by
 * the outermost trusted proxy and is the client; everything left of it is whatever the client chose to send.
 */
import { isIP } from 'node:net'
import { getConnInfo } from '@hono/node-server/conninfo'
import type { Context } from 'hono'

/** The one address every request without socket information shares (in-process `app.request()`). */
export const UNKNOWN_ADDRESS = 'unknown'

/** Longest `X-Forwarded-For` header looked at; longer ones are treated as absent. */
const MAX_FORWARDED_FOR_LENGTH = 4096

/**
 * The socket's remote address, or undefined when the app runs without @hono/node-server's bindings (for
 * example `app.request()` in a test, or a fetch handler that did not pass the env on).
 */
export function socketAddress(c: Context): string | undefined {
  const env: unknown = c.env
  if (!hasSocket(env)) return undefined
  try {
    return getConnInfo(c).remote.address ?? undefined
  } catch {
    return undefined
  }
}

function hasSocket(env: unknown): boolean {
  if (typeof env !== 'object' || env === null) return false
  const bindings = 'server' in env && typeof env.server === 'object' && env.server !== null ? env.server : env
  if (!('incoming' in bindings)) return false
  const incoming = bindings.incoming
  return typeof incoming === 'object' && incoming !== null && 'socket' in incoming && incoming.socket != null
}

/**
 * The client address: the socket's, or with `trustedHops` > 0 the `trustedHops`th entry from the right of
 * `X-Forwarded-For` (the socket's address when the header is missing or shorter, since then the request did
 * not pass through all the proxies). Always an IP address or {@link UNKNOWN_ADDRESS}, never free text.
 */
export function resolveClientAddress(
  socket: string | undefined,
  forwardedFor: string | undefined,
  trustedHops: number,
): string {
  const fromSocket = normalizeAddress(socket) ?? UNKNOWN_ADDRESS
  if (trustedHops <= 0 || forwardedFor === undefined || forwardedFor.length > MAX_FORWARDED_FOR_LENGTH)
    return fromSocket
  const entries = forwardedFor.split(',').map((entry) => entry.trim())
  const chosen = entries[entries.length - trustedHops]
  if (entries.length < trustedHops || chosen === undefined) return fromSocket
  // A proxy we trust wrote this entry, but it is still checked: a malformed one must not become a key.
  return normalizeAddress(chosen) ?? fromSocket
}

/** An IP address in a canonical form (IPv4-mapped IPv6 as IPv4, lower case), or undefined. */
export function normalizeAddress(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  let address = value.trim()
  // Some proxies write "[v6]:port" or "v4:port".
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address)
  if (bracketed?.[1] !== undefined) address = bracketed[1]
  else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(address)) address = address.slice(0, address.lastIndexOf(':'))
  address = address.toLowerCase()
  const version = isIP(address)
  if (version === 4) return address
  if (version !== 6) return undefined
  const mapped = /^(?:0{0,4}:){0,5}(?:0{0,4}:)?ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(address)
  if (mapped?.[1] !== undefined && isIP(mapped[1]) === 4) return mapped[1]
  return address
}

/**
 * The bucket an address is limited in: an IPv4 address on its own, an IPv6 address by its /64, since one
 * subscriber usually holds a whole /64 and could otherwise rotate through it.
 */
export function addressBucket(address: string): string {
  if (isIP(address) !== 6) return address
  const groups = expandIpv6(address)
  return groups === undefined ? address : `${groups.slice(0, 4).join(':')}::/64`
}

function expandIpv6(address: string): string[] | undefined {
  const zoneless = address.split('%')[0] ?? address
  const [head = '', tail] = zoneless.split('::')
  const parse = (part: string): string[] => (part === '' ? [] : part.split(':'))
  const left = parse(head)
  const right = tail === undefined ? [] : parse(tail)
  // An embedded IPv4 tail (::ffff:1.2.3.4 forms not caught earlier) counts as two groups.
  const last = right.length > 0 ? right[right.length - 1] : left[left.length - 1]
  const extra = last?.includes('.') ? 1 : 0
  const missing = 8 - left.length - right.length - extra
  if (tail === undefined && missing !== 0) return undefined
  const groups = [...left, ...Array.from({ length: Math.max(0, missing) }, () => '0'), ...right]
  return groups.map((group) => (group.includes('.') ? group : group.replace(/^0+(?=.)/, '')))
}
