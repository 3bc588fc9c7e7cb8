/**
 * CONTRACT (owned by the limiter helper): waits for a turn under a usage plan, per key
 * (`${connectionId}:${operationName}`), shared by every process that shares the database.
 *
 * How: GCRA with reservations over a {@link RateBucketStore} (src/store/rate-bucket-store.ts has the algorithm
 * and why it never exceeds the plan). `acquire` takes its turn in one atomic statement, one database round trip,
 * then sleeps until the turn without holding anything; no polling. A turn that would come after the caller's
 * deadline is refused and reserves nothing.
 *
 * Choices worth knowing:
 * - An aborted wait gives its place in this process's queue back at once, but not its turn: the slot stays
 *   taken and goes unused. Handing a turn back safely needs a compare-and-set (only if nobody reserved after
 *   it), which under load rarely succeeds; an unused slot only ever makes the key a little slower, never
 *   faster than the plan.
 * - A store failure rejects the caller (fail closed): sending without a turn could push the seller into 429s.
 * - Queue bound: per process and key, at most `maxWaiting` callers between entering `acquire` and being let
 *   through; more are refused with `spapi_queue_full` at once, before touching the database.
 */

import { SpConnectError } from '../../domain/errors.ts'
import type { RateBucketStore } from '../../store/rate-bucket-store.ts'
import type { Deps } from '../deps.ts'
import { MemoryRateBucketStore } from './gcra.ts'
import type { RatePlan } from './operations.ts'

export interface AcquireOptions {
  /** Epoch ms by which the caller must be allowed to send; past it, reject with `spapi_throttled`. */
  readonly deadline: number
  readonly signal?: AbortSignal
}

export interface CallLimiter {
  /**
   * Resolves when the caller may send one request for `key` under `plan`. Rejects with SpConnectError
   * `spapi_throttled` (retryAfterSeconds set) when its turn would come after `deadline`, or `spapi_queue_full`
   * when too many callers already wait for the key.
   */
  acquire(key: string, plan: RatePlan, options: AcquireOptions): Promise<void>
  /**
   * Amazon answered 429 for `key`: nobody sends for it again before `retryAfterMs` (default: one interval of the
   * rate in force, the one Amazon reported if it did, else the plan's), and the bucket is empty then.
   */
  throttled(key: string, plan: RatePlan, retryAfterMs?: number): Promise<void>
  /**
   * Amazon's `x-amzn-RateLimit-Limit` for `key` (requests per second); later turns use it instead of the plan's,
   * and the time already owed is converted to it. `plan` is the published one, in force until a rate is stored.
   */
  observedRate(key: string, plan: RatePlan, rate: number): Promise<void>
}

/** Callers allowed to wait per key in one process when the options do not say. */
export const DEFAULT_MAX_WAITING = 100

export interface LimiterOptions {
  /** Per process and key, how many callers may wait at once; beyond it `spapi_queue_full`. */
  readonly maxWaiting?: number
}

type LimiterDeps = Pick<Deps, 'now' | 'sleep'>

interface StoreCallLimiterOptions extends LimiterOptions {
  /** Where the buckets live: the database's store for several instances, memory for one. */
  readonly buckets: RateBucketStore
}

/** Milliseconds as whole seconds for Retry-After: rounded up, at least 1. */
function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

