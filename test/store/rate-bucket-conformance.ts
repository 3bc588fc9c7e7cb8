/**
 * Conformance of the usage-plan bucket sub-store (`Store.rateBuckets`, src/store/rate-bucket-store.ts): the
 * same GCRA schedule on every backend, to the millisecond fraction, and no lost update when many reserve at
 * once through two handles. Invoked from the SQLite and PostgreSQL store tests with their store factories.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ReserveRequest } from '../../src/store/rate-bucket-store.ts'
import type { Store } from '../../src/store/store.ts'
import { planViolation } from '../helpers/rate-conformance.ts'
import type { StoreUnderTest } from './conformance.ts'

const T0 = 1_800_000_000_000
const DAY = 24 * 60 * 60 * 1000

let serial = 0
const uniqueKey = () => `con_${++serial}${Math.random().toString(36).slice(2, 8)}:getOrders`

/** rate 5/s (200 ms), burst 10, unless told otherwise. */
function request(key: string, overrides: Partial<ReserveRequest> = {}): ReserveRequest {
  return { key, now: T0, intervalMs: 200, burst: 10, deadline: T0 + 60_000, ...overrides }
}

/** Registers the rate-bucket sub-store tests for one backend (a fresh, unmigrated store per test). */
export function rateBucketConformanceSuite(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`rate bucket store conformance: ${name}`, () => {
    let subject: StoreUnderTest
    let store: Store
    const extra: Store[] = []

    beforeEach(async () => {
      subject = await makeStore()
      store = subject.store
      await store.migrate()
    })

    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close()
      await subject.cleanup()
    })

    it('grants a new key’s burst at once, then one turn per interval', async () => {
      const key = uniqueKey()
      const sends: number[] = []
      for (let i = 0; i < 13; i++) {
        const r = await store.rateBuckets.reserve(request(key))
        expect(r.granted).toBe(true)
        sends.push(r.sendAt - T0)
      }
      expect(sends).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 400, 600])
      expect(await store.rateBuckets.get(key)).toEqual({ key, tat: T0 + 13 * 200, rate: null })
      // Time passing refills the bucket: 1 s later, 5 tokens came back, minus the 3 owed.
      const later = await store.rateBuckets.reserve(request(key, { now: T0 + 1_000 }))
      expect(later).toEqual({ granted: true, sendAt: T0 + 1_000 })
    })

    it('refuses a turn after the deadline, telling when it would come, and changes nothing', async () => {
      const key = uniqueKey()
      for (let i = 0; i < 10; i++) await store.rateBuckets.reserve(request(key))
      const before = await store.rateBuckets.get(key)
      expect(await store.rateBuckets.reserve(request(key, { deadline: T0 + 199 }))).toEqual({
        granted: false,
        sendAt: T0 + 200,
      })
      expect(await store.rateBuckets.get(key)).toEqual(before)
      expect(await store.rateBuckets.reserve(request(key, { deadline: T0 + 200 }))).toEqual({
        granted: true,
        sendAt: T0 + 200,
      })
      // A deadline before now is refused even for a key never seen.
      const fresh = uniqueKey()
      expect(await store.rateBuckets.reserve(request(fresh, { deadline: T0 - 1 }))).toEqual({
        granted: false,
        sendAt: T0,
      })
      expect((await store.rateBuckets.reserve(request(fresh))).granted).toBe(true)
    })

    // Within a microsecond: a float64 epoch time in ms has an ulp of ~0.24 µs.
    it('keeps fractional intervals exact (rate 30/s, and 1 per minute)', async () => {
      const key = uniqueKey()
      const interval = 1000 / 30
      const sends: number[] = []
      for (let i = 0; i < 5; i++) {
        sends.push((await store.rateBuckets.reserve(request(key, { intervalMs: interval, burst: 2 }))).sendAt)
      }
      const expected = [0, 0, 1, 2, 3].map((k) => T0 + k * interval)
      for (const [i, sendAt] of sends.entries())
        expect(Math.abs(sendAt - (expected[i] ?? 0))).toBeLessThan(0.001)
      const slow = uniqueKey()
      await store.rateBuckets.reserve(request(slow, { intervalMs: 60_000, burst: 1 }))
      const next = await store.rateBuckets.reserve(
        request(slow, { intervalMs: 60_000, burst: 1, deadline: T0 + DAY }),
      )
      expect(next).toEqual({ granted: true, sendAt: T0 + 60_000 })
    })

    it('holds a key off after a 429, never shortening a hold-off, and leaves the bucket empty after it', async () => {
      const key = uniqueKey()
      await store.rateBuckets.reserve(request(key))
      await store.rateBuckets.holdOff(key, T0 + 5_000, 200, 10)
      await store.rateBuckets.holdOff(key, T0 + 1_000, 200, 10)
      const first = await store.rateBuckets.reserve(request(key, { now: T0 + 10 }))
      const second = await store.rateBuckets.reserve(request(key, { now: T0 + 10 }))
      expect([first.sendAt, second.sendAt]).toEqual([T0 + 5_000, T0 + 5_200])
      // A key never seen is created held off.
      const fresh = uniqueKey()
      await store.rateBuckets.holdOff(fresh, T0 + 3_000, 200, 10)
      expect((await store.rateBuckets.reserve(request(fresh))).sendAt).toBe(T0 + 3_000)
    })

    it('uses a reported rate instead of the plan’s, for reservations and hold-offs alike', async () => {
      const key = uniqueKey()
      await store.rateBuckets.setRate(key, 0.5, T0, 200)
      expect(await store.rateBuckets.get(key)).toEqual({ key, tat: T0, rate: 0.5 })
      const sends: number[] = []
      for (let i = 0; i < 4; i++)
        sends.push((await store.rateBuckets.reserve(request(key, { burst: 2 }))).sendAt)
      expect(sends.map((s) => s - T0)).toEqual([0, 0, 2_000, 4_000])
      await store.rateBuckets.setRate(key, 10, T0, 200)
      // The 4 turns owed (8 s at 2 s) are owed at 100 ms now: tat T0 + 400 ms, the next turn at 300 ms.
      expect(await store.rateBuckets.get(key)).toEqual({ key, tat: T0 + 400, rate: 10 })
      expect((await store.rateBuckets.reserve(request(key, { burst: 2 }))).sendAt).toBe(T0 + 300)
      await expect(store.rateBuckets.setRate(key, 0, T0, 200)).rejects.toBeInstanceOf(TypeError)
      await expect(store.rateBuckets.setRate(key, 1, T0, Number.NaN)).rejects.toBeInstanceOf(TypeError)
    })

    it('converts the time owed to a new rate, faster or slower, from the plan’s or a stored one', async () => {
      // The table says 0.016/s (62.5 s apart, burst 2); the seller really has 5/s.
      const key = uniqueKey()
      const published = { intervalMs: 62_500, burst: 2, deadline: T0 + DAY }
      const sends: number[] = []
      for (let i = 0; i < 4; i++)
        sends.push((await store.rateBuckets.reserve(request(key, published))).sendAt - T0)
      expect(sends).toEqual([0, 0, 62_500, 125_000])
      await store.rateBuckets.setRate(key, 5, T0, 62_500)
      expect(await store.rateBuckets.get(key)).toEqual({ key, tat: T0 + 800, rate: 5 })
      expect(await store.rateBuckets.reserve(request(key, published))).toEqual({
        granted: true,
        sendAt: T0 + 600,
      })
      // Slower, from the stored 5/s: at 500 ms, 2.5 turns are owed (tat 1 000 ms); at 1/s, tat 3 000 ms.
      await store.rateBuckets.setRate(key, 1, T0 + 500, 62_500)
      expect(await store.rateBuckets.get(key)).toEqual({ key, tat: T0 + 3_000, rate: 1 })
      expect(await store.rateBuckets.reserve(request(key, { ...published, now: T0 + 500 }))).toEqual({
        granted: true,
        sendAt: T0 + 2_000,
      })
      // A full bucket owes nothing: its tat stays where it was (and so does its idle time for the sweeper).
      const idle = uniqueKey()
      await store.rateBuckets.reserve(request(idle, { now: T0 - 10_000 }))
      await store.rateBuckets.setRate(idle, 1, T0, 200)
      expect(await store.rateBuckets.get(idle)).toEqual({ key: idle, tat: T0 - 9_800, rate: 1 })
    })

    it('takes a rate up to 5 % faster than the one in force as the same, and any slower one as a change', async () => {
      const key = uniqueKey()
      const published = { intervalMs: 62_500, burst: 1 }
      await store.rateBuckets.reserve(request(key, published))
      // 0.0167 is Amazon's rounding of the table's 0.016: nothing is stored, the debt stays as it was.
      await store.rateBuckets.setRate(key, 0.0167, T0, 62_500)
      expect(await store.rateBuckets.get(key)).toEqual({ key, tat: T0 + 62_500, rate: null })
      await store.rateBuckets.setRate(key, 0.02, T0, 62_500)
      expect(await store.rateBuckets.get(key)).toEqual({ key, tat: T0 + 50_000, rate: 0.02 })
      await store.rateBuckets.setRate(key, 0.0205, T0, 62_500)
      expect((await store.rateBuckets.get(key))?.rate).toBe(0.02)
      // Slower, even by 2.5 %: sending at the faster rate would go above what Amazon said.
      await store.rateBuckets.setRate(key, 0.0195, T0, 62_500)
      const slower = await store.rateBuckets.get(key)
      expect(slower?.rate).toBe(0.0195)
      expect(Math.abs((slower?.tat ?? 0) - (T0 + 1000 / 0.0195))).toBeLessThan(0.001)
      // A key never seen gets a full bucket, with the rate only when it is not the plan's.
      const fresh = uniqueKey()
      await store.rateBuckets.setRate(fresh, 0.0167, T0, 62_500)
      expect(await store.rateBuckets.get(fresh)).toEqual({ key: fresh, tat: T0, rate: null })
    })

    it('converts atomically while 40 callers on two handles reserve: the schedule is one of the serial ones', async () => {
      const other = subject.openAnother ? await subject.openAnother() : store
      if (other !== store) extra.push(other)
      const key = uniqueKey()
      const oldPlan = { rate: 1, burst: 5 }
      const newPlan = { rate: 5, burst: 5 }
      const calls: Promise<number | undefined>[] = Array.from({ length: 40 }, (_, i) =>
        (i % 2 === 0 ? store : other).rateBuckets
          .reserve(request(key, { intervalMs: 1_000, burst: 5 }))
          .then((r) => (r.granted ? r.sendAt - T0 : undefined)),
      )
      calls.splice(
        20,
        0,
        other.rateBuckets.setRate(key, newPlan.rate, T0, 1_000).then(() => undefined),
      )
      const sends = (await Promise.all(calls)).filter((s) => s !== undefined).sort((a, b) => a - b)
      expect(sends).toHaveLength(40)
      // Serially, k reservations before the change go 1 s apart after the burst; the change makes the k owed
      // turns owe 200 ms each, and the 40 - k after it go 200 ms apart from there.
      const serial = (k: number) => {
        const before = Array.from({ length: k }, (_, i) => Math.max(0, i - 4) * 1_000)
        const after = Array.from({ length: 40 - k }, (_, j) => Math.max(0, k + j - 4) * 200)
        return { before, after, all: [...before, ...after].sort((a, b) => a - b) }
      }
      const k = Array.from({ length: 41 }, (_, n) => n).find((n) =>
        serial(n).all.every((s, i) => s === sends[i]),
      )
      expect(k, `no serial order gives ${JSON.stringify(sends)}`).toBeDefined()
      const { before, after } = serial(k ?? 0)
      expect(planViolation(before, oldPlan)).toBeUndefined()
      expect(planViolation(after, newPlan)).toBeUndefined()
      expect(await store.rateBuckets.get(key)).toEqual({ key, tat: T0 + 40 * 200, rate: 5 })
    })

    it('loses no update when 60 callers on two handles reserve one key at once', async () => {
      const other = subject.openAnother ? await subject.openAnother() : store
      if (other !== store) extra.push(other)
      const key = uniqueKey()
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? store : other).rateBuckets.reserve(request(key))),
      )
      expect(results.every((r) => r.granted)).toBe(true)
      const sends = results.map((r) => r.sendAt - T0).sort((a, b) => a - b)
      // Exactly the schedule of 60 sequential reservations: 10 at once, then 50 turns 200 ms apart.
      expect(sends).toEqual([
        ...Array.from({ length: 10 }, () => 0),
        ...Array.from({ length: 50 }, (_, k) => (k + 1) * 200),
      ])
      expect((await store.rateBuckets.get(key))?.tat).toBe(T0 + 60 * 200)
      expect(planViolation(sends, { rate: 5, burst: 10 })).toBeUndefined()
    })

    it('sweeps buckets idle since before the cutoff, and only those', async () => {
      const idle = uniqueKey()
      const busy = uniqueKey()
      await store.rateBuckets.reserve(request(idle, { now: T0 - 2 * DAY }))
      await store.rateBuckets.setRate(idle, 2, T0 - 2 * DAY, 200)
      await store.rateBuckets.reserve(request(busy))
      expect(await store.rateBuckets.sweepIdle(T0 - DAY)).toBe(1)
      expect(await store.rateBuckets.get(idle)).toBeUndefined()
      expect(await store.rateBuckets.get(busy)).toBeDefined()
      expect(await store.rateBuckets.sweepIdle(T0 - DAY)).toBe(0)
      // A swept key starts again as a full bucket.
      expect(await store.rateBuckets.reserve(request(idle))).toEqual({ granted: true, sendAt: T0 })
    })
  })
}
