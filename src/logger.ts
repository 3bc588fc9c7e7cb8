/**
 * pino, with redaction as a second line of defence: code never logs tokens, secrets, codes or state values,
 * and should a field with such a name ever reach a log line anyway, pino replaces it.
 *
 * Redaction goes by exact path (top level, and inside the objects named in REDACTED_CONTAINERS), not by any
 * field of a name anywhere: `code` and `errorCode` carry our own error codes
 * (`lwa_invalid_client`, `decryption_failed`), which operators alert on, so they are never redacted. An
 * authorization code is only ever named `spapi_oauth_code`, `authorization_code` or `authorizationCode`.
 */
import { pino } from 'pino'
import type { Logger } from './core/deps.ts'

/** Field names that hold secrets, redacted at the top level of a line and one object down. */
export const SECRET_FIELDS = [
  // OAuth / LWA
  'access_token',
  'refresh_token',
  'client_secret',
  'spapi_oauth_code',
  'authorization_code',
  'state',
  'amazon_state',
  'accessToken',
  'refreshToken',
  'clientSecret',
  'authorizationCode',
  'oauthCode',
  // our own credentials
  'apiKey',
  'api_key',
  'metricsKey',
  'password',
  'secret',
  'webhookSecret',
  'signingSecret',
  'sessionToken',
  // HTTP
  'authorization',
  'cookie',
  'set-cookie',
] as const

/** A pino redaction path segment: plain names as `.name`, others (hyphens) in brackets. */
const segment = (field: string): string => (/^[A-Za-z_$][\w$]*$/.test(field) ? `.${field}` : `["${field}"]`)

/**
 * Objects a log line may carry secrets inside: their secret fields are redacted too. Named rather than `*`:
 * pino's wildcard paths cost about 30 µs per line on the benchmark machine (docs/benchmarks.md §8), named ones
 * almost nothing.
 */
export const REDACTED_CONTAINERS = [
  'headers',
  'req.headers',
  'request.headers',
  'res.headers',
  'response.headers',
  'body',
  'form',
  'query',
  'data',
  'params',
  'credentials',
] as const

/** Every redacted path: each secret field at the top level and inside each container. */
const REDACTED_PATHS: readonly string[] = [
  ...SECRET_FIELDS.map((f) => segment(f).replace(/^\./, '')),
  ...REDACTED_CONTAINERS.flatMap((container) => SECRET_FIELDS.map((f) => `${container}${segment(f)}`)),
]

/**
 * Standard output (the service's log stream) is written in batches: a line waits until {@link LOG_BUFFER_BYTES}
 * have gathered or {@link LOG_FLUSH_MS} have passed, instead of costing a write(2) of its own on every request
 * (docs/decisions/0014-token-api-hot-path.md). pino flushes the
 * buffer synchronously when the process exits, also on an uncaught exception; only a SIGKILL (or a crash of
 * Node itself) loses the last fraction of a second. Standard error (`dev`, the simulator: read by a person as
 * it happens) is written line by line as before.
 */
const LOG_BUFFER_BYTES = 4096
const LOG_FLUSH_MS = 200

export function createLogger(level: string, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino(
    {
      level,
      base: { service: 'sp-connect' },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    },
    destination === process.stdout
      ? pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS })
      : destination === process.stderr
        ? pino.destination({ dest: 2, sync: false })
        : destination,
  )
}
