/**
 * Every error sp-connect reports has a stable code from this table. The code decides the HTTP status the
 * service answers with, the CLI's exit code, and a fixed, user-safe message. Messages never contain
 * request data, tokens or secrets: details for operators go into `detail` (logged, never shown) and
 * stay free of secrets as well.
 */

/**
 * CLI exit codes (sysexits-style where one fits), so scripts can tell failures apart. The `exit` column of
 * {@link ERROR_CODES} picks one per code.
 */
export const EXIT_CODES = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  needsReauthorization: 4,
  unavailable: 69,
  config: 78,
} as const

/**
 * One row of {@link ERROR_CODES}. Only `status` and `message` are required; the other columns default to:
 * `exit` 1 ({@link EXIT_CODES}.failure), `retryable` false, `appWide` false.
 */
interface ErrorCodeSpec {
  /** HTTP status the service answers with. */
  readonly status: number
  /** The fixed, user-safe message. */
  readonly message: string
  /** CLI exit code; default 1. */
  readonly exit?: number
  /** The same request may succeed if sent again later (transient); default false. */
  readonly retryable?: boolean
  /**
   * The failure concerns the whole application (its LWA credentials), not one connection: it opens the token
   * breaker and alarms once per window instead of marking connections; default false.
   */
  readonly appWide?: boolean
}

