/**
 * What the SP-API call limiter costs per call when nobody has to wait: `acquire` on a plan so large that
 * every turn is "now" (rate and burst 10^9), so each call is exactly one reservation (one statement on the
 * databases) and no sleep. Five bucket stores side by side in one run: memory (one process), SQLite (a file in a
 * temp folder, node:sqlite), and PostgreSQL three ways, each in a database of its own (pool of 10, dropped
 * afterwards): the table as migrated (UNLOGGED, what ships), the table switched back to LOGGED (as it was before
 * migration 2026-11-30T05), and that logged table with each statement in a transaction that first runs
 * `SET LOCAL synchronous_commit = off` (the alternative to UNLOGGED). Each with one key (every caller on the same
 * row: the row lock serializes them on PostgreSQL) and with 64 keys (caller i on key i mod 64). 64 callers in one process loop on `acquire` for the round's duration; latency is per call, from
 * calling `acquire` to its return. Rounds alternate the stores so drift on the machine hits all alike.
 */
import { performance } from 'node:perf_hooks'
import { type Kysely, sql } from 'kysely'
import { defaultDeps } from '../../src/core/deps.ts'
import { type CallLimiter, createMemoryLimiter, createStoreLimiter } from '../../src/core/spapi/limiter.ts'
import type { RatePlan } from '../../src/core/spapi/operations.ts'
import { openPostgresKysely, openPostgresStore, openSqliteStore, type Store } from '../../src/store/index.ts'
import {
  KyselyRateBucketStore,
  type RateBucketStore,
  type Reservation,
  type ReserveRequest,
} from '../../src/store/rate-bucket-store.ts'
import type { Database } from '../../src/store/schema.ts'
import { tempDir, withCleanup } from '../lib/harness.ts'
import { benchPostgresUrl, createBenchDatabase, execute, serverInfo, where } from '../lib/postgres.ts'
import { median, quantile, round } from '../lib/stats.ts'

const CALLERS = 64
const KEY_COUNTS = [1, 64] as const
// Five stores × two key counts × (warm-up + rounds) must stay well inside the runner's 180 s per scenario.
const ROUND_SECONDS = 2
const WARMUP_SECONDS = 1
const ROUNDS = 3
const POSTGRES_POOL = 10
/** Turns always "now": the cost measured is the reservation, never a wait. */
const PLAN: RatePlan = { rate: 1e9, burst: 1e9 }

/** `postgres` is the table as migrated (UNLOGGED); the two others are the logged table it replaced. */
export type LimiterBackend = 'memory' | 'sqlite' | 'postgres' | 'postgres-logged' | 'postgres-logged-async'

export interface LimiterCostRound {
  readonly round: number
  readonly reservationsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
}

export interface LimiterCostCase {
  readonly backend: LimiterBackend
  readonly keys: number
  readonly rounds: readonly LimiterCostRound[]
  readonly medianPerSecond: number
  /** Over every call of every round. */
  readonly p50Ms: number
  readonly p99Ms: number
  readonly calls: number
}

export interface LimiterCostResult {
  readonly settings: {
    readonly callers: number
    readonly roundSeconds: number
    readonly rounds: number
    readonly postgresPool: number
    readonly postgres: string
    readonly postgresVersion: string
    /** The server's `fsync` and `synchronous_commit`: what a commit costs there. */
    readonly postgresFsync: string
    readonly postgresSynchronousCommit: string
  }
  readonly cases: readonly LimiterCostCase[]
}

/**
 * The Kysely bucket store with every reservation in its own transaction that turns off the synchronous commit
 * first: BEGIN, SET LOCAL, the statement, COMMIT (four round trips instead of one). Only `reserve` is measured.
 */
class AsyncCommitReservations implements RateBucketStore {
  readonly #db: Kysely<Database>
  readonly #plain: KyselyRateBucketStore

  constructor(db: Kysely<Database>) {
    this.#db = db
    this.#plain = new KyselyRateBucketStore(db)
  }

  reserve(request: ReserveRequest): Promise<Reservation> {
    return this.#db.transaction().execute(async (trx) => {
      await sql`set local synchronous_commit = off`.execute(trx)
      return new KyselyRateBucketStore(trx).reserve(request)
    })
  }

  holdOff(key: string, until: number, intervalMs: number, burst: number): Promise<void> {
    return this.#plain.holdOff(key, until, intervalMs, burst)
  }

  setRate(key: string, rate: number, now: number, intervalMs: number): Promise<void> {
    return this.#plain.setRate(key, rate, now, intervalMs)
  }

  get(key: string) {
    return this.#plain.get(key)
  }

  sweepIdle(before: number): Promise<number> {
    return this.#plain.sweepIdle(before)
  }
}

interface Measured {
  readonly calls: number
  readonly seconds: number
  readonly latencies: number[]
}

