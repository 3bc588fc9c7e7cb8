/**
 * The call limiter (src/core/spapi/limiter.ts) over buckets in memory, on a clock the test moves: `sleep` is a
 * timer on that clock, so "when did the caller get through" is read off the clock, never measured.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MemoryRateBucketStore, reserveInBucket } from '../../src/core/spapi/gcra.ts'
import {
  createMemoryLimiter,
  DEFAULT_MAX_WAITING,
  type LimiterOptions,
  StoreCallLimiter,
} from '../../src/core/spapi/limiter.ts'
import type { RatePlan } from '../../src/core/spapi/operations.ts'
import { isSpConnectError, type SpConnectError } from '../../src/domain/errors.ts'
import { planViolation } from '../helpers/rate-conformance.ts'

const T0 = 1_800_000_000_000
const PLAN: RatePlan = { rate: 5, burst: 3 }
const KEY = 'con_1:getOrders'

/** Lets promise chains that were unblocked run to their next await. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

/** A clock and a `sleep` on it; timers fire only when the test advances the clock. */
class ManualClock {
  #now = T0
  readonly #timers = new Set<{ at: number; fire: () => void }>()

  readonly now = (): number => this.#now

  readonly sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const timer = {
        at: this.#now + ms,
        fire: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
      }
      const onAbort = () => {
        this.#timers.delete(timer)
        reject(signal?.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#timers.add(timer)
    })

  get pending(): number {
    return this.#timers.size
  }

  /** Moves the clock to `to`, firing due timers in time order (each at its own time). */
  async advanceTo(to: number): Promise<void> {
    await settle()
    for (;;) {
      const due = [...this.#timers].filter((t) => t.at <= to).sort((a, b) => a.at - b.at)[0]
      if (due === undefined) break
      this.#timers.delete(due)
      this.#now = Math.max(this.#now, due.at)
      due.fire()
      await settle()
    }
    this.#now = Math.max(this.#now, to)
    await settle()
  }
}

/** A clock whose `sleep` just moves it: sequential callers see exactly their scheduled times. */
function steppingClock() {
  let now = T0
  return {
    now: () => now,
    sleep: async (ms: number) => {
      now += ms
    },
  }
}

function limiterOn(clock: Pick<ManualClock, 'now' | 'sleep'>, options: LimiterOptions = {}) {
  return createMemoryLimiter({ now: clock.now, sleep: clock.sleep }, options)
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (error: unknown) => error,
  )
}

