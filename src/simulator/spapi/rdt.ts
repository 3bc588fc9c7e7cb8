/**
 * Restricted Data Tokens, stateless like the simulator's LWA tokens: `Atz.sprdt|<payload>.<mac>`, the payload
 * base64url JSON and the MAC HMAC-SHA256 over prefix and payload (the prefix keeps them apart from LWA tokens
 * signed with the same key). An RDT is bound to the app and seller of the access token it was made from and to
 * the restricted resources (method, path, dataElements) it names; it is valid for one hour (spapi-facts §6.3).
 * Amazon's RDTs are opaque; only the `Atz.sprdt|` prefix is Amazon's.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import { REGIONS } from '../../domain/regions.ts'

const RDT_PREFIX = 'Atz.sprdt|'
export const RDT_TTL_S = 3600
/** 50 resources with long paths do not fit LWA's 2048 bytes; Amazon's RDTs are longer than its access tokens. */
const MAX_RDT_BYTES = 64 * 1024

const resource = z.object({
  m: z.enum(['GET', 'PUT', 'POST', 'DELETE']),
  p: z.string().min(1),
  d: z.array(z.string()).optional(),
})

const rdtClaims = z.object({
  t: z.literal('rdt'),
  c: z.string().min(1),
  sp: z.string().min(1),
  r: z.enum(REGIONS),
  /** Serial of the grant behind the token (revocation checks). */
  gn: z.number().int().nonnegative(),
  /** Serial of this token (expire-tokens checks). */
  n: z.number().int().nonnegative(),
  iat: z.number(),
  exp: z.number(),
  res: z.array(resource).min(1),
})

type RdtClaims = z.infer<typeof rdtClaims>
export type RdtResource = z.infer<typeof resource>

function mac(secret: string, signed: string): string {
  return createHmac('sha256', secret).update(signed, 'utf8').digest('base64url')
}

export function signRdt(secret: string, claims: Omit<RdtClaims, 't'>): string {
  const payload = Buffer.from(JSON.stringify({ t: 'rdt', ...claims }), 'utf8').toString('base64url')
  return `${RDT_PREFIX}${payload}.${mac(secret, `${RDT_PREFIX}${payload}`)}`
}

export function isRdt(token: string): boolean {
  return token.startsWith(RDT_PREFIX)
}

export function verifyRdt(secret: string, token: string): RdtClaims | undefined {
  if (!isRdt(token) || Buffer.byteLength(token, 'utf8') > MAX_RDT_BYTES) return undefined
  const body = token.slice(RDT_PREFIX.length)
  const dot = body.indexOf('.')
  if (dot <= 0 || dot !== body.lastIndexOf('.')) return undefined
  const payload = body.slice(0, dot)
  const given = Buffer.from(body.slice(dot + 1), 'utf8')
  const expected = Buffer.from(mac(secret, `${RDT_PREFIX}${payload}`), 'utf8')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
  try {
    const parsed = rdtClaims.safeParse(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}

/**
 * Whether a resource path names this concrete request path: segment by segment, equal, or a `{placeholder}`
 * in the resource standing for any one segment (`/orders/v0/orders/{orderId}` opens every order).
 */
function resourcePathCovers(resourcePath: string, requestPath: string): boolean {
  const wanted = resourcePath.split('/')
  const given = requestPath.split('/')
  if (wanted.length !== given.length) return false
  return wanted.every((segment, i) => segment === given[i] || /^\{\w+\}$/.test(segment))
}

/** The resource of the RDT that opens `method path`, or undefined when it names none. */
export function coveringResource(claims: RdtClaims, method: string, path: string): RdtResource | undefined {
  return claims.res.find((r) => r.m === method && resourcePathCovers(r.p, path))
}