export const ERROR_CODES = {
  // Input and API use
  invalid_request: {
    status: 400,
    message: 'The request is malformed or has invalid parameters.',
    exit: EXIT_CODES.usage,
  },
  unauthenticated: { status: 401, message: 'A valid API key is required.' },
  forbidden: { status: 403, message: 'This API key may not do that.' },
  not_found: { status: 404, message: 'Not found.', exit: EXIT_CODES.notFound },
  connection_not_found: { status: 404, message: 'No connection has that id.', exit: EXIT_CODES.notFound },
  rate_limited: { status: 429, message: 'Too many requests. Wait a moment and try again.' },

  // Authorization workflow (callback, login)
  state_missing: {
    status: 400,
    message: 'The authorization response has no state. Start the connection again.',
  },
  state_invalid: {
    status: 400,
    message: 'This authorization link is not valid. Start the connection again from the beginning.',
  },
  state_expired: { status: 400, message: 'This authorization link has expired. Start the connection again.' },
  state_used: {
    status: 400,
    message: 'This authorization link was already used. Start the connection again.',
  },
  state_browser_mismatch: {
    status: 400,
    message: 'This authorization was started in a different browser. Start it again in this browser.',
  },
  authorization_cancelled: {
    status: 400,
    message: 'The authorization was cancelled on Amazon, so no account was connected.',
  },
  callback_invalid: {
    status: 400,
    message: 'The response from Amazon is incomplete or malformed. Start the connection again.',
  },
  connect_session_invalid: {
    status: 400,
    message: 'This connect link is not valid or has expired. Ask the application for a new one.',
  },
  amazon_callback_invalid: {
    status: 400,
    message: 'The request from Amazon is incomplete or does not come from an Amazon address.',
  },
  code_rejected: {
    status: 400,
    message:
      'Amazon did not accept the authorization code (it may have expired). Start the connection again.',
  },
  code_exchange_unknown: {
    status: 504,
    message:
      'Amazon did not answer in time, so it is unknown whether the account was connected. Start the connection again.',
  },
  connection_tenant_conflict: {
    status: 409,
    message: 'This Amazon account is already connected to another user of this application.',
  },
  authorization_failed: {
    status: 400,
    message: 'Amazon reported an error, so no account was connected. Start the connection again.',
  },
  account_mismatch: {
    status: 409,
    message:
      'The Amazon account you authorized is not the one connected here. Sign in to Seller Central with the connected account and try again.',
  },
  account_verification_failed: {
    status: 503,
    message:
      'The Amazon account could not be verified just now, so nothing was changed. Start again shortly.',
  },
  login_not_configured: {
    status: 503,
    message: 'This application has not set up sign-in for authorizations started on Amazon yet.',
  },
  login_request_not_found: { status: 404, message: 'No pending sign-in request has that id.' },
  login_request_invalid: {
    status: 400,
    message: 'This confirmation link is not valid. Start again from Amazon.',
  },
  login_request_closed: {
    status: 409,
    message: 'This authorization request was already answered or has expired. Start again from Amazon.',
  },
  csrf_invalid: {
    status: 403,
    message: 'This form has expired or did not come from this page. Reload the page and try again.',
  },
  connection_disconnected: {
    status: 409,
    message: 'This connection was disconnected; authorize it again.',
    exit: EXIT_CODES.needsReauthorization,
  },
  connection_needs_reauthorization: {
    status: 409,
    message: 'The seller must authorize this application again before tokens can be issued.',
    exit: EXIT_CODES.needsReauthorization,
  },

  // LWA (token endpoint)
  lwa_invalid_grant: {
    status: 409,
    message: 'Amazon rejected the grant (revoked, expired or already used).',
    exit: EXIT_CODES.needsReauthorization,
  },
  lwa_invalid_client: {
    status: 502,
    message: "Amazon rejected the application's LWA credentials (client id or secret).",
    appWide: true,
  },
  lwa_unauthorized_client: {
    status: 502,
    message: 'Amazon says this application may not use that grant.',
    appWide: true,
  },
  lwa_invalid_request: { status: 502, message: 'Amazon rejected the token request as malformed.' },
  lwa_invalid_scope: { status: 400, message: 'Amazon rejected the requested scope.' },
  lwa_access_denied: { status: 502, message: 'Amazon denied the token request.' },
  lwa_unsupported_grant_type: { status: 502, message: 'Amazon does not support that grant type.' },
  lwa_server_error: {
    status: 503,
    message: 'Amazon’s token service failed. Try again shortly.',
    exit: EXIT_CODES.unavailable,
    retryable: true,
  },
  lwa_temporarily_unavailable: {
    status: 503,
    message: 'Amazon’s token service is unavailable. Try again shortly.',
    exit: EXIT_CODES.unavailable,
    retryable: true,
  },
  lwa_throttled: {
    status: 503,
    message: 'Amazon’s token service is throttling requests. Try again shortly.',
    exit: EXIT_CODES.unavailable,
    retryable: true,
  },
  lwa_unreachable: {
    status: 503,
    message: 'Amazon’s token service could not be reached. Try again shortly.',
    exit: EXIT_CODES.unavailable,
    retryable: true,
  },
  lwa_unexpected_response: {
    status: 502,
    message: 'Amazon’s token service answered with something unexpected.',
  },
  lwa_error: { status: 502, message: 'Amazon’s token service returned an error.' },

  // SP-API
  spapi_unreachable: {
    status: 503,
    message: 'The Selling Partner API could not be reached.',
    exit: EXIT_CODES.unavailable,
    retryable: true,
  },
  spapi_timeout: {
    status: 504,
    message: 'The Selling Partner API did not answer in time.',
    exit: EXIT_CODES.unavailable,
    retryable: true,
  },
  spapi_operation_unknown: {
    status: 400,
    message: 'That path is not a Selling Partner API operation sp-connect knows.',
    exit: EXIT_CODES.usage,
  },
  spapi_throttled: {
    status: 429,
    message:
      "The call could not get a turn within its deadline under Amazon's usage plan for this seller and operation. Retry after the time given.",
    exit: EXIT_CODES.unavailable,
    retryable: true,
  },
  spapi_queue_full: {
    status: 429,
    message: 'Too many calls are already waiting for this seller and operation. Retry after the time given.',
    exit: EXIT_CODES.unavailable,
    retryable: true,
  },
  restricted_data_token_failed: {
    status: 502,
    message: 'Amazon did not issue a Restricted Data Token for this call.',
  },

  // LWA client-secret rotation (docs/secret-rotation.md)
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  notification_client_mismatch: {
    status: 422,
    message:
      'The notification is for a different LWA client id than the one this service is configured with.',
  },
  secret_rotation_not_enrolled: {
    status: 502,
    message:
      'Amazon refused to rotate the client secret: subscribe the app to the "Application Client New Secret" notification (an SQS queue) in the developer console first.',
  },
  secret_rotation_throttled: {
    status: 503,
    message: 'Amazon allows about one client-secret rotation per minute. Try again shortly.',
    exit: EXIT_CODES.unavailable,
    retryable: true,
  },
  secret_rotation_failed: { status: 502, message: 'Amazon did not rotate the client secret.' },

  // Operator console (docs/decisions/0009-operator-console.md)
  console_sign_in_failed: { status: 401, message: 'The email or password is not right.' },
  console_sign_in_throttled: {
    status: 429,
    message: 'Too many failed sign-ins. Wait a few minutes, then try again.',
  },
  console_csrf_invalid: {
    status: 403,
    message: 'This form is out of date or did not come from this console. Reload the page and try again.',
  },
  console_session_required: { status: 401, message: 'Sign in to the operator console first.' },
  operator_exists: { status: 409, message: 'An operator with that email already exists.' },
  operator_not_found: { status: 404, message: 'No operator has that email.' },

  // Storage and keys
  key_unavailable: {
    status: 500,
    message: 'A stored token is encrypted under a key that is not configured. Check the encryption keyring.',
  },
  decryption_failed: { status: 500, message: 'A stored token failed its integrity check.' },
  lease_timeout: {
    status: 503,
    message: 'Another process is refreshing this token and did not finish in time.',
    exit: EXIT_CODES.unavailable,
    retryable: true,
  },
  store_unavailable: {
    status: 503,
    message: 'The database is unavailable or busy. Try again shortly.',
    exit: EXIT_CODES.unavailable,
    retryable: true,
  },
  database_unusable: {
    status: 500,
    message:
      'The SQLite database cannot be created or written: its directory is missing, read-only or not a directory, or the file is read-only. Check DATABASE_URL.',
    exit: EXIT_CODES.config,
  },
  config_invalid: { status: 500, message: 'The configuration is invalid.', exit: EXIT_CODES.config },
  internal: { status: 500, message: 'Something went wrong inside sp-connect.' },
} as const satisfies Record<string, ErrorCodeSpec>

