/**
 * One more sp-connect instance taking SP-API turns, for test/integration/limiter-postgres.test.ts.
 *
 * Run it with `fork()` and DATABASE_URL (a migrated PostgreSQL database): it opens its own store (own pool) and a
 * store limiter on the real clock, reports `ready`, waits for `go`, starts all its callers at once on one key,
 * reports each grant's send time (the schedule the database handed out, recorded from the bucket store's
 * answers) and each refusal, and exits.
 *
 * The test imports only the message types from here (`import type`), so nothing below runs inside vitest.
 */
import { defaultDeps } from '../../src/core/deps.ts'
import { createStoreLimiter } from '../../src/core/spapi/limiter.ts'
import type { RatePlan } from '../../src/core/spapi/operations.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'
import { openPostgresStore } from '../../src/store/index.ts'
import type { RateBucketStore } from '../../src/store/rate-bucket-store.ts'

/** Parent → worker: `callers` callers acquire a turn for `key` under `plan`, each by `deadline` (epoch ms). */
export interface LimiterGo {
  readonly type: 'go'
  readonly key: string
  readonly plan: RatePlan
  readonly callers: number
  readonly deadline: number
}

export type LimiterWorkerReport =
  | { readonly type: 'ready'; readonly pid: number }
  | {
      readonly type: 'result'
      readonly pid: number
      /** Send times the store granted (epoch ms), one per granted reservation. */
      readonly grants: readonly number[]
      /** Callers whose `acquire` resolved. */
      readonly passed: number
      /** Error codes of callers whose `acquire` rejected. */
      readonly failed: readonly string[]
    }
  | { readonly type: 'fatal'; readonly message: string }

function send(report: LimiterWorkerReport): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('limiter-worker must be started with fork() (no IPC channel)'))
    process.send(report, (error: Error | null) => (error ? reject(error) : resolve()))
  })
}

function isGo(message: unknown): message is LimiterGo {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'go'
}

/** The store's buckets, with every granted reservation written down as the database answered it. */
function recording(buckets: RateBucketStore, grants: number[]): RateBucketStore {
  return {
    reserve: async (request) => {
      const reservation = await buckets.reserve(request)
      if (reservation.granted) grants.push(reservation.sendAt)
      return reservation
    },
    holdOff: (key, until, intervalMs, burst) => buckets.holdOff(key, until, intervalMs, burst),
    setRate: (key, rate, now, intervalMs) => buckets.setRate(key, rate, now, intervalMs),
    get: (key) => buckets.get(key),
    sweepIdle: (before) => buckets.sweepIdle(before),
  }
}

async function main(): Promise<void> {
  process.on('disconnect', () => process.exit(1))
  const url = process.env['DATABASE_URL']
  if (!url) throw new Error('DATABASE_URL is not set')
  const store = await openPostgresStore({ url, poolSize: 5 })
  const grants: number[] = []
  const limiter = createStoreLimiter(recording(store.rateBuckets, grants), defaultDeps())
  const go = new Promise<LimiterGo>((resolve) => {
    process.on('message', (message: unknown) => {
      if (isGo(message)) resolve(message)
    })
  })
  await send({ type: 'ready', pid: process.pid })
  const { key, plan, callers, deadline } = await go
  const outcomes = await Promise.allSettled(
    Array.from({ length: callers }, () => limiter.acquire(key, plan, { deadline })),
  )
  const failed = outcomes.flatMap((o) =>
    o.status === 'rejected' ? [isSpConnectError(o.reason) ? o.reason.code : String(o.reason)] : [],
  )
  await send({ type: 'result', pid: process.pid, grants, passed: callers - failed.length, failed })
  await store.close()
  process.exit(0)
}

main().catch(async (error: unknown) => {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  process.stderr.write(`limiter-worker: ${message}\n`)
  await send({ type: 'fatal', message }).catch(() => {})
  process.exit(1)
})
