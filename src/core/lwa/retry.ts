/**
 * Bounded retries for the token endpoint: capped exponential backoff with full jitter, `Retry-After`
 * honoured when it is reasonable, and at most `maxAttempts` attempts in all.
 *
 * @see ../../../../shared/SECURITY.md §4; RFC 9110 §10.2.3 (Retry-After); RFC 6585 §4 (429)
 */
import { LwaError } from './errors.ts'
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './types.ts'

/** Merges a partial policy over the defaults; throws `TypeError` on values that make no sense. */
export function resolveRetryPolicy(partial: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...DEFAULT_RETRY_POLICY, ...definedOnly(partial) }
  if (!Number.isSafeInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new TypeError('retry.maxAttempts must be an integer of at least 1.')
  }
  for (const key of ['baseDelayMs', 'maxDelayMs', 'maxRetryAfterMs'] as const) {
    if (!Number.isFinite(policy[key]) || policy[key] < 0) {
      throw new TypeError(`retry.${key} must be a finite number of at least 0.`)
    }
  }
  return Object.freeze(policy)
}

function definedOnly(partial: Partial<RetryPolicy>): Partial<RetryPolicy> {
  return Object.fromEntries(Object.entries(partial).filter(([, value]) => value !== undefined))
}

const DAY_NAMES = 'Mon|Tue|Wed|Thu|Fri|Sat|Sun'
const LONG_DAY_NAMES = 'Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday'
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const
const MONTH = MONTHS.join('|')
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})'
/** `Sun, 06 Nov 1994 08:49:37 GMT` */
const IMF_FIXDATE = new RegExp(`^(?:${DAY_NAMES}), (\\d{2}) (${MONTH}) (\\d{4}) ${TIME} GMT$`)
/** `Sunday, 06-Nov-94 08:49:37 GMT` (obsolete, but recipients must accept it) */
const RFC850_DATE = new RegExp(`^(?:${LONG_DAY_NAMES}), (\\d{2})-(${MONTH})-(\\d{2}) ${TIME} GMT$`)
/** `Sun Nov  6 08:49:37 1994` (obsolete, but recipients must accept it) */
const ASCTIME_DATE = new RegExp(`^(?:${DAY_NAMES}) (${MONTH}) ([ \\d]\\d) ${TIME} (\\d{4})$`)
const DELAY_SECONDS = /^\d+$/

/**
 * Parses a `Retry-After` value, either delay-seconds or an HTTP-date (all three RFC 9110 formats), into
 * milliseconds from `nowMs`. A date in the past gives 0. Anything else (empty, negative, fractional,
 * `Date.parse`-only formats) gives undefined, so the caller falls back to normal backoff. The result is
 * always a finite integer ≥ 0; callers cap it.
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined
  const text = value.trim()
  if (DELAY_SECONDS.test(text)) return Math.min(Number(text) * 1000, Number.MAX_SAFE_INTEGER)
  const dateMs = parseHttpDate(text, nowMs)
  if (dateMs === undefined || !Number.isFinite(nowMs)) return undefined
  return Math.max(0, Math.ceil(dateMs - nowMs))
}

function parseHttpDate(text: string, nowMs: number): number | undefined {
  let match = IMF_FIXDATE.exec(text)
  if (match) return utc(match[3], match[2], match[1], match[4], match[5], match[6])
  match = RFC850_DATE.exec(text)
  if (match) {
    // RFC 9110 §5.6.7: a two-digit year more than 50 years ahead belongs to the previous century
    const nowYear = new Date(Number.isFinite(nowMs) ? nowMs : 0).getUTCFullYear()
    let year = Math.floor(nowYear / 100) * 100 + Number(match[3])
    if (year > nowYear + 50) year -= 100
    return utc(String(year), match[2], match[1], match[4], match[5], match[6])
  }
  match = ASCTIME_DATE.exec(text)
  if (match) return utc(match[6], match[1], match[2]?.trim(), match[3], match[4], match[5])
  return undefined
}

function utc(
  year: string | undefined,
  month: string | undefined,
  day: string | undefined,
  hour: string | undefined,
  minute: string | undefined,
  second: string | undefined,
): number | undefined {
  const monthIndex = MONTHS.indexOf(month as (typeof MONTHS)[number])
  const [y, d, h, m, s] = [year, day, hour, minute, second].map(Number)
  if (y === undefined || d === undefined || h === undefined || m === undefined || s === undefined) {
    return undefined
  }
  // 60 allows a leap second; the date round-trip below rejects 31 Feb and friends
  if (monthIndex < 0 || h > 23 || m > 59 || s > 60 || d < 1) return undefined
  const ms = Date.UTC(y, monthIndex, d, h, m, s)
  const check = new Date(Date.UTC(y, monthIndex, d))
  if (check.getUTCMonth() !== monthIndex || check.getUTCDate() !== d) return undefined
  return ms
}

/**
 * Full-jitter backoff: a uniformly random delay in `[0, min(maxDelayMs, baseDelayMs * 2^retry))`, where
 * `retry` counts from 0 for the first retry. Whole milliseconds.
 */