export type ErrorCode = keyof typeof ERROR_CODES

function specOf(code: ErrorCode): ErrorCodeSpec {
  return ERROR_CODES[code]
}

/** The CLI exit code for an error code (the table's `exit` column; 1 when it names none). */
export function exitCodeOf(code: ErrorCode): number {
  return specOf(code).exit ?? EXIT_CODES.failure
}

/** Whether a failure with this code may pass when the same request is sent again later. */
export function isRetryable(code: ErrorCode): boolean {
  return specOf(code).retryable ?? false
}

/** Whether a failure with this code concerns the whole application rather than one connection. */
export function isAppWide(code: ErrorCode): boolean {
  return specOf(code).appWide ?? false
}

interface SpConnectErrorOptions {
  /** Operator-facing detail for logs. Must never contain tokens, codes, secrets or state values. */
  detail?: string
  cause?: unknown
  /** Seconds a client should wait before retrying (503s, 429s). */
  retryAfterSeconds?: number
}

/** The one error type sp-connect throws across its boundaries; `code` is stable, `message` fixed. */
export class SpConnectError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly detail: string | undefined
  readonly retryAfterSeconds: number | undefined

  constructor(code: ErrorCode, options: SpConnectErrorOptions = {}) {
    super(ERROR_CODES[code].message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'SpConnectError'
    this.code = code
    this.status = ERROR_CODES[code].status
    this.detail = options.detail
    this.retryAfterSeconds = options.retryAfterSeconds
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message }
  }
}

export function isSpConnectError(error: unknown, code?: ErrorCode): error is SpConnectError {
  return error instanceof SpConnectError && (code === undefined || error.code === code)
}
