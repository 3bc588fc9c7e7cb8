/**
 * Abuse limits, in memory and per instance: a rate per client address on the browser entry points, a rate per
 * API key on `/v1`, and a growing refusal for an address that keeps presenting bad API credentials (key
 * guessing). Every map is bounded, so a flood from many addresses or with many made-up keys costs a fixed
 * amount of memory; keys are client addresses (IPv6 by /64) or SHA-256 hashes of credentials, never the
 * credentials themselves. Time comes from the injected clock so tests can move it.
 */
import { hash } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import type { RateLimitRule } from '../config.ts'
import type { Deps } from '../core/deps.ts'
import { NO_METRICS } from '../core/metrics.ts'
import { SpConnectError } from '../domain/errors.ts'
import type { Runtime } from '../runtime.ts'
import { addressBucket, resolveClientAddress, socketAddress } from './client-address.ts'
import type { ServerEnv } from './context.ts'

/** Keys each limiter remembers at most; the least recently seen go first. */
const DEFAULT_MAX_KEYS = 50_000

/** Moves `key` to the young end of a Map used as an LRU list and drops the oldest entries beyond `max`. */
function touch<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  while (map.size > max) {
    const oldest = map.keys().next()
    if (oldest.done) break
    map.delete(oldest.value)
  }
}

/**
 * A token bucket per key, kept as one number (GCRA: the "theoretical arrival time"): `perSecond` requests per
 * second on average and up to `burst` at once. A key whose bucket is full again is indistinguishable from one
 * never seen, so evicting the least recently seen key loses nothing unless the map is flooded, and then the
 * evicted keys are the ones that stopped sending longest ago.
 */
interface RateLimiterOptions {
  readonly rule: RateLimitRule
  /** Most keys remembered at once; beyond it the least recently seen is forgotten. */
  readonly maxKeys?: number
}

export class RateLimiter {
  readonly #intervalMs: number
  readonly #toleranceMs: number
  readonly #maxKeys: number
  readonly #now: () => number
  readonly #arrivals = new Map<string, Arrival>()

  constructor(options: RateLimiterOptions, deps: Pick<Deps, 'now'>) {
    const { rule } = options
    this.#intervalMs = rule.perSecond > 0 ? 1000 / rule.perSecond : 0
    this.#toleranceMs = this.#intervalMs * Math.max(1, rule.burst)
    this.#maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS
    this.#now = deps.now
  }

  get enabled(): boolean {
    return this.#intervalMs > 0
  }

  /** Keys currently remembered. */
  get size(): number {
    return this.#arrivals.size
  }