export function backoffDelay(
  retry: number,
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number,
): number {
  // The exponent is capped so a zero base never meets an infinite power (0 * Infinity is NaN)
  const exponent = Math.min(Math.max(0, Math.floor(retry)), 52)
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** exponent)
  // An injected random() outside [0, 1) must not stretch the delay past the ceiling or below zero
  const r = random()
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1 - Number.EPSILON) : 0
  return Math.floor(unit * ceiling)
}

/**
 * The wait before the next attempt after `error` on attempt `attempt` (1-based), or undefined to stop:
 * when the budget is spent, or when LWA asked for a longer wait than `maxRetryAfterMs` (waiting less would
 * only be throttled again; the error tells the caller how long instead). A valid `Retry-After` is a floor
 * under the jittered backoff.
 */
export function retryDelay(
  error: unknown,
  attempt: number,
  policy: RetryPolicy,
  random: () => number,
): number | undefined {
  if (attempt >= policy.maxAttempts) return undefined
  const backoff = backoffDelay(attempt - 1, policy, random)
  const retryAfterMs = error instanceof LwaError ? error.retryAfterMs : undefined
  if (retryAfterMs === undefined) return backoff
  if (retryAfterMs > policy.maxRetryAfterMs) return undefined
  return Math.max(retryAfterMs, backoff)
}

interface RetryLoopOptions {
  readonly policy: RetryPolicy
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  readonly random: () => number
  readonly signal?: AbortSignal | undefined
  /** Whether this failure may be retried at all (the budget and `Retry-After` are checked separately). */
  readonly mayRetry: (error: unknown) => boolean
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void
  /** Asked last, only when a retry would otherwise happen: false stops (a shared retry budget is spent). */
  readonly spendRetry?: () => boolean
  /**
   * The caller's total deadline (on `now`'s clock): a retry whose wait would end at or after it is not made,
   * so the caller gets the last failure at once instead of after a wait that cannot help it.
   */
  readonly deadline?: number | undefined
  readonly now?: (() => number) | undefined
}

/**
 * Runs `attempt(n)` for n = 1, 2, … until it succeeds, fails in a way `mayRetry` refuses, or the budget is
 * spent, or the next wait would outlast the deadline; then rethrows the last failure. The caller's signal aborts
 * the wait between attempts (rethrowing its reason), and a signal that is already aborted stops the loop before
 * another attempt.
 */
export async function withRetries<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  options: RetryLoopOptions,
): Promise<T> {
  const { signal } = options
  for (let attemptNumber = 1; ; attemptNumber++) {
    signal?.throwIfAborted()
    try {
      return await attempt(attemptNumber)
    } catch (error) {
      if (signal?.aborted) throw signal.reason
      if (!options.mayRetry(error)) throw error
      const delayMs = retryDelay(error, attemptNumber, options.policy, options.random)
      if (delayMs === undefined) throw error
      if (options.deadline !== undefined && options.now !== undefined) {
        if (options.now() + delayMs >= options.deadline) throw error
      }
      if (options.spendRetry && !options.spendRetry()) throw error
      options.onRetry?.(error, attemptNumber, delayMs)
      await options.sleep(delayMs, signal)
    }
  }
}
