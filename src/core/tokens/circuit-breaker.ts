/**
 * An app-wide breaker for the LWA token endpoint. It opens after `failureThreshold` consecutive transient
 * failures (each already retried by the LWA client) or at once on `invalid_client`, so a dead endpoint or a
 * dead client secret is not hammered by every connection. While open, callers with a still-valid token keep
 * it and the rest fail fast with a 503 and Retry-After; after `openMs` one probe is let through (half-open).
 * The probe is a single attempt (the token manager asks the LWA client for `maxAttempts: 1`): it exists to
 * learn whether LWA is back, and retries would only multiply load on an endpoint that is still down. A probe
 * that never reports back (its caller found a token another process stored) is given up after `openMs`, so
 * the breaker cannot stay half-open with nobody probing.
 */
import type { Deps } from '../deps.ts'
import type { Metrics } from '../metrics.ts'

interface CircuitBreakerOptions {
  readonly failureThreshold?: number
  readonly openMs?: number
}

type BreakerState = 'closed' | 'open' | 'half_open'

export class CircuitBreaker {
  readonly #threshold: number
  readonly #openMs: number
  readonly #now: () => number
  readonly #metrics: Metrics | undefined
  #failures = 0
  #openedAt: number | null = null
  #probeStartedAt: number | null = null
  #reported: BreakerState = 'closed'

  constructor(options: CircuitBreakerOptions, deps: Pick<Deps, 'now' | 'metrics'>) {
    this.#threshold = options.failureThreshold ?? 5
    this.#openMs = options.openMs ?? 30_000
    this.#now = deps.now
    this.#metrics = deps.metrics
  }

  get state(): BreakerState {
    if (this.#openedAt === null) return 'closed'
    return this.#now() - this.#openedAt >= this.#openMs ? 'half_open' : 'open'
  }

  /**
   * True once a call failed (after its own retries) and none has succeeded since: LWA looks unwell, so the
   * token manager makes one attempt per call until one succeeds, instead of multiplying the load by retrying.
   */
  get failing(): boolean {
    return this.#failures > 0
  }

  /** True between a half-open `tryPass()` that let a probe through and the probe's outcome. */
  get probing(): boolean {
    return this.#probeStartedAt !== null && this.#now() - this.#probeStartedAt < this.#openMs
  }

  /** Milliseconds until a probe is allowed (0 when closed or half-open). */
  retryAfterMs(): number {
    if (this.#openedAt === null) return 0
    return Math.max(0, this.#openMs - (this.#now() - this.#openedAt))
  }

  /**
   * True if a call may go to LWA now; in half-open, only one probe at a time (check {@link probing} right
   * after a true answer to know whether this call is the probe).
   */
  tryPass(): boolean {
    const state = this.state
    this.#report(state)
    if (state === 'closed') return true
    if (state === 'open' || this.probing) return false
    this.#probeStartedAt = this.#now()
    return true
  }

  recordSuccess(): void {
    this.#failures = 0
    this.#openedAt = null
    this.#probeStartedAt = null
    this.#report('closed')
  }

  /** `fatal` opens the breaker at once (a rejected client secret fails every call alike). */
  recordFailure(fatal = false): void {
    this.#failures++
    this.#probeStartedAt = null
    if (fatal || this.#failures >= this.#threshold || this.#openedAt !== null) this.#openedAt = this.#now()
    this.#report(this.state)
  }

  /** A failure that says nothing about LWA's health (e.g. one seller's revoked grant). */
  recordNeutral(): void {
    this.#probeStartedAt = null
  }

  #report(state: BreakerState): void {
    if (state === this.#reported) return
    this.#reported = state
    this.#metrics?.breakerState(state)
  }
}