  /** Takes one request for `key`: 0 when it is allowed, else the milliseconds until one would be. */
  take(key: string): number {
    if (!this.enabled) return 0
    const now = this.#now()
    const stored = this.#arrivals.get(key)
    // A clock that went back (NTP, or a test's clock) moves the bucket with it instead of emptying it.
    const shifted = stored === undefined ? now : stored.at + Math.min(0, now - stored.seenAt)
    const arrival = Math.max(shifted, now)
    const next = arrival + this.#intervalMs
    const wait = next - now - this.#toleranceMs
    if (wait > 0) {
      // Refused requests do not spend tokens, but keep the key young so a flood cannot evict it.
      touch(this.#arrivals, key, { at: arrival, seenAt: now }, this.#maxKeys)
      return Math.ceil(wait)
    }
    touch(this.#arrivals, key, { at: next, seenAt: now }, this.#maxKeys)
    return 0
  }
}

interface Arrival {
  /** The bucket's theoretical arrival time: the bucket is full again when the clock reaches it. */
  readonly at: number
  /** The clock when `at` was written. */
  readonly seenAt: number
}

interface FailureRecord {
  windowStart: number
  failures: number
  /** Blocks so far; each doubles the next one. Forgotten after a quiet {@link FORGET_STRIKES_MS}. */
  strikes: number
  blockedUntil: number
}

/** How long an address must stay out of trouble for its block length to start from the beginning again. */
const FORGET_STRIKES_MS = 60 * 60 * 1000

interface FailureLimiterOptions {
  /** Failures per window that block the key; 0 turns the limiter off. */
  readonly maxFailures: number
  readonly windowMs?: number
  /** The first block; each further one doubles, up to `maxBlockMs`. */
  readonly baseBlockMs?: number
  readonly maxBlockMs?: number
  readonly maxKeys?: number
}

/**
 * Counts failures (bad credentials) per key in a fixed window; a key that reaches `maxFailures` in one window is
 * blocked for `baseBlockMs`, then twice as long the next time, and so on up to `maxBlockMs`.
 */
export class FailureLimiter {
  readonly #maxFailures: number
  readonly #windowMs: number
  readonly #baseBlockMs: number
  readonly #maxBlockMs: number
  readonly #maxKeys: number
  readonly #now: () => number
  readonly #records = new Map<string, FailureRecord>()

  constructor(options: FailureLimiterOptions, deps: Pick<Deps, 'now'>) {
    this.#maxFailures = options.maxFailures
    this.#windowMs = options.windowMs ?? 60_000
    this.#baseBlockMs = options.baseBlockMs ?? 60_000
    this.#maxBlockMs = options.maxBlockMs ?? 60 * 60 * 1000
    this.#maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS
    this.#now = deps.now
  }

  get enabled(): boolean {
    return this.#maxFailures > 0
  }

  get size(): number {
    return this.#records.size
  }

  /** Milliseconds `key` is still blocked for; 0 when it is not. */
  blockedFor(key: string): number {
    const record = this.#records.get(key)
    if (record === undefined) return 0
    // Capped, so a clock that went back cannot stretch a block beyond the longest one.
    return Math.min(this.#maxBlockMs, Math.max(0, Math.ceil(record.blockedUntil - this.#now())))
  }

  /** Records a failure; returns the length of the block it started, or 0 when it started none. */
  recordFailure(key: string): number {
    if (!this.enabled) return 0
    const now = this.#now()
    const record = this.#records.get(key) ?? { windowStart: now, failures: 0, strikes: 0, blockedUntil: 0 }
    if (record.strikes > 0 && now - record.blockedUntil > FORGET_STRIKES_MS) record.strikes = 0
    if (now - record.windowStart >= this.#windowMs) {
      record.windowStart = now
      record.failures = 0
    }
    record.failures += 1
    let blockMs = 0
    if (record.failures >= this.#maxFailures) {
      blockMs = Math.min(this.#maxBlockMs, this.#baseBlockMs * 2 ** record.strikes)
      record.strikes += 1
      record.blockedUntil = Math.max(record.blockedUntil, now + blockMs)
      record.failures = 0
      record.windowStart = now
    }
    touch(this.#records, key, record, this.#maxKeys)
    return blockMs
  }
}

/** A bounded set of recently seen keys (least recently seen dropped first). */
class RecentKeys {
  readonly #keys = new Map<string, true>()
  readonly #max: number

  constructor(max: number) {
    this.#max = max
  }

  has(key: string): boolean {
    return this.#keys.has(key)
  }

  add(key: string): void {
    touch(this.#keys, key, true, this.#max)
  }

  delete(key: string): void {
    this.#keys.delete(key)
  }
}

/**
 * The pages a browser reaches without an API key, where each request may write a row or cost a token-endpoint
 * call: connect links and the console's connect action, the Login URI and its confirmation page, the callback.
 */
export function isBrowserEntryPoint(path: string): boolean {
  return (
    path === '/connect' ||
    path.startsWith('/connect/') ||
    path === '/console/connect' ||
    path.startsWith('/console/connect/') ||
    path === '/login' ||
    path.startsWith('/login/') ||
    path === '/login-requests' ||
    path.startsWith('/login-requests/') ||
    path === '/callback'
  )
}

function isApiPath(path: string): boolean {
  return path === '/v1' || path.startsWith('/v1/')
}

/** The hash of the credential in an `Authorization` header (a bearer token, or the whole value otherwise). */
export function credentialKey(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization === '') return undefined
  const bearer = /^bearer[ \t]+(.*)$/is.exec(authorization.trim())
  // One-shot hashing: the same digest as encoding.ts's sha256, without a Hash object per request.
  return hash('sha256', bearer?.[1]?.trim() ?? authorization, 'base64url')
}

function limited(waitMs: number, detail: string): SpConnectError {
  return new SpConnectError('rate_limited', {
    detail,
    retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
  })
}

/**
 * The abuse-limit middleware for the service app: browser entry points per client address, `/v1` per API key,
 * and an address that keeps presenting bad API credentials refused with a growing block. During a block, keys
 * that recently succeeded from anywhere still pass, so a guessing client behind the same address (or the same
 * misconfigured proxy) does not lock the app's own backend out.
 */
export function abuseLimits(runtime: Runtime): MiddlewareHandler<ServerEnv> {
  const { rateLimits, trustedProxyHops } = runtime.config
  const { logger } = runtime.deps
  const metrics = runtime.deps.metrics ?? NO_METRICS
  const browser = new RateLimiter({ rule: rateLimits.browser }, runtime.deps)
  const api = new RateLimiter({ rule: rateLimits.api }, runtime.deps)
  const failures = new FailureLimiter({ maxFailures: rateLimits.authFailuresPerMinute }, runtime.deps)
  const goodCredentials = new RecentKeys(10_000)

  const clientKey = (c: Parameters<MiddlewareHandler<ServerEnv>>[0]): string =>
    addressBucket(resolveClientAddress(socketAddress(c), c.req.header('x-forwarded-for'), trustedProxyHops))

  return async (c, next) => {
    const path = c.req.path
    if (isBrowserEntryPoint(path)) {
      if (!browser.enabled) return next()
      const wait = browser.take(clientKey(c))
      if (wait > 0) {
        metrics.rateLimited('browser')
        throw limited(wait, 'browser entry point rate limit per client address')
      }
      return next()
    }
    if (!isApiPath(path)) return next()

    const credential = credentialKey(c.req.header('authorization'))
    // The address only when needed: a key that recently succeeded skips the block check.
    let address: string | undefined
    const addressOf = () => (address ??= clientKey(c))
    if (failures.enabled && (credential === undefined || !goodCredentials.has(credential))) {
      const blocked = failures.blockedFor(addressOf())
      if (blocked > 0) {
        metrics.rateLimited('bad_credentials')
        throw limited(blocked, 'address blocked after repeated bad API credentials')
      }
    }
    if (credential !== undefined) {
      const wait = api.take(credential)
      if (wait > 0) {
        metrics.rateLimited('api_key')
        throw limited(wait, 'API rate limit per key')
      }
    }
    await next()
    const status = c.res.status
    if (status === 401) {
      if (credential !== undefined) goodCredentials.delete(credential)
      const blockMs = failures.enabled ? failures.recordFailure(addressOf()) : 0
      // Counts only: the address is personal data and the credential a secret.
      if (blockMs > 0) logger.warn({ blockMs }, 'client blocked after repeated bad API credentials')
    } else if (credential !== undefined && status < 400) {
      goodCredentials.add(credential)
    }
  }
}
