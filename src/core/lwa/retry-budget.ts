/**
 * A retry budget shared by every call of one LWA client (Brooker, "Fixing retries with token buckets and
 * circuit breakers"; Google SRE, "Handling Overload"): each request earns a fraction of a retry, each retry
 * spends one, and a small steady allowance keeps quiet processes able to retry at all. When LWA is failing
 * for everyone, retries stop multiplying the load once the budget is spent; single bad calls still retry.
 *
 * Defaults (issue 8): one retry earned per ten requests, so under load retries stay near 10 % of requests
 * (../shared/SECURITY.md §4); one retry per 20 s regardless of traffic; and at most 2 saved up, enough for one
 * call to ride through two failures, but not the old 30, which let the first seconds of an outage burst. In a
 * sustained outage the circuit breaker stops most calls and its probes are single attempts, so what the saved
 * retries allow at the start is nearly all the retrying there is: 2 retries, then about one per 20 s of calls.
 */
import type { Deps } from '../deps.ts'
import type { Metrics } from '../metrics.ts'

interface RetryBudgetOptions {
  /** Retries earned per request. Default 0.1: retries stay near 10 % of requests when everything fails. */
  readonly ratio?: number
  /** Retries allowed per second regardless of traffic. Default 0.05 (one per 20 s). */
  readonly minPerSecond?: number
  /** Most retries that can be saved up. Default 2. */
  readonly max?: number
  /** Retries available at the start. Default `max`. */
  readonly initial?: number
}

/** The budget before issue 8 (ratio 0.5, 1 per second, 30 saved up, starting full); for benchmarks' "before". */
export const PREVIOUS_RETRY_BUDGET: Required<RetryBudgetOptions> = Object.freeze({
  ratio: 0.5,
  minPerSecond: 1,
  max: 30,
  initial: 30,
})

export class RetryBudget {
  readonly #ratio: number
  readonly #minPerSecond: number
  readonly #max: number
  readonly #now: () => number
  readonly #metrics: Metrics | undefined
  #balance: number
  #updatedAt: number

  constructor(options: RetryBudgetOptions, deps: Pick<Deps, 'now' | 'metrics'>) {
    this.#ratio = options.ratio ?? 0.1
    this.#minPerSecond = options.minPerSecond ?? 0.05
    this.#max = options.max ?? 2
    this.#now = deps.now
    this.#metrics = deps.metrics
    this.#balance = Math.min(this.#max, options.initial ?? this.#max)
    this.#updatedAt = deps.now()
  }

  /** Counts one request (a first attempt). */
  recordRequest(): void {
    this.#refill()
    this.#balance = Math.min(this.#max, this.#balance + this.#ratio)
    this.#metrics?.retryBudget(this.#balance)
  }

  /** Spends one retry if the budget allows it. */
  tryRetry(): boolean {
    this.#refill()
    // The tolerance absorbs floating-point sums: ten requests at 0.1 earn a whole retry, not 0.9999999999999999
    if (this.#balance < 1 - 1e-9) return false
    this.#balance = Math.max(0, this.#balance - 1)
    this.#metrics?.retryBudget(this.#balance)
    return true
  }

  get available(): number {
    this.#refill()
    return this.#balance
  }

  #refill(): void {
    const now = this.#now()
    const elapsed = Math.max(0, now - this.#updatedAt) / 1000
    this.#updatedAt = now
    this.#balance = Math.min(this.#max, this.#balance + elapsed * this.#minPerSecond)
  }
}
