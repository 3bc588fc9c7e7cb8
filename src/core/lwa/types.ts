import type { RetryBudget } from './retry-budget.ts'
/**
 * Types shared by the LWA (Login with Amazon) token client: what goes in (credentials, grants, options)
 * and what comes out (validated tokens).
 *
 * @see ../../../../shared/spapi-facts.md §4 (token endpoint) and §5 (grantless operations)
 */

/** The application's LWA client credentials. Read afresh for every request, because the secret rotates. */
export interface LwaCredentials {
  readonly clientId: string
  readonly clientSecret: string
}

/** One of the three grants sp-connect sends to `POST /auth/o2/token`. */
export type TokenGrant =
  | { readonly grantType: 'authorization_code'; readonly code: string; readonly redirectUri: string }
  | { readonly grantType: 'refresh_token'; readonly refreshToken: string }
  /** Grantless operations; several scopes are separated by single spaces. */
  | { readonly grantType: 'client_credentials'; readonly scope: string }

export type GrantType = TokenGrant['grantType']

/** A token response that passed every check. */
export interface LwaTokens {
  readonly accessToken: string
  readonly tokenType: 'bearer'
  /** Seconds the access token lives: an integer ≥ 1, clamped to {@link MAX_EXPIRES_IN_SECONDS}. */
  readonly expiresIn: number
  /**
   * The refresh token from the response: always present for `authorization_code`; for `refresh_token`
   * `null` when LWA sent none (keep the one you have); always `null` for `client_credentials`.
   */
  readonly refreshToken: string | null
}

/** Retries for the refresh and client-credentials grants (never for a code that may have reached LWA). */
export interface RetryPolicy {
  /** Attempts in total, the first one included. Default 3. */
  readonly maxAttempts: number
  /** Backoff base: the cap before jitter is `min(maxDelayMs, baseDelayMs * 2^retry)`. Default 200. */
  readonly baseDelayMs: number
  /** Largest backoff before jitter. Default 5000. */
  readonly maxDelayMs: number
  /**
   * Longest `Retry-After` the client will wait out. A longer one ends the retries at once, and the error
   * carries `retryAfterMs` / `retryAfterSeconds` for the caller. Default 30000.
   */
  readonly maxRetryAfterMs: number
}

/** The LWA errors that mean "these client credentials are not accepted", an app-wide problem. */
export type ClientRejectionCode = 'lwa_invalid_client' | 'lwa_unauthorized_client'

/**
 * Several candidate credentials for one client id, as during a client-secret rotation (the old secret stays
 * valid for a while after the new one is issued). The client tries them in order: on `invalid_client` or
 * `unauthorized_client` from one it tries the next at once (no backoff, not counted as a retry), and it reports
 * what happened so the source can reorder them. Callbacks must not throw; the client ignores it if they do.
 */
export interface CredentialSource {
  /** The credentials to try, preferred first; read before every attempt. Never empty. */
  candidates(): readonly LwaCredentials[] | Promise<readonly LwaCredentials[]>
  /** LWA issued a token for a request made with these credentials. */
  accepted?(credentials: LwaCredentials): void
  /** LWA refused these credentials (`invalid_client` or `unauthorized_client`). */
  rejected?(credentials: LwaCredentials, code: ClientRejectionCode): void
}

export interface LwaClientOptions {
  /** The token endpoint. Amazon's `https://api.amazon.com/auth/o2/token` is the config's default, not ours. */
  readonly tokenUrl: string
  /**
   * A function (called for every attempt, so a changed secret applies without a restart), or a
   * {@link CredentialSource} holding several candidates during a client-secret rotation.
   */
  readonly credentials: (() => LwaCredentials) | CredentialSource
  /** Deadline per attempt (request and response body), in ms. Default 10000. */
  readonly timeoutMs?: number
  readonly retry?: Partial<RetryPolicy>
  /** Default `sp-connect/<version> (Language=TypeScript; Platform=Node)`. */
  readonly userAgent?: string
  /** Shared retry budget; each client has its own by default (defaults in retry-budget.ts). */
  readonly retryBudget?: RetryBudget
}

/**
 * Longest access-token lifetime we accept: Amazon's access tokens live one hour, so a larger `expires_in` is
 * treated as 3600 (see `response.ts` for why it is clamped rather than rejected).
 */
export const MAX_EXPIRES_IN_SECONDS = 3_600

export const DEFAULT_TIMEOUT_MS = 10_000

/**
 * Three attempts (../shared/SECURITY.md §4, Google SRE "Handling Overload": at most 3 attempts per request).
 * Five attempts lost fewer refreshes under random 30 % faults, but in a sustained outage (issue 8) they made 49
 * of 64 token-endpoint calls retries and kept a caller waiting ~51 s on a hanging endpoint. The caller's total
 * deadline (`LwaCallOptions.deadline`) and the shared retry budget (retry-budget.ts) bound the rest; the
 * background refresher tries again later anyway.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 3,
  baseDelayMs: 200,
  maxDelayMs: 5_000,
  maxRetryAfterMs: 30_000,
})
