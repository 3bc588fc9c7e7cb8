/**
 * Realistic-looking identifiers and opaque values in the shapes Amazon uses (spapi-facts.md §0).
 * All randomness comes from node:crypto; none of these values is predictable.
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto'

const UPPER_ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

function randomFrom(alphabet: string, length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)]
  return out
}

/** A seller id shaped like Amazon's example `A3FHEXAMPLEYWS`: `A` plus 12 or 13 uppercase letters/digits. */
export function newSellingPartnerId(): string {
  return `A${randomFrom(UPPER_ALNUM, 12 + randomInt(2))}`
}

/** An `spapi_oauth_code`, shaped like the docs example `SplxlOexamplebYS6WxSbIA`. */
export function newAuthorizationCode(): string {
  return `S${randomFrom(ALNUM, 21)}`
}

/** An opaque `amazon_state` value (192 bits). */
export function newAmazonState(): string {
  return randomBytes(24).toString('base64url')
}

/** A legacy MWS auth token: `amzn.mws.<uuid>`. */
export function newMwsAuthToken(): string {
  return `amzn.mws.${randomUUID()}`
}

export function newRequestId(): string {
  return randomUUID()
}

/** LWA's `error_index`: "a long opaque string". */
export function newErrorIndex(): string {
  return randomBytes(30).toString('base64url')
}

export function newGrantId(): string {
  return randomBytes(12).toString('base64url')
}