/** 64 callers looping on `acquire` for `seconds`. */
async function measure(limiter: CallLimiter, keys: number, seconds: number, tag: string): Promise<Measured> {
  const latencies: number[] = []
  const started = performance.now()
  const until = started + seconds * 1000
  await Promise.all(
    Array.from({ length: CALLERS }, async (_, i) => {
      const key = `con_${tag}_${i % keys}:getOrders`
      while (performance.now() < until) {
        const t = performance.now()
        await limiter.acquire(key, PLAN, { deadline: Date.now() + 60_000 })
        latencies.push(performance.now() - t)
      }
    }),
  )
  return { calls: latencies.length, seconds: (performance.now() - started) / 1000, latencies }
}

export async function run(): Promise<LimiterCostResult> {
  return withCleanup(async (defer) => {
    const dir = tempDir('limiter')
    defer(() => dir.dispose())
    const sqlite = await openSqliteStore({ path: `${dir.path}/limiter.db` })
    defer(() => sqlite.close())
    await sqlite.migrate()
    const database = await createBenchDatabase()
    defer(() => database.drop())
    const postgres: Store = await openPostgresStore({ url: database.url, poolSize: POSTGRES_POOL })
    defer(() => postgres.close())
    await postgres.migrate()
    const info = await serverInfo(database.url)
    // The table as it was before migration 2026-11-30T05, in a database of its own so the two never share a row.
    const loggedDatabase = await createBenchDatabase()
    defer(() => loggedDatabase.drop())
    const logged: Store = await openPostgresStore({ url: loggedDatabase.url, poolSize: POSTGRES_POOL })
    defer(() => logged.close())
    await logged.migrate()
    await execute(loggedDatabase.url, 'alter table rate_buckets set logged')
    const loggedKysely = openPostgresKysely({ url: loggedDatabase.url, poolSize: POSTGRES_POOL })
    defer(() => loggedKysely.destroy())

    const deps = defaultDeps()
    const limiters: Record<LimiterBackend, CallLimiter> = {
      memory: createMemoryLimiter(deps),
      sqlite: createStoreLimiter(sqlite.rateBuckets, deps),
      postgres: createStoreLimiter(postgres.rateBuckets, deps),
      'postgres-logged': createStoreLimiter(logged.rateBuckets, deps),
      'postgres-logged-async': createStoreLimiter(new AsyncCommitReservations(loggedKysely), deps),
    }
    const backends = Object.keys(limiters) as LimiterBackend[]
    const cases: LimiterCostCase[] = []
    for (const keys of KEY_COUNTS) {
      for (const backend of backends) await measure(limiters[backend], keys, WARMUP_SECONDS, 'warmup')
      const rounds = new Map<LimiterBackend, { round: LimiterCostRound; latencies: number[] }[]>()
      for (let r = 0; r < ROUNDS; r++) {
        // Alternate the order so no store always runs first (or last) in a round.
        const order = r % 2 === 0 ? backends : [...backends].reverse()
        for (const backend of order) {
          const m = await measure(limiters[backend], keys, ROUND_SECONDS, `r${r}`)
          const sorted = [...m.latencies].sort((a, b) => a - b)
          const round1 = {
            round: r + 1,
            reservationsPerSecond: Math.round(m.calls / m.seconds),
            p50Ms: round(quantile(sorted, 0.5), 3),
            p99Ms: round(quantile(sorted, 0.99), 3),
          }
          console.log(
            `  ${backend.padEnd(21)} ${String(keys).padStart(2)} key(s) round ${r + 1}: ${round1.reservationsPerSecond} /s, p50 ${round1.p50Ms} ms, p99 ${round1.p99Ms} ms`,
          )
          rounds.set(backend, [...(rounds.get(backend) ?? []), { round: round1, latencies: m.latencies }])
        }
      }
      for (const backend of backends) {
        const runs = rounds.get(backend) ?? []
        const all = runs.flatMap((x) => x.latencies).sort((a, b) => a - b)
        cases.push({
          backend,
          keys,
          rounds: runs.map((x) => x.round),
          medianPerSecond: Math.round(median(runs.map((x) => x.round.reservationsPerSecond))),
          p50Ms: round(quantile(all, 0.5), 3),
          p99Ms: round(quantile(all, 0.99), 3),
          calls: all.length,
        })
      }
    }
    return {
      settings: {
        callers: CALLERS,
        roundSeconds: ROUND_SECONDS,
        rounds: ROUNDS,
        postgresPool: POSTGRES_POOL,
        postgres: where(benchPostgresUrl()),
        postgresVersion: info.version,
        postgresFsync: info.fsync,
        postgresSynchronousCommit: info.synchronousCommit,
      },
      cases,
    }
  })
}
