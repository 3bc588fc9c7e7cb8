/**
 * The LWA token client: one method per grant, each a deadline-bound request (`request.ts`), a strict check
 * of the answer (`response.ts`), and, where it is safe, bounded retries (`retry.ts`).
 *
 * Safety of retries (../shared/SECURITY.md §4): a refresh with Amazon's non-rotating refresh tokens and a
 * client-credentials request can be repeated, so they are retried on 5xx, 429, timeouts and network
 * failures. An authorization code is single use and a second redemption may revoke what the first one
 * produced, so `exchangeCode` is retried only when the request provably never left this machine.
 *
 * Several client secrets (rotation): with a {@link CredentialSource}, an `invalid_client` or
 * `unauthorized_client` answer for one candidate sends the same request with the next candidate at once,
 * inside the same attempt (no backoff, no retry budget spent). Once every candidate was refused, the source is
 * read once more (a rejection may have made it reload, and another process may have stored a new secret),
 * and any candidate not yet tried is tried. Only then does the call fail with the last rejection. This is safe
 * even for an authorization code: LWA authenticates the client before it looks at the grant, so a refused
 * client never consumed the code.
 *
 * @example
 * const lwa = new LwaClient({ tokenUrl: config.lwaTokenUrl, credentials: () => config.lwaCredentials }, deps)
 * const tokens = await lwa.refresh(refreshToken, { signal: AbortSignal.timeout(20_000) })
 */
import { SpConnectError } from '../../domain/errors.ts'
import type { Deps } from '../deps.ts'
import { NO_METRICS } from '../metrics.ts'
import { LwaError, redactSecrets } from './errors.ts'
import { checkCredentials, sendTokenRequest, untilAborted } from './request.ts'
import { cancelBody, processTokenResponse, responseRequestId } from './response.ts'
import { resolveRetryPolicy, withRetries } from './retry.ts'
import { RetryBudget } from './retry-budget.ts'
import { stallTolerantTimeout } from './stall-tolerant-timeout.ts'
import {
  type ClientRejectionCode,
  type CredentialSource,
  DEFAULT_TIMEOUT_MS,
  type LwaClientOptions,
  type LwaCredentials,
  type LwaTokens,
  type RetryPolicy,
  type TokenGrant,
} from './types.ts'

interface LwaCallOptions {
  /** Aborts the current attempt and any wait between attempts; the call then rejects with its reason. */
  readonly signal?: AbortSignal | undefined
  /**
   * The caller's total deadline on `deps.now`'s clock (ms since the epoch): no retry waits past it, and an
   * attempt's timeout is cut to what is left. A call that starts after it fails at once with `lwa_unreachable`.
   */
  readonly deadline?: number | undefined
  /** Fewer attempts than the policy's for this call (1 for the circuit breaker's half-open probe). */
  readonly maxAttempts?: number | undefined
}

/**
 * Whether a failed call provably never reached LWA (DNS failure, refused or unroutable connection). For a
 * code exchange anything else that is `lwa_unreachable` (a timeout, a reset) leaves the outcome unknown: the
 * code may have been redeemed.
 */
export function wasNotSent(error: unknown): boolean {
  return error instanceof LwaError && notSent.has(error)
}

/**
 * Failure codes that prove the connection was never established, so no byte of the request (and no
 * authorization code) reached LWA: DNS failures, refused or unroutable connections, connect timeouts.
 * ECONNRESET, ETIMEDOUT and the like are absent on purpose: they can happen after the request was sent.
 */
const NOT_SENT_CODES: ReadonlySet<string> = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNREFUSED',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
])

/** Network errors raised by a connection that was never made; only these let `exchangeCode` retry. */
const notSent = new WeakSet<LwaError>()

/** Answers that refuse the client credentials themselves: the next candidate may be accepted. */
const CLIENT_REJECTIONS: ReadonlySet<string> = new Set<ClientRejectionCode>([
  'lwa_invalid_client',
  'lwa_unauthorized_client',
])

function isClientRejection(error: unknown): error is LwaError & { code: ClientRejectionCode } {
  return error instanceof LwaError && CLIENT_REJECTIONS.has(error.code)
}

/** A plain credentials function is a source with one candidate and nobody to tell. */
function toSource(credentials: LwaClientOptions['credentials']): CredentialSource {
  if (typeof credentials === 'function') return { candidates: () => [credentials()] }
  if (typeof credentials?.candidates === 'function') return credentials
  throw new TypeError('LWA credentials must be given as a function or a credential source.')
}

