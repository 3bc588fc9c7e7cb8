/**
 * Webhook signatures, Stripe-style. Every delivery carries
 *
 *     sp-connect-signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
 *
 * where the HMAC key is the webhook secret (its UTF-8 bytes) and the signed message is the decimal timestamp,
 * a full stop, and the exact request body bytes: `"<t>.<body>"`. The signature is 64 lowercase hex digits.
 *
 * A receiver recomputes the HMAC over the raw body it received (before any JSON parsing), compares it in
 * constant time with each `v1` value (a header may carry several, e.g. one per secret while a secret is being
 * rotated; any match is enough), and rejects timestamps too far from its own clock (default 5 minutes), which
 * bounds replays. Unknown schemes (`v0=`, `v2=`…) are ignored, so new schemes can be added alongside `v1`.
 * The timestamp is taken at each attempt, so a retried delivery has a new signature over the same body.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

/** The header that carries the signature. */
export const SIGNATURE_HEADER = 'sp-connect-signature'

/** How far (seconds) a signature's timestamp may be from the receiver's clock, by default. */
export const DEFAULT_TOLERANCE_SECONDS = 300

const HEX_SIGNATURE = /^[0-9a-f]{64}$/
const TIMESTAMP = /^\d{1,15}$/

/** The hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`. */
export function computeSignature(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex')
}

/**
 * The `sp-connect-signature` header value for `body` sent at `timestamp` (unix seconds): `t=<t>,v1=<hex>`.
 * Several secrets (rotation) give one `v1` per secret, in the order given.
 */
export function signWebhook(secret: string | readonly string[], timestamp: number, body: string): string {
  const secrets = typeof secret === 'string' ? [secret] : secret
  if (secrets.length === 0 || secrets.some((s) => s.length === 0)) {
    throw new TypeError('A webhook secret must not be empty.')
  }
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new TypeError('A webhook timestamp must be a non-negative integer number of seconds.')
  }
  return [`t=${timestamp}`, ...secrets.map((s) => `v1=${computeSignature(s, timestamp, body)}`)].join(',')
}

/** The parts of a signature header; undefined when it has no single valid timestamp or no valid `v1`. */
export function parseSignatureHeader(
  header: string,
): { timestamp: number; signatures: string[] } | undefined {
  let timestamp: number | undefined
  let timestamps = 0
  const signatures: string[] = []
  for (const part of header.split(',')) {
    const eq = part.indexOf('=')
    if (eq <= 0) continue
    const key = part.slice(0, eq).trim()
    const value = part.slice(eq + 1).trim()
    if (key === 't') {
      timestamps += 1
      if (TIMESTAMP.test(value)) timestamp = Number(value)
    } else if (key === 'v1' && HEX_SIGNATURE.test(value.toLowerCase())) {
      signatures.push(value.toLowerCase())
    }
  }
  // Two timestamps would let an attacker pair a fresh one with an old signature in a lenient parser.
  if (timestamps !== 1 || timestamp === undefined || signatures.length === 0) return undefined
  return { timestamp, signatures }
}

/**
 * True when `header` carries a `v1` signature of `body` under `secret` whose timestamp is within
 * `toleranceSeconds` of `nowSeconds`. Never throws on a malformed header: it is simply not valid.
 */
export function verifyWebhook(
  secret: string,
  header: string,
  body: string,
  nowSeconds: number,
  toleranceSeconds = DEFAULT_TOLERANCE_SECONDS,
): boolean {
  if (secret.length === 0) return false
  const parsed = parseSignatureHeader(header)
  if (!parsed) return false
  if (!(Math.abs(nowSeconds - parsed.timestamp) <= toleranceSeconds)) return false
  const expected = Buffer.from(computeSignature(secret, parsed.timestamp, body), 'hex')
  let valid = false
  // Every candidate is compared (no early exit), each in constant time.
  for (const signature of parsed.signatures) {
    if (timingSafeEqual(expected, Buffer.from(signature, 'hex'))) valid = true
  }
  return valid
}
