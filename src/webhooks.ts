/**
 * `sp-connect/webhooks`: what a webhook receiver needs to check that a delivery came from sp-connect. It loads
 * nothing but `node:crypto`, so a receiver can import it without the rest of the package.
 *
 * ```ts
 * import { SIGNATURE_HEADER, verifyWebhook } from 'sp-connect/webhooks'
 *
 * const body = await request.text() // the raw body, before any JSON parsing
 * const ok = verifyWebhook(secret, request.headers.get(SIGNATURE_HEADER) ?? '', body, Date.now() / 1000)
 * if (!ok) return new Response(null, { status: 400 })
 * ```
 *
 * The header is `sp-connect-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`; during a
 * secret rotation it carries one `v1` per secret and any match is enough.
 */
export {
  DEFAULT_TOLERANCE_SECONDS,
  parseSignatureHeader,
  SIGNATURE_HEADER,
  verifyWebhook,
} from './core/events/signature.ts'
