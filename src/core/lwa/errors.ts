/**
 * The one error class for the LWA token endpoint. Its `code` (from `ERROR_CODES`) says what went wrong; the
 * extra fields say what LWA answered, and whether trying again later can help.
 *
 * What an `LwaError` never holds: the client secret, codes, refresh or access tokens, the request, the
 * response or its raw body. From an LWA error body it keeps only `error`, `error_description` (LWA's own
 * text, redacted and truncated, in `detail`), `error_index` and `request_id`.
 */
import { type ErrorCode, isRetryable, SpConnectError } from '../../domain/errors.ts'

export type LwaErrorCode = Extract<ErrorCode, `lwa_${string}`>

/**
 * Longest `Retry-After` (seconds) passed on to our own API clients. LWA (or whatever answers at the token URL)
 * may ask for anything, `Retry-After: 86400` included; a client told to go away for a day would stop asking
 * long after the endpoint recovered. The client's own waits are bounded separately (`maxRetryAfterMs`).
 */
export const MAX_CLIENT_RETRY_AFTER_SECONDS = 60

/**
 * OAuth `error` values (RFC 6749 §5.2, plus the ones Amazon's SDKs know) and the code each maps to. An
 * `error` not listed here becomes `lwa_error` (or `lwa_server_error` on a 5xx, `lwa_throttled` on a 429).
 */
export const OAUTH_ERROR_CODES = Object.freeze({
  invalid_grant: 'lwa_invalid_grant',
  invalid_client: 'lwa_invalid_client',
  unauthorized_client: 'lwa_unauthorized_client',
  invalid_request: 'lwa_invalid_request',
  invalid_scope: 'lwa_invalid_scope',
  access_denied: 'lwa_access_denied',
  unsupported_grant_type: 'lwa_unsupported_grant_type',
  server_error: 'lwa_server_error',
  temporarily_unavailable: 'lwa_temporarily_unavailable',
} as const satisfies Record<string, LwaErrorCode>)

/** The code for an OAuth `error` value, or undefined when it is not one we know. */
function codeForOAuthError(error: string): LwaErrorCode | undefined {
  // hasOwn, not `in`: LWA's text must not be able to pick `constructor` or `__proto__` off the prototype
  return Object.hasOwn(OAUTH_ERROR_CODES, error)
    ? OAUTH_ERROR_CODES[error as keyof typeof OAUTH_ERROR_CODES]
    : undefined
}

/**
 * The code for a non-200 answer: a 429 is throttling whatever the body says; a known OAuth error wins next;
 * any other 5xx is a server error; an unknown OAuth error is `lwa_error`; anything else is unexpected.
 */
export function codeForErrorResponse(httpStatus: number, oauthError: string | undefined): LwaErrorCode {
  if (httpStatus === 429) return 'lwa_throttled'
  const known = oauthError === undefined ? undefined : codeForOAuthError(oauthError)
  if (known !== undefined) return known
  if (httpStatus >= 500 && httpStatus <= 599) return 'lwa_server_error'
  return oauthError === undefined ? 'lwa_unexpected_response' : 'lwa_error'
}

interface LwaErrorOptions {
  /** Operator detail: free of tokens, codes and secrets (see {@link sanitizeDescription}). */
  readonly detail?: string | undefined
  readonly cause?: unknown
  readonly oauthError?: string | undefined
  readonly httpStatus?: number | undefined
  readonly requestId?: string | undefined
  readonly errorIndex?: string | undefined
  /** Defaults to the code's `retryable` column in ERROR_CODES (core/errors.ts). */
  readonly retryable?: boolean | undefined
  readonly retryAfterMs?: number | undefined
}