describe('call limiter (memory)', () => {
  it('lets a burst through at once, then one caller per interval', async () => {
    const clock = steppingClock()
    const limiter = limiterOn(clock)
    const times: number[] = []
    for (let i = 0; i < 7; i++) {
      await limiter.acquire(KEY, PLAN, { deadline: T0 + 60_000 })
      times.push(clock.now() - T0)
    }
    expect(times).toEqual([0, 0, 0, 200, 400, 600, 800])
  })

  it('spaces concurrent callers the same way, each waking at its turn', async () => {
    const clock = new ManualClock()
    const limiter = limiterOn(clock)
    const woke: number[] = []
    const calls = Array.from({ length: 6 }, () =>
      limiter.acquire(KEY, PLAN, { deadline: T0 + 60_000 }).then(() => woke.push(clock.now() - T0)),
    )
    await clock.advanceTo(T0)
    expect(woke).toEqual([0, 0, 0])
    expect(limiter.waiting(KEY)).toBe(3)
    await clock.advanceTo(T0 + 1_000)
    await Promise.all(calls)
    expect(woke).toEqual([0, 0, 0, 200, 400, 600])
    expect(limiter.waiting(KEY)).toBe(0)
  })

  it('keeps keys apart', async () => {
    const clock = steppingClock()
    const limiter = limiterOn(clock)
    for (let i = 0; i < 3; i++) await limiter.acquire('con_1:getOrders', PLAN, { deadline: T0 })
    // Another operation of the same connection has a bucket of its own.
    await limiter.acquire('con_1:getOrder', PLAN, { deadline: T0 })
    expect(clock.now()).toBe(T0)
  })

  it('refuses a turn past the deadline with spapi_throttled and reserves nothing', async () => {
    const clock = steppingClock()
    const limiter = limiterOn(clock)
    for (let i = 0; i < 3; i++) await limiter.acquire(KEY, PLAN, { deadline: T0 })
    const error = (await rejection(limiter.acquire(KEY, PLAN, { deadline: T0 + 199 }))) as SpConnectError
    expect(isSpConnectError(error, 'spapi_throttled')).toBe(true)
    expect(error.retryAfterSeconds).toBe(1)
    // Refused many times over: the next turn is still the first one after the burst.
    for (let i = 0; i < 5; i++) await rejection(limiter.acquire(KEY, PLAN, { deadline: T0 + 100 }))
    await limiter.acquire(KEY, PLAN, { deadline: T0 + 200 })
    expect(clock.now()).toBe(T0 + 200)
    expect(limiter.waiting(KEY)).toBe(0)
  })

  it('gives Retry-After as the whole seconds until the turn would come', async () => {
    const clock = steppingClock()
    const limiter = limiterOn(clock)
    const slow: RatePlan = { rate: 0.5, burst: 1 }
    await limiter.acquire(KEY, slow, { deadline: T0 })
    await limiter.acquire(KEY, slow, { deadline: T0 + 2_000 })
    // Now at T0 + 2 s with the next turn at T0 + 4 s.
    const error = (await rejection(limiter.acquire(KEY, slow, { deadline: T0 + 2_500 }))) as SpConnectError
    expect(error.retryAfterSeconds).toBe(2)
    // A deadline already gone is refused before asking the buckets.
    const late = (await rejection(limiter.acquire(KEY, slow, { deadline: T0 }))) as SpConnectError
    expect(isSpConnectError(late, 'spapi_throttled')).toBe(true)
  })

  it('bounds the callers waiting per key in this process: spapi_queue_full beyond it', async () => {
    const clock = new ManualClock()
    const limiter = limiterOn(clock, { maxWaiting: 4 })
    const plan: RatePlan = { rate: 1, burst: 1 }
    const calls = Array.from({ length: 4 }, () => limiter.acquire(KEY, plan, { deadline: T0 + 60_000 }))
    await clock.advanceTo(T0)
    expect(limiter.waiting(KEY)).toBe(3)
    // Three wait; one more is let in, the fifth is not.
    const fourth = limiter.acquire(KEY, plan, { deadline: T0 + 60_000 })
    const error = (await rejection(limiter.acquire(KEY, plan, { deadline: T0 + 60_000 }))) as SpConnectError
    expect(isSpConnectError(error, 'spapi_queue_full')).toBe(true)
    expect(error.retryAfterSeconds).toBe(4)
    // Another key is not affected.
    await limiter.acquire('con_2:getOrders', plan, { deadline: T0 })
    await clock.advanceTo(T0 + 10_000)
    await Promise.all([...calls, fourth])
    expect(limiter.waiting(KEY)).toBe(0)
    expect(DEFAULT_MAX_WAITING).toBe(100)
  })

  it('after Amazon says 429, lets nobody through for the time it said, then one per interval', async () => {
    const clock = steppingClock()
    const limiter = limiterOn(clock)
    await limiter.acquire(KEY, PLAN, { deadline: T0 })
    await limiter.throttled(KEY, PLAN, 5_000)
    const times: number[] = []
    for (let i = 0; i < 3; i++) {
      await limiter.acquire(KEY, PLAN, { deadline: T0 + 60_000 })
      times.push(clock.now() - T0)
    }
    expect(times).toEqual([5_000, 5_200, 5_400])
    // Without a time: one interval from now, and the bucket empty.
    await limiter.throttled(KEY, PLAN)
    await limiter.acquire(KEY, PLAN, { deadline: T0 + 60_000 })
    expect(clock.now() - T0).toBe(5_600)
    // A shorter hold-off never shortens a longer one already in place.
    await limiter.throttled(KEY, PLAN, 10_000)
    await limiter.throttled(KEY, PLAN, 1)
    await limiter.acquire(KEY, PLAN, { deadline: T0 + 60_000 })
    expect(clock.now() - T0).toBe(15_600)
  })

  it('uses the rate Amazon reported instead of the plan’s, and ignores a rate that is not one', async () => {
    const clock = steppingClock()
    const limiter = limiterOn(clock)
    await limiter.observedRate(KEY, PLAN, 1)
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      await limiter.observedRate(KEY, PLAN, bad)
    const times: number[] = []
    for (let i = 0; i < 5; i++) {
      await limiter.acquire(KEY, PLAN, { deadline: T0 + 60_000 })
      times.push(clock.now() - T0)
    }
    // The burst is still the plan's (Amazon's header carries only the rate).
    expect(times).toEqual([0, 0, 0, 1_000, 2_000])
  })

  it('converts the time owed when Amazon reports a faster rate than the table’s: callers are paced, not refused', async () => {
    // The fidelity bench's case: the table says 0.016/s (62.5 s apart), the seller really has 5/s.
    const clock = steppingClock()
    const limiter = limiterOn(clock)
    const published: RatePlan = { rate: 0.016, burst: 10 }
    for (let i = 0; i < 10; i++) await limiter.acquire(KEY, published, { deadline: T0 })
    const refused = (await rejection(
      limiter.acquire(KEY, published, { deadline: T0 + 30_000 }),
    )) as SpConnectError
    expect(refused.code).toBe('spapi_throttled')
    // The 10 turns taken are owed at 200 ms each now: 2 s of debt, not 625 s.
    await limiter.observedRate(KEY, published, 5)
    const times: number[] = []
    for (let i = 0; i < 3; i++) {
      await limiter.acquire(KEY, published, { deadline: T0 + 30_000 })
      times.push(clock.now() - T0)
    }
    expect(times).toEqual([200, 400, 600])
  })

  it('converts the time owed when Amazon reports a slower rate', async () => {
    const clock = steppingClock()
    const limiter = limiterOn(clock)
    const times: number[] = []
    for (let i = 0; i < 5; i++) {
      await limiter.acquire(KEY, PLAN, { deadline: T0 + 60_000 })
      times.push(clock.now() - T0)
    }
    expect(times).toEqual([0, 0, 0, 200, 400])
    // At 400 ms, 3 turns are owed (tat is 1 000 ms); at 1/s they take 3 s: tat 3 400 ms, next turn 1 400 ms.
    await limiter.observedRate(KEY, PLAN, 1)
    for (let i = 0; i < 2; i++) {
      await limiter.acquire(KEY, PLAN, { deadline: T0 + 60_000 })
      times.push(clock.now() - T0)
    }
    expect(times.slice(5)).toEqual([1_400, 2_400])
  })

  it('takes a reported rate up to 5 % faster as the same rate, and a slower one always', async () => {
    const clock = steppingClock()
    const buckets = new MemoryRateBucketStore()
    const limiter = new StoreCallLimiter({ buckets }, clock)
    const published: RatePlan = { rate: 0.016, burst: 1 }
    await limiter.acquire(KEY, published, { deadline: T0 })
    // Amazon's rounding of the table's 0.016: nothing changes, nothing is stored.
    await limiter.observedRate(KEY, published, 0.0167)
    expect(await buckets.get(KEY)).toEqual({ key: KEY, tat: T0 + 62_500, rate: null })
    await limiter.observedRate(KEY, published, 0.017)
    const faster = await buckets.get(KEY)
    expect(faster?.rate).toBe(0.017)
    expect(faster?.tat).toBeCloseTo(T0 + 1000 / 0.017, 3)
    // Slower by under 5 %: applied, since keeping the faster rate would send above what Amazon said.
    await limiter.observedRate(KEY, published, 0.0169)
    const slower = await buckets.get(KEY)
    expect(slower?.rate).toBe(0.0169)
    expect(slower?.tat).toBeCloseTo(T0 + 1000 / 0.0169, 3)
    // A key never seen, reported at the table's rate give or take the rounding: no row worth keeping.
    await limiter.observedRate('con_2:getOrders', published, 0.0165)
    expect(await buckets.get('con_2:getOrders')).toEqual({ key: 'con_2:getOrders', tat: T0, rate: null })
  })

  it('after a 429 without Retry-After, holds off one interval of the rate Amazon reported, not the table’s', async () => {
    const clock = steppingClock()
    const limiter = limiterOn(clock)
    await limiter.observedRate(KEY, PLAN, 1)
    await limiter.acquire(KEY, PLAN, { deadline: T0 })
    await limiter.throttled(KEY, PLAN)
    const times: number[] = []
    for (let i = 0; i < 2; i++) {
      await limiter.acquire(KEY, PLAN, { deadline: T0 + 60_000 })
      times.push(clock.now() - T0)
    }
    // 1 s (not the table's 200 ms), and the bucket empty after it: the next turn one more second later.
    expect(times).toEqual([1_000, 2_000])
  })

  it('on abort, gives the place in the queue back at once but not the turn', async () => {
    const clock = new ManualClock()
    const limiter = limiterOn(clock, { maxWaiting: 1 })
    const plan: RatePlan = { rate: 1, burst: 1 }
    await limiter.acquire(KEY, plan, { deadline: T0 })
    const controller = new AbortController()
    const waiting = limiter.acquire(KEY, plan, { deadline: T0 + 60_000, signal: controller.signal })
    await clock.advanceTo(T0)
    expect(limiter.waiting(KEY)).toBe(1)
    expect(clock.pending).toBe(1)
    const full = await rejection(limiter.acquire(KEY, plan, { deadline: T0 + 60_000 }))
    expect(isSpConnectError(full, 'spapi_queue_full')).toBe(true)

    controller.abort(new Error('caller gave up'))
    expect(await rejection(waiting)).toEqual(new Error('caller gave up'))
    expect(limiter.waiting(KEY)).toBe(0)
    expect(clock.pending).toBe(0)
    // The next caller gets in; its turn comes after the abandoned one (T0 + 1 s), which stays unused.
    let woke = 0
    const next = limiter.acquire(KEY, plan, { deadline: T0 + 60_000 }).then(() => {
      woke = clock.now()
    })
    await clock.advanceTo(T0 + 5_000)
    await next
    expect(woke).toBe(T0 + 2_000)
    // An already aborted signal is refused before anything is reserved.
    const aborted = AbortSignal.abort(new Error('already'))
    expect(await rejection(limiter.acquire(KEY, plan, { deadline: T0 + 60_000, signal: aborted }))).toEqual(
      new Error('already'),
    )
    await limiter.acquire(KEY, plan, { deadline: T0 + 60_000 })
    expect(clock.now()).toBe(T0 + 5_000)
  })

  it('refuses plans that are not plans', async () => {
    const limiter = limiterOn(steppingClock())
    for (const plan of [
      { rate: 0, burst: 1 },
      { rate: Number.NaN, burst: 1 },
      { rate: 1, burst: 0 },
      { rate: 1, burst: 1.5 },
    ]) {
      await expect(limiter.acquire(KEY, plan, { deadline: T0 })).rejects.toBeInstanceOf(TypeError)
    }
    expect(() => createMemoryLimiter(steppingClock(), { maxWaiting: 0 })).toThrow(TypeError)
  })
})