function intervalOf(plan: RatePlan): number {
  if (!(plan.rate > 0) || !Number.isFinite(plan.rate)) throw new TypeError('plan.rate must be finite and > 0')
  if (!Number.isSafeInteger(plan.burst) || plan.burst < 1)
    throw new TypeError('plan.burst must be an integer >= 1')
  return 1000 / plan.rate
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

/** A {@link CallLimiter} over a bucket store: the database's for several instances, memory for one. */
export class StoreCallLimiter implements CallLimiter {
  readonly #buckets: RateBucketStore
  readonly #deps: LimiterDeps
  readonly #maxWaiting: number
  /** Callers inside `acquire` per key, in this process. */
  readonly #waiting = new Map<string, number>()

  constructor(options: StoreCallLimiterOptions, deps: LimiterDeps) {
    const maxWaiting = options.maxWaiting ?? DEFAULT_MAX_WAITING
    if (!Number.isSafeInteger(maxWaiting) || maxWaiting < 1) throw new TypeError('maxWaiting must be >= 1')
    this.#buckets = options.buckets
    this.#deps = deps
    this.#maxWaiting = maxWaiting
  }

  /** How many callers of this process are inside `acquire` for `key` (for metrics and tests). */
  waiting(key: string): number {
    return this.#waiting.get(key) ?? 0
  }

  async acquire(key: string, plan: RatePlan, options: AcquireOptions): Promise<void> {
    const intervalMs = intervalOf(plan)
    const { deadline, signal } = options
    if (signal?.aborted) throw abortReason(signal)
    const waiting = this.waiting(key)
    if (waiting >= this.#maxWaiting) {
      // An estimate: the time the callers ahead need at the plan's rate.
      throw new SpConnectError('spapi_queue_full', {
        retryAfterSeconds: retryAfterSeconds(waiting * intervalMs),
      })
    }
    this.#waiting.set(key, waiting + 1)
    try {
      const now = this.#deps.now()
      if (deadline < now) {
        // Past its deadline before asking: no turn can come by then, whatever the bucket holds.
        throw new SpConnectError('spapi_throttled', { retryAfterSeconds: retryAfterSeconds(intervalMs) })
      }
      const reservation = await this.#buckets.reserve({ key, now, intervalMs, burst: plan.burst, deadline })
      if (!reservation.granted) {
        throw new SpConnectError('spapi_throttled', {
          retryAfterSeconds: retryAfterSeconds(reservation.sendAt - now),
        })
      }
      if (signal?.aborted) throw abortReason(signal)
      // The clock again: the statement itself took time.
      const wait = reservation.sendAt - this.#deps.now()
      if (wait > 0) await this.#deps.sleep(wait, signal)
    } finally {
      const left = this.waiting(key) - 1
      if (left > 0) this.#waiting.set(key, left)
      else this.#waiting.delete(key)
    }
  }

  async throttled(key: string, plan: RatePlan, retryAfterMs?: number): Promise<void> {
    const intervalMs = intervalOf(plan)
    let pause = retryAfterMs
    if (pause === undefined || !Number.isFinite(pause) || pause <= 0) {
      // One interval of the rate in force: a table rate faster than the seller's would retry into a second 429,
      // a slower one would idle. A read apart from the write: a rate stored in between changes only this pause.
      const learned = (await this.#buckets.get(key))?.rate
      pause = learned == null ? intervalMs : 1000 / learned
    }
    await this.#buckets.holdOff(key, this.#deps.now() + pause, intervalMs, plan.burst)
  }

  async observedRate(key: string, plan: RatePlan, rate: number): Promise<void> {
    const intervalMs = intervalOf(plan)
    // The header is Amazon's, but parsed by a caller: anything but a positive finite rate is ignored rather
    // than allowed to stop (0) or unleash (Infinity) the key.
    if (!(rate > 0) || !Number.isFinite(rate)) return
    await this.#buckets.setRate(key, rate, this.#deps.now(), intervalMs)
  }
}

/** A limiter for one process: buckets in memory. */
export function createMemoryLimiter(deps: LimiterDeps, options: LimiterOptions = {}): StoreCallLimiter {
  return new StoreCallLimiter({ ...options, buckets: new MemoryRateBucketStore() }, deps)
}

/** A limiter shared by every instance on the store's database (`store.rateBuckets`). */
export function createStoreLimiter(
  store: RateBucketStore,
  deps: LimiterDeps,
  options: LimiterOptions = {},
): StoreCallLimiter {
  return new StoreCallLimiter({ ...options, buckets: store }, deps)
}