/** LWA refused, failed, could not be reached, or answered with something we will not accept. */
export class LwaError extends SpConnectError {
  declare readonly code: LwaErrorCode
  /** LWA's OAuth `error` value, e.g. `invalid_grant`. */
  readonly oauthError: string | undefined
  readonly httpStatus: number | undefined
  /** LWA's `request_id` (body) or `x-amzn-RequestId` (header): safe to log, useful to Amazon support. */
  readonly requestId: string | undefined
  /** LWA's opaque `error_index`, when it sent one. */
  readonly errorIndex: string | undefined
  /** True for 5xx, 429, network failures and timeouts: the same request may pass later. */
  readonly retryable: boolean
  /**
   * How long LWA asked us to wait (`Retry-After`), in ms, as sent. `retryAfterSeconds` (what our API clients
   * are told) is the same capped to {@link MAX_CLIENT_RETRY_AFTER_SECONDS}.
   */
  readonly retryAfterMs: number | undefined

  constructor(code: LwaErrorCode, options: LwaErrorOptions = {}) {
    super(code, {
      ...(options.detail === undefined ? {} : { detail: options.detail }),
      ...(options.cause === undefined ? {} : { cause: options.cause }),
      ...(options.retryAfterMs === undefined
        ? {}
        : {
            retryAfterSeconds: Math.min(
              MAX_CLIENT_RETRY_AFTER_SECONDS,
              Math.ceil(options.retryAfterMs / 1000),
            ),
          }),
    })
    this.name = 'LwaError'
    this.oauthError = options.oauthError
    this.httpStatus = options.httpStatus
    this.requestId = options.requestId
    this.errorIndex = options.errorIndex
    this.retryable = options.retryable ?? isRetryable(code)
    this.retryAfterMs = options.retryAfterMs
  }
}

const MAX_DESCRIPTION_CHARS = 300

/**
 * Token-shaped text: access, refresh and restricted data tokens (`Atza|…`, `Atzr|…`, `Atz.sprdt|…`) and LWA
 * client secrets (`amzn1.oa2-cs.v1.…`). LWA is not known to echo them, but its text goes into logs.
 */
const TOKEN_LIKE = /Atz[A-Za-z.]*\|[^\s"',;]*|amzn1\.oa2-cs\.[^\s"',;]*/g

/**
 * Makes LWA's `error_description` safe for `detail`: control characters become spaces, token-shaped text is
 * replaced, and the result is cut to 300 characters.
 */
export function sanitizeDescription(text: string): string {
  let printable = ''
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0
    printable += code < 0x20 || (code >= 0x7f && code < 0xa0) ? ' ' : char
  }
  const redacted = printable.replace(TOKEN_LIKE, '[redacted]').trim()
  const chars = [...redacted]
  return chars.length > MAX_DESCRIPTION_CHARS
    ? `${chars.slice(0, MAX_DESCRIPTION_CHARS - 1).join('')}…`
    : redacted
}

/**
 * Returns the error with every occurrence of the given secrets removed: replaced in `detail`, and the
 * LWA-supplied fields that contain one dropped. The last line of defence for values (such as
 * authorization codes) that have no recognisable shape. Strings shorter than 4 characters are skipped,
 * because replacing them would mangle the text without protecting anything.
 */
export function redactSecrets(error: LwaError, secrets: readonly string[]): LwaError {
  const relevant = secrets.filter((secret) => secret.length >= 4)
  const leaks = (value: string | undefined) =>
    value !== undefined && relevant.some((secret) => value.includes(secret))
  if (![error.detail, error.oauthError, error.requestId, error.errorIndex].some(leaks)) return error
  let detail = error.detail
  for (const secret of relevant) detail = detail?.split(secret).join('[redacted]')
  return new LwaError(error.code, {
    detail,
    oauthError: leaks(error.oauthError) ? undefined : error.oauthError,
    httpStatus: error.httpStatus,
    requestId: leaks(error.requestId) ? undefined : error.requestId,
    errorIndex: leaks(error.errorIndex) ? undefined : error.errorIndex,
    retryable: error.retryable,
    retryAfterMs: error.retryAfterMs,
  })
}