describe('GCRA arithmetic (reserveInBucket)', () => {
  it('never grants a schedule beyond the plan, whatever the arrivals, deadlines and rate changes', () => {
    const arrival = fc.record({
      // Callers of several instances: their `now` values need not arrive in order.
      at: fc.integer({ min: 0, max: 20_000 }),
      patience: fc.integer({ min: 0, max: 5_000 }),
    })
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(arrival, { minLength: 1, maxLength: 150 }),
        (ratePerTen, burst, arrivals) => {
          const plan: RatePlan = { rate: ratePerTen / 10, burst }
          const intervalMs = 1000 / plan.rate
          let bucket: { tat: number; rate: number | null } | undefined
          const granted: number[] = []
          for (const { at, patience } of arrivals) {
            const now = T0 + at
            const { reservation, tat } = reserveInBucket(bucket, {
              key: KEY,
              now,
              intervalMs,
              burst,
              deadline: now + patience,
            })
            expect(reservation.sendAt).toBeGreaterThanOrEqual(now)
            if (reservation.granted) {
              expect(reservation.sendAt).toBeLessThanOrEqual(now + patience)
              granted.push(reservation.sendAt)
              bucket = { tat, rate: null }
            } else {
              expect(tat).toBe(bucket?.tat ?? now)
            }
          }
          expect(planViolation(granted, plan)).toBeUndefined()
        },
      ),
      { numRuns: 300 },
    )
  })

  it('the conformance check itself catches a schedule one send too dense', () => {
    const plan: RatePlan = { rate: 5, burst: 3 }
    expect(planViolation([0, 0, 0, 200, 400], plan)).toBeUndefined()
    expect(planViolation([0, 0, 0, 199, 400], plan)).toMatch(/4 sends within 199 ms/)
    expect(planViolation([0, 0, 0, 200, 399], plan)).toBeDefined()
    expect(planViolation([0, 0, 0, 0], plan)).toBeDefined()
  })
})
