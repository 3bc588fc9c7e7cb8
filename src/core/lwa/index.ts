/**
 * The LWA (Login with Amazon) token client: exchange authorization codes, refresh access tokens, and get
 * grantless tokens from `POST /auth/o2/token`, with deadlines, safe retries and strict response checks.
 */
export { type LwaCallOptions, LwaClient } from './client.ts'
export {
  codeForErrorResponse,
  codeForOAuthError,
  isLwaError,
  LwaError,
  type LwaErrorCode,
  type LwaErrorOptions,
  OAUTH_ERROR_CODES,
} from './errors.ts'
export { DEFAULT_USER_AGENT, type SendOptions, sendTokenRequest, tokenRequestBody } from './request.ts'
export { MAX_RESPONSE_BYTES, type ProcessOptions, processTokenResponse } from './response.ts'
export { backoffDelay, parseRetryAfter, resolveRetryPolicy } from './retry.ts'
export {
  type ClientRejectionCode,
  type CredentialSource,
  DEFAULT_RETRY_POLICY,
  DEFAULT_TIMEOUT_MS,
  type GrantType,
  type LwaClientOptions,
  type LwaCredentials,
  type LwaTokens,
  MAX_EXPIRES_IN_SECONDS,
  type RetryPolicy,
  type TokenGrant,
} from './types.ts'
