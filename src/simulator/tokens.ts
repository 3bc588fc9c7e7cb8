/**
 * Stateless LWA tokens: `Atzr|<payload>.<mac>` (refresh) and `Atza|<payload>.<mac>` (access), where the
 * payload is base64url JSON and the MAC is HMAC-SHA256 over prefix and payload. Amazon's tokens are
 * opaque; only the prefixes and the 2048-byte ceiling are Amazon's (spapi-facts.md §0).
 *
 * Every grant and access token carries a serial number from one simulator-wide counter, so revocations
 * and "expire all access tokens" can cover exactly the tokens issued up to that moment, even when the
 * clock has not moved.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import { REGIONS } from '../domain/regions.ts'

const REFRESH_PREFIX = 'Atzr|'
const ACCESS_PREFIX = 'Atza|'
export const MAX_TOKEN_BYTES = 2048

const region = z.enum(REGIONS)

const refreshClaims = z.object({
  t: z.literal('r'),
  /** Grant id. */
  g: z.string().min(1),
  /** Grant serial. */
  n: z.number().int().nonnegative(),
  sp: z.string().min(1),
  c: z.string().min(1),
  r: region,
  /** Issued at, simulator-clock ms. */
  iat: z.number(),
})

const accessGrantClaims = z.object({
  t: z.literal('a'),
  g: z.string().min(1),
  /** Serial of the grant behind the token (revocation checks). */
  gn: z.number().int().nonnegative(),
  sp: z.string().min(1),
  r: region,
  c: z.string().min(1),
  /** Serial of this token (expire-tokens checks). */
  n: z.number().int().nonnegative(),
  iat: z.number(),
  exp: z.number(),
})

const accessGrantlessClaims = z.object({
  t: z.literal('a'),
  /** Space-separated scopes of a client_credentials token. */
  s: z.string().min(1),
  c: z.string().min(1),
  n: z.number().int().nonnegative(),
  iat: z.number(),
  exp: z.number(),
})

type RefreshClaims = z.infer<typeof refreshClaims>
type AccessGrantClaims = z.infer<typeof accessGrantClaims>
type AccessGrantlessClaims = z.infer<typeof accessGrantlessClaims>
type AccessClaims = AccessGrantClaims | AccessGrantlessClaims

function mac(secret: string, signed: string): string {
  return createHmac('sha256', secret).update(signed, 'utf8').digest('base64url')
}

function sign(secret: string, prefix: string, claims: object): string {
  const payload = Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url')
  const token = `${prefix}${payload}.${mac(secret, `${prefix}${payload}`)}`
  if (Buffer.byteLength(token, 'utf8') > MAX_TOKEN_BYTES) throw new RangeError('Token exceeds 2048 bytes.')
  return token
}

/** The verified JSON payload, or undefined when the prefix, shape or MAC is wrong. */
function open(secret: string, prefix: string, token: string): unknown {
  if (!token.startsWith(prefix) || Buffer.byteLength(token, 'utf8') > MAX_TOKEN_BYTES) return undefined
  const body = token.slice(prefix.length)
  const dot = body.indexOf('.')
  if (dot <= 0 || dot !== body.lastIndexOf('.')) return undefined
  const payload = body.slice(0, dot)
  const given = Buffer.from(body.slice(dot + 1), 'utf8')
  const expected = Buffer.from(mac(secret, `${prefix}${payload}`), 'utf8')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
  try {
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
}

export function signRefreshToken(secret: string, claims: Omit<RefreshClaims, 't'>): string {
  return sign(secret, REFRESH_PREFIX, { t: 'r', ...claims })
}

export function signAccessToken(
  secret: string,
  claims: Omit<AccessGrantClaims, 't'> | Omit<AccessGrantlessClaims, 't'>,
): string {
  return sign(secret, ACCESS_PREFIX, { t: 'a', ...claims })
}

export function verifyRefreshToken(secret: string, token: string): RefreshClaims | undefined {
  const parsed = refreshClaims.safeParse(open(secret, REFRESH_PREFIX, token))
  return parsed.success ? parsed.data : undefined
}

export function verifyAccessToken(secret: string, token: string): AccessClaims | undefined {
  const raw = open(secret, ACCESS_PREFIX, token)
  const grant = accessGrantClaims.safeParse(raw)
  if (grant.success) return grant.data
  const grantless = accessGrantlessClaims.safeParse(raw)
  return grantless.success ? grantless.data : undefined
}

export function isGrantless(claims: AccessClaims): claims is AccessGrantlessClaims {
  return 's' in claims
}
