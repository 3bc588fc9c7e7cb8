/**
 * When a failed SP-API attempt may be sent again, and how long to wait first.
 *
 * - 429: Amazon did not process the request, so any method is retried (within the caller's deadline).
 * - 5xx, timeouts, dropped connections: only when sending twice cannot do anything twice: GET, HEAD, PUT,
 *   DELETE, and operations the table marks `idempotent` (read-only POSTs).
 * - Anything else (POST, PATCH) only if the request never left: the connection could not be opened at all
 *   (refused, no route, DNS, TLS handshake, connect timeout), which undici reports by the cause's code before
 *   it writes a byte. A reset or timeout on an open connection may come after Amazon acted, so it is final.
 *
 * Waits use exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter").
 */
import type { SpApiOperation } from './operations.ts'

const RETRY_BASE_MS = 200
const RETRY_CAP_MS = 5_000

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE'])

/** Whether resending after the request may have reached Amazon is harmless. */
export function isIdempotent(method: string, operation: Pick<SpApiOperation, 'idempotent'>): boolean {
  return IDEMPOTENT_METHODS.has(method) || operation.idempotent === true
}

/** Full jitter: a uniform wait in [0, min(cap, base·2^attempt)). `attempt` counts from 0. */
export function backoffMs(
  attempt: number,
  random: () => number,
  baseMs = RETRY_BASE_MS,
  capMs = RETRY_CAP_MS,
) {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20)))
}

/** Error codes (on the error or its causes) that mean no connection was made, so nothing was sent. */
const NOT_CONNECTED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
])

/** True when `error` (a fetch failure) says the connection was never established. */
export function failedBeforeConnecting(error: unknown): boolean {
  let current: unknown = error
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && NOT_CONNECTED.has(code)) return true
    const errors = (current as { errors?: unknown }).errors
    // Happy-eyeballs connects report an AggregateError of per-address failures.
    if (Array.isArray(errors) && errors.length > 0 && errors.every((e) => failedBeforeConnecting(e)))
      return true
    current = current.cause
  }
  return false
}

/** `Retry-After` as milliseconds (delta-seconds or HTTP date), or undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined
  const trimmed = value.trim()
  if (/^\d{1,6}(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const date = Date.parse(trimmed)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, Math.min(date - now, 3_600_000))
}

/** `x-amzn-RateLimit-Limit` as requests per second, when it is a usable number. */
export function parseRateLimit(value: string | null): number | undefined {
  if (value === null) return undefined
  const rate = Number(value.trim())
  return Number.isFinite(rate) && rate > 0 && rate < 100_000 ? rate : undefined
}
