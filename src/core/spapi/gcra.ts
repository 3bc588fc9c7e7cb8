/**
 * GCRA (the generic cell rate algorithm, virtual scheduling) for one bucket, in plain arithmetic: the reference
 * the SQL in src/store/rate-bucket-store.ts computes in one statement (its module comment explains the
 * algorithm), and the bucket store a single process keeps in memory.
 */
import {
  checkRate,
  checkReserveRequest,
  type RateBucketRecord,
  type RateBucketStore,
  type Reservation,
  type ReserveRequest,
  rateChanges,
} from '../../store/rate-bucket-store.ts'

/** A bucket as GCRA keeps it: the theoretical arrival time, and Amazon's reported rate if there is one. */
interface GcraBucket {
  readonly tat: number
  readonly rate: number | null
}

/**
 * One reservation on `bucket` (undefined: a key never seen, i.e. a full bucket): the outcome, and the bucket's
 * `tat` afterwards (unchanged when refused).
 */
export function reserveInBucket(
  bucket: GcraBucket | undefined,
  request: ReserveRequest,
): { readonly reservation: Reservation; readonly tat: number } {
  const { now, burst, deadline } = request
  const interval = bucket?.rate == null ? request.intervalMs : 1000 / bucket.rate
  const tat = bucket?.tat ?? now
  const sendAt = Math.max(now, tat - (burst - 1) * interval)
  if (sendAt > deadline) return { reservation: { granted: false, sendAt }, tat }
  return { reservation: { granted: true, sendAt }, tat: Math.max(tat, now) + interval }
}

/**
 * `bucket` (undefined: a key never seen) once Amazon reported `rate` for it, under a plan of `intervalMs`: the
 * time owed is converted to the new interval, unless the rate is taken as the one in force (module comment of
 * src/store/rate-bucket-store.ts, "A rate Amazon reports").
 */
function rerateBucket(
  bucket: GcraBucket | undefined,
  rate: number,
  now: number,
  intervalMs: number,
): GcraBucket {
  const inForce = bucket?.rate ?? 1000 / intervalMs
  if (!rateChanges(inForce, rate)) return bucket ?? { tat: now, rate: null }
  if (bucket === undefined) return { tat: now, rate }
  const owed = Math.max(0, bucket.tat - now) / (bucket.rate === null ? intervalMs : 1000 / bucket.rate)
  return { tat: bucket.tat > now ? now + owed * (1000 / rate) : bucket.tat, rate }
}

/** {@link RateBucketStore} in this process's memory: what a single instance needs. */
export class MemoryRateBucketStore implements RateBucketStore {
  readonly #buckets = new Map<string, GcraBucket>()

  async reserve(request: ReserveRequest): Promise<Reservation> {
    checkReserveRequest(request)
    const bucket = this.#buckets.get(request.key)
    const { reservation, tat } = reserveInBucket(bucket, request)
    if (reservation.granted) this.#buckets.set(request.key, { tat, rate: bucket?.rate ?? null })
    return reservation
  }

  async holdOff(key: string, until: number, intervalMs: number, burst: number): Promise<void> {
    // NaN would sort above every time in PostgreSQL and hold the key off forever.
    checkReserveRequest({ key, now: until, intervalMs, burst, deadline: until })
    const bucket = this.#buckets.get(key)
    const interval = bucket?.rate == null ? intervalMs : 1000 / bucket.rate
    const held = until + (burst - 1) * interval
    this.#buckets.set(key, { tat: Math.max(bucket?.tat ?? held, held), rate: bucket?.rate ?? null })
  }

  async setRate(key: string, rate: number, now: number, intervalMs: number): Promise<void> {
    checkRate(rate)
    checkReserveRequest({ key, now, intervalMs, burst: 1, deadline: now })
    this.#buckets.set(key, rerateBucket(this.#buckets.get(key), rate, now, intervalMs))
  }

  async get(key: string): Promise<RateBucketRecord | undefined> {
    const bucket = this.#buckets.get(key)
    return bucket && { key, ...bucket }
  }

  async sweepIdle(before: number): Promise<number> {
    let deleted = 0
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tat < before) {
        this.#buckets.delete(key)
        deleted++
      }
    }
    return deleted
  }
}
