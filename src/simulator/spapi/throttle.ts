/**
 * Amazon's usage plans, enforced the way SP-API does: one token bucket per (application, selling partner,
 * operation), filled at the plan's rate up to its burst, on the simulator's clock (so `/_control/clock` moves
 * it). A plan can be overridden per operation, as Amazon's dynamic plans change a seller's limits.
 */
import type { RatePlan, SpApiOperation } from '../../core/spapi/operations.ts'

interface Bucket {
  tokens: number
  at: number
}

/** At most this many buckets are kept; the least recently used go first (each is tiny, but keys are input). */
const MAX_BUCKETS = 100_000

export class UsagePlanEnforcer {
  readonly #buckets = new Map<string, Bucket>()
  readonly #overrides = new Map<string, RatePlan>()
  readonly #throttled = new Map<string, number>()

  /** The plan in force for the operation: the override, or Amazon's published default. */
  planOf(operation: SpApiOperation): RatePlan {
    return this.#overrides.get(operation.name) ?? { rate: operation.rate, burst: operation.burst }
  }

  /** Replaces the operation's plan; its buckets restart full under the new plan. */
  override(operationName: string, plan: RatePlan): void {
    this.#overrides.set(operationName, { rate: plan.rate, burst: plan.burst })
    for (const key of this.#buckets.keys()) if (key.endsWith(`\n${operationName}`)) this.#buckets.delete(key)
  }

  overrides(): Record<string, RatePlan> {
    return Object.fromEntries(this.#overrides)
  }

  /** Takes one request's token from the caller's bucket; false when the plan is exhausted (answer 429). */
  take(operation: SpApiOperation, clientId: string, sellingPartnerId: string, now: number): boolean {
    const plan = this.planOf(operation)
    const key = `${clientId}\n${sellingPartnerId}\n${operation.name}`
    const bucket = this.#buckets.get(key) ?? { tokens: plan.burst, at: now }
    // Re-insert so the map's order is least recently used first.
    this.#buckets.delete(key)
    const elapsed = Math.max(0, now - bucket.at)
    bucket.tokens = Math.min(plan.burst, bucket.tokens + (elapsed / 1000) * plan.rate)
    bucket.at = Math.max(bucket.at, now)
    // The epsilon keeps float rounding (0.0167 × 59880 ms) from refusing a token that is due.
    const allowed = bucket.tokens >= 1 - 1e-9
    if (allowed) bucket.tokens = Math.max(0, bucket.tokens - 1)
    else this.#throttled.set(operation.name, (this.#throttled.get(operation.name) ?? 0) + 1)
    this.#buckets.set(key, bucket)
    if (this.#buckets.size > MAX_BUCKETS) {
      const oldest = this.#buckets.keys().next().value
      if (oldest !== undefined) this.#buckets.delete(oldest)
    }
    return allowed
  }

  /** 429s served, by operation name. */
  throttledCounts(): Record<string, number> {
    return Object.fromEntries(this.#throttled)
  }

  resetCounters(): void {
    this.#throttled.clear()
  }
}