export class LwaClient {
  readonly #tokenUrl: string
  readonly #credentials: CredentialSource
  readonly #timeoutMs: number
  readonly #policy: RetryPolicy
  readonly #userAgent: string | undefined
  readonly #deps: Deps
  /** Retries of refresh and client_credentials calls share it; see retry-budget.ts. */
  readonly retryBudget: RetryBudget

  /** Throws `TypeError` for a token URL that is not http(s) or carries credentials, or a bad timeout/policy. */
  constructor(options: LwaClientOptions, deps: Deps) {
    let url: URL
    try {
      url = new URL(options.tokenUrl)
    } catch {
      throw new TypeError('The LWA token URL is not a valid URL.')
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new TypeError('The LWA token URL must be http(s).')
    }
    if (url.username !== '' || url.password !== '') {
      throw new TypeError('The LWA token URL must not contain credentials.')
    }
    const credentials = toSource(options.credentials)
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new TypeError('The LWA timeout must be a positive number of milliseconds.')
    }
    this.#tokenUrl = url.href
    this.#credentials = credentials
    this.#timeoutMs = timeoutMs
    this.#policy = resolveRetryPolicy(options.retry)
    this.#userAgent = options.userAgent
    this.#deps = deps
    this.retryBudget = options.retryBudget ?? new RetryBudget({}, deps)
  }

  /**
   * Redeems an authorization code (`spapi_oauth_code`) for a refresh and an access token.
   *
   * Never retried once the request may have reached LWA (codes are single use): a 5xx, a timeout or a
   * reset connection is thrown at once ({@link wasNotSent} tells the two kinds of `lwa_unreachable` apart).
   * Retried once at most, and only after DNS failures and refused or unroutable connections. A rejected,
   * expired or reused code throws `lwa_invalid_grant`.
   */
  async exchangeCode(
    code: string,
    redirectUri: string,
    opts: LwaCallOptions = {},
  ): Promise<LwaTokens & { refreshToken: string }> {
    requireText(code, 'code')
    requireText(redirectUri, 'redirectUri')
    const tokens = await this.#run(
      { grantType: 'authorization_code', code, redirectUri },
      // One retry at most: the code lives minutes, and a second refused connection says LWA is not there
      { ...opts, maxAttempts: Math.min(opts.maxAttempts ?? 2, 2) },
      wasNotSent,
    )
    const { refreshToken } = tokens
    // processTokenResponse already requires it for this grant; this narrows the type
    if (refreshToken === null) throw new LwaError('lwa_unexpected_response', { detail: 'no refresh_token' })
    return Object.freeze({ ...tokens, refreshToken })
  }

  /**
   * Exchanges a refresh token for an access token. Retried on 5xx, 429, timeouts and network failures
   * with full-jitter backoff, honouring `Retry-After` up to `maxRetryAfterMs`. `refreshToken` in the
   * result is `null` unless LWA sent one (Amazon's refresh tokens do not rotate; if one comes back, store
   * it in place of the old one). A revoked or expired refresh token throws `lwa_invalid_grant`.
   */
  async refresh(refreshToken: string, opts: LwaCallOptions = {}): Promise<LwaTokens> {
    requireText(refreshToken, 'refreshToken')
    return await this.#run({ grantType: 'refresh_token', refreshToken }, opts, isTransient)
  }

  /**
   * Gets an access token for grantless operations (`scope` such as `sellingpartnerapi::notifications`;
   * several scopes separated by spaces). Same retries as {@link refresh}; `refreshToken` is always `null`.
   */
  async clientCredentials(scope: string, opts: LwaCallOptions = {}): Promise<LwaTokens> {
    requireText(scope, 'scope')
    return await this.#run({ grantType: 'client_credentials', scope }, opts, isTransient)
  }

  #run(grant: TokenGrant, opts: LwaCallOptions, mayRetry: (error: unknown) => boolean): Promise<LwaTokens> {
    const { logger, sleep, random, now } = this.#deps
    const { signal, deadline } = opts
    const metrics = this.#deps.metrics ?? NO_METRICS
    const policy =
      opts.maxAttempts === undefined
        ? this.#policy
        : { ...this.#policy, maxAttempts: Math.max(1, Math.min(this.#policy.maxAttempts, opts.maxAttempts)) }
    this.retryBudget.recordRequest()
    return withRetries((attempt) => this.#attempt(grant, attempt, signal, deadline), {
      policy,
      sleep,
      random,
      signal,
      mayRetry,
      deadline,
      now,
      spendRetry: () => this.retryBudget.tryRetry(),
      onRetry: (error, attempt, delayMs) => {
        metrics.lwaRetry(grant.grantType)
        logger.debug(
          {
            grantType: grant.grantType,
            attempt,
            delayMs,
            code: error instanceof LwaError ? error.code : 'unknown',
          },
          'retrying LWA token request',
        )
      },
    })
  }

  /**
   * One attempt: the request with the first candidate credentials, and with the next ones at once while LWA
   * refuses the client (see the class comment). Whatever else fails ends the attempt.
   */
  async #attempt(
    grant: TokenGrant,
    attempt: number,
    signal: AbortSignal | undefined,
    deadline: number | undefined,
  ): Promise<LwaTokens> {
    const tried = new Set<string>()
    let rejection: LwaError | undefined
    // Round 2 exists only for candidates that appeared after every earlier one was refused
    for (let round = 1; round <= 2; round++) {
      const fresh = (await this.#candidates()).filter((c) => !tried.has(credentialKey(c)))
      if (fresh.length === 0) break
      for (const [index, credentials] of fresh.entries()) {
        tried.add(credentialKey(credentials))
        try {
          const tokens = await this.#send(grant, credentials, attempt, signal, deadline)
          notify(() => this.#credentials.accepted?.(credentials))
          return tokens
        } catch (error) {
          if (!isClientRejection(error)) throw error
          rejection = error
          notify(() => this.#credentials.rejected?.(credentials, error.code))
          this.#deps.logger.info(
            {
              grantType: grant.grantType,
              attempt,
              round,
              candidate: index + 1,
              of: fresh.length,
              code: error.code,
            },
            'LWA refused a client secret; trying the next candidate if there is one',
          )
        }
      }
      if (this.#credentials.accepted === undefined && this.#credentials.rejected === undefined) break
    }
    // The loop ran at least once and only a rejection lets it end without returning
    throw rejection ?? new LwaError('lwa_invalid_client')
  }

  /** The source's candidates, checked: at least one, each with a non-empty id and secret. */
  async #candidates(): Promise<readonly LwaCredentials[]> {
    const list = await this.#credentials.candidates()
    if (!Array.isArray(list) || list.length === 0) {
      throw new SpConnectError('config_invalid', { detail: 'No LWA client credentials are configured.' })
    }
    return list.map(checkCredentials)
  }

  /**
   * One HTTP request with one set of credentials, under its own timeout: the configured one, or what is left
   * of the caller's deadline if that is less. The timeout counts the endpoint's time, not event-loop stalls
   * (stall-tolerant-timeout.ts), so a busy machine waits longer instead of reporting LWA unreachable.
   */
  async #send(
    grant: TokenGrant,
    credentials: LwaCredentials,
    attempt: number,
    signal: AbortSignal | undefined,
    deadline: number | undefined,
  ): Promise<LwaTokens> {
    const { fetch, now, logger } = this.#deps
    const metrics = this.#deps.metrics ?? NO_METRICS
    const left = deadline === undefined ? this.#timeoutMs : deadline - now()
    if (left <= 0) {
      throw new LwaError('lwa_unreachable', {
        retryable: false,
        detail: `the caller's deadline passed before the ${grant.grantType} request was sent`,
      })
    }
    const timeoutMs = Math.min(this.#timeoutMs, left)
    const timer = stallTolerantTimeout(timeoutMs)
    const timeout = timer.signal
    const attemptSignal = signal === undefined ? timeout : AbortSignal.any([signal, timeout])
    const started = now()
    const startedMark = performance.now()
    let response: Response | undefined
    let tokens: LwaTokens
    try {
      response = await sendTokenRequest(
        grant,
        {
          tokenUrl: this.#tokenUrl,
          credentials: () => credentials,
          ...(this.#userAgent === undefined ? {} : { userAgent: this.#userAgent }),
        },
        { fetch },
        attemptSignal,
      )
      const processing = processTokenResponse(response, grant.grantType, { now, signal: attemptSignal })
      tokens = await untilAborted(processing, attemptSignal)
    } catch (error) {
      timer.dispose()
      if (response !== undefined) cancelBody(response)
      const classified = classify(error, grant, signal, timeout, timeoutMs)
      metrics.lwaCall(
        grant.grantType,
        response !== undefined ? String(response.status) : timeout.aborted ? 'timeout' : 'network',
        (performance.now() - startedMark) / 1000,
      )
      if (classified instanceof LwaError) {
        const failure = redactSecrets(classified, [credentials.clientSecret, ...grantSecrets(grant)])
        logger.debug(
          {
            grantType: grant.grantType,
            attempt,
            status: failure.httpStatus,
            durationMs: now() - started,
            requestId: failure.requestId,
            code: failure.code,
            retryable: failure.retryable,
          },
          'LWA token request failed',
        )
        throw failure
      }
      throw classified
    }
    timer.dispose()
    metrics.lwaCall(grant.grantType, String(response.status), (performance.now() - startedMark) / 1000)
    logger.debug(
      {
        grantType: grant.grantType,
        attempt,
        status: response.status,
        durationMs: now() - started,
        requestId: responseRequestId(response.headers),
      },
      'LWA token request succeeded',
    )
    return tokens
  }
}

/** Identity of a candidate within one call (kept in memory only for the length of the call). */
function credentialKey(credentials: LwaCredentials): string {
  return `${credentials.clientId}\n${credentials.clientSecret}`
}

/** Runs a source's callback; a throwing callback must not turn a token into a failure. */
function notify(callback: () => void): void {
  try {
    callback()
  } catch {
    // the source's bookkeeping is its own business
  }
}

function isTransient(error: unknown): boolean {
  return error instanceof LwaError && error.retryable
}

function requireText(value: unknown, name: string): void {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TypeError(`LWA ${name} must be a non-empty string.`)
  }
}

function grantSecrets(grant: TokenGrant): string[] {
  switch (grant.grantType) {
    case 'authorization_code':
      return [grant.code]
    case 'refresh_token':
      return [grant.refreshToken]
    case 'client_credentials':
      return []
  }
}

/**
 * Turns whatever an attempt threw into what the caller sees: the caller's own abort reason if it aborted;
 * an `LwaError` from processing as is; `lwa_unreachable` for the deadline and for network failures.
 */
function classify(
  error: unknown,
  grant: TokenGrant,
  signal: AbortSignal | undefined,
  timeout: AbortSignal,
  timeoutMs: number,
): unknown {
  if (signal?.aborted) return signal.reason
  // A body read that failed because the deadline hit is a timeout, not a broken connection
  if (error instanceof LwaError && !(timeout.aborted && error.code === 'lwa_unreachable')) return error
  if (timeout.aborted) {
    return new LwaError('lwa_unreachable', {
      retryable: true,
      detail: `LWA did not answer the ${grant.grantType} request within the ${timeoutMs} ms timeout`,
    })
  }
  // Anything else came out of fetch: a network failure. Only its system error code is kept, because an
  // injected fetch may put anything (even the request body) into its messages
  const code = failureCode(error)
  const failure = new LwaError('lwa_unreachable', {
    retryable: true,
    detail: `could not reach LWA for the ${grant.grantType} request (${code ?? safeName(error)})`,
  })
  if (code !== undefined && NOT_SENT_CODES.has(code)) notSent.add(failure)
  return failure
}

/**
 * The system error code behind a fetch failure (`TypeError: fetch failed` → `cause.code`), following the
 * cause chain a few levels. For an `AggregateError` (several addresses tried) the code counts as "not sent"
 * only if every member's does.
 */
function failureCode(error: unknown, depth = 0): string | undefined {
  if (depth > 4 || typeof error !== 'object' || error === null) return undefined
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code)) return code
  if (error instanceof AggregateError) {
    const codes = error.errors.map((member: unknown) => failureCode(member, depth + 1))
    if (codes.length > 0 && codes.every((c) => c !== undefined && NOT_SENT_CODES.has(c))) return codes[0]
    return codes.find((c) => c !== undefined && !NOT_SENT_CODES.has(c))
  }
  return failureCode((error as { cause?: unknown }).cause, depth + 1)
}

function safeName(error: unknown): string {
  const name = error instanceof Error ? error.name : typeof error
  return /^[A-Za-z]{1,40}$/.test(name) ? name : 'unknown'
}
