/**
 * A retry budget shared by every call of one LWA client (Brooker, "Fixing retries with token buckets and
 * circuit breakers"; Google SRE, "Handling Overload"): each request earns a fraction of a retry, each retry
 * spends one, and a small steady allowance keeps quiet processes able to retry at all. When LWA is failing
 * for everyone, retries stop multiplying the load once the budget is spent; single bad calls still retry.
 */
export interface RetryBudgetOptions {
  /** Retries earned per request (0.5: one retry per two requests on average, enough for a 30 % error rate). */
  readonly ratio?: number
  /** Retries allowed per second regardless of traffic. */
  readonly minPerSecond?: number
  /** Most retries that can be saved up. */
  readonly max?: number
}

export class RetryBudget {
  readonly #ratio: number
  readonly #minPerSecond: number
  readonly #max: number
  readonly #now: () => number
  #balance: number
  #updatedAt: number

  constructor(options: RetryBudgetOptions, now: () => number) {
    this.#ratio = options.ratio ?? 0.5
    this.#minPerSecond = options.minPerSecond ?? 1
    this.#max = options.max ?? 30
    this.#now = now
    this.#balance = this.#max
    this.#updatedAt = now()
  }

  /** Counts one request (a first attempt). */
  recordRequest(): void {
    this.#refill()
    this.#balance = Math.min(this.#max, this.#balance + this.#ratio)
  }

  /** Spends one retry if the budget allows it. */
  tryRetry(): boolean {
    this.#refill()
    if (this.#balance < 1) return false
    this.#balance -= 1
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
