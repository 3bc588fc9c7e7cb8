/**
 * An app-wide breaker for the LWA token endpoint. It opens after `failureThreshold` consecutive transient
 * failures (each already retried by the LWA client) or at once on `invalid_client`, so a dead endpoint or a
 * dead client secret is not hammered by every connection. While open, callers with a still-valid token keep
 * it and the rest fail fast with a 503 and Retry-After; after `openMs` one probe is let through (half-open).
 */
export interface CircuitBreakerOptions {
  readonly failureThreshold?: number
  readonly openMs?: number
}

export type BreakerState = 'closed' | 'open' | 'half_open'

export class CircuitBreaker {
  readonly #threshold: number
  readonly #openMs: number
  readonly #now: () => number
  #failures = 0
  #openedAt: number | null = null
  #probing = false

  constructor(options: CircuitBreakerOptions, now: () => number) {
    this.#threshold = options.failureThreshold ?? 5
    this.#openMs = options.openMs ?? 30_000
    this.#now = now
  }

  get state(): BreakerState {
    if (this.#openedAt === null) return 'closed'
    return this.#now() - this.#openedAt >= this.#openMs ? 'half_open' : 'open'
  }

  /** Milliseconds until a probe is allowed (0 when closed or half-open). */
  retryAfterMs(): number {
    if (this.#openedAt === null) return 0
    return Math.max(0, this.#openMs - (this.#now() - this.#openedAt))
  }

  /** True if a call may go to LWA now; in half-open, only one probe at a time. */
  tryPass(): boolean {
    const state = this.state
    if (state === 'closed') return true
    if (state === 'open' || this.#probing) return false
    this.#probing = true
    return true
  }

  recordSuccess(): void {
    this.#failures = 0
    this.#openedAt = null
    this.#probing = false
  }

  /** `fatal` opens the breaker at once (a rejected client secret fails every call alike). */
  recordFailure(fatal = false): void {
    this.#failures++
    this.#probing = false
    if (fatal || this.#failures >= this.#threshold || this.#openedAt !== null) this.#openedAt = this.#now()
  }

  /** A failure that says nothing about LWA's health (e.g. one seller's revoked grant). */
  recordNeutral(): void {
    this.#probing = false
  }
}
