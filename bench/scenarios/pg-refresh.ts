/**
 * 5. 100,000 connections on PostgreSQL: the background refresher with 1 and with 3 instances, and the database
 * size per connection.
 *
 * A fresh database (`sp_connect_bench_<random>`, dropped afterwards), migrated by the store, then 100,000
 * connections inserted with batched multi-row INSERTs (1,000 rows per statement) through Kysely: refresh tokens
 * from the simulator's self-authorization and an access token of a real token's length that expired a minute
 * ago, both sealed with the deployment's keyring, each used a minute ago, so every one is due, as after
 * downtime. The simulator runs in a process of its own; each instance is a child process with its own runtime
 * (pool, TokenManager) and BackgroundRefresher (pg-refresh-worker.ts), all on the one database.
 *
 * Refreshing 100,000 takes 100,000 / rate seconds, minutes at any rate this machine sustains, so each run is a
 * measured window: the instances start together, run their refreshers for WINDOW seconds and are stopped as
 * `stop()` stops them. Before every run the connections refreshed by the previous one are made due again
 * (access token expired, `last_refresh_at` cleared) and the table is vacuumed, so each run starts with all
 * 100,000 due. The time for all 100,000 is extrapolated from the run's pace: 100,000 / (calls / wall).
 * Calls are the simulator's counters; refreshed connections are counted in the table (`last_refresh_at` set
 * during the run), so duplicates = calls − connections refreshed.
 *
 * Two settings, each with 1 and 3 instances: a fixed token-endpoint rate for the whole cluster (one instance at
 * that rate, three at a third each: what Amazon allows the app does not grow with instances), and every
 * instance at the configuration's cap of 1,000 calls/s (what the machine itself sustains).
 *
 * Sizes: `pg_total_relation_size('connections')` (heap, TOAST, indexes) over the rows, after the insert (the
 * live rows as they stand in steady state: both tokens sealed), after the runs (with the dead row versions the
 * last run's updates left), and after `VACUUM FULL`.
 */
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { sql } from 'kysely'
import { openPostgresKysely } from '../../src/store/index.ts'
import { machineBusySeconds } from '../lib/cpu.ts'
import { ForkedWorker } from '../lib/forked-worker.ts'
import {
  benchEnv,
  newEncryptionKey,
  openBenchRuntime,
  sellingPartnerId,
  withCleanup,
} from '../lib/harness.ts'
import {
  bulkInsertConnections,
  type ClaimPlan,
  claimPlan,
  createBenchDatabase,
  execute,
  serverInfo,
  type TableSize,
  tableSize,
  where,
} from '../lib/postgres.ts'
import { RemoteSimulator } from '../lib/remote-simulator.ts'
import { epochMs, round } from '../lib/stats.ts'
import type { RefreshWorkerReply, RefreshWorkerRequest } from './pg-refresh-worker.ts'

const WORKER = fileURLToPath(new URL('./pg-refresh-worker.ts', import.meta.url))

/** One setting of the refresher, run once per instance count. */
export interface PgRefreshVariant {
  readonly label: string
  /** The whole cluster's token-endpoint rate, divided among the instances… */
  readonly clusterRatePerSecond?: number
  /** …or every instance's own rate. */
  readonly ratePerInstance?: number
}

export interface PgRefreshSettings {
  readonly connections: number
  readonly variants: readonly PgRefreshVariant[]
  readonly instances: readonly number[]
  /** Each run's measured window. */
  readonly windowSeconds: number
  /** Refreshes in flight per instance (SP_CONNECT_REFRESH_CONCURRENCY). */
  readonly concurrencyPerInstance: number
  /** SP_CONNECT_DB_POOL_SIZE per instance. */
  readonly poolSizePerInstance: number
  readonly insertBatch: number
}

const DEFAULTS: PgRefreshSettings = {
  connections: 100_000,
  variants: [
    { label: 'fixed cluster rate', clusterRatePerSecond: 150 },
    { label: 'per-instance cap', ratePerInstance: 1_000 },
  ],
  instances: [1, 3],
  windowSeconds: 20,
  concurrencyPerInstance: 16,
  poolSizePerInstance: 10,
  insertBatch: 1_000,
}

export interface PgRefreshRun {
  readonly variant: string
  readonly instances: number
  readonly ratePerInstance: number
  /** The rate limits of all instances added up. */
  readonly clusterRateLimit: number
  readonly concurrencyPerInstance: number
  readonly dueAtStart: number
  readonly wallSeconds: number
  readonly tokenEndpointCalls: number
  readonly callsPerSecond: number
  /** Connections refreshed in the run, counted in the table. */
  readonly connectionsRefreshed: number
  /** Token-endpoint calls beyond one per refreshed connection (target 0). */
  readonly duplicates: number
  readonly failed: number
  readonly throttled: boolean
  readonly refreshedPerInstance: readonly number[]
  readonly cpuSecondsPerInstance: readonly number[]
  /** The refresher's claim queries, all instances together: how many, mean and slowest. */
  readonly claims: number
  readonly claimMsMean: number
  readonly claimMsMax: number
  /** Busy CPU of the whole machine during the run (PostgreSQL, simulator, instances), as a share of all CPUs. */
  readonly machineCpuShare: number
  /** All connections at this run's pace: connections / calls per second. */
  readonly extrapolatedSecondsForAll: number
}

export interface SizeReading extends TableSize {
  readonly bytesPerConnection: number
  readonly indexBytesPerConnection: number
}

export interface PgRefreshResult {
  readonly settings: PgRefreshSettings
  readonly server: Awaited<ReturnType<typeof serverInfo>> & { readonly where: string }
  readonly prepare: {
    readonly selfAuthorizeSeconds: number
    readonly insertSeconds: number
    readonly rowsPerSecond: number
    /** Length of the access token stored in every row (a real one from the simulator's token endpoint). */
    readonly accessTokenChars: number
    readonly refreshTokenChars: number
  }
  readonly runs: readonly PgRefreshRun[]
  /** The claim query's plan with all connections due (EXPLAIN ANALYZE, rolled back), or why it is missing. */
  readonly claimPlan: ClaimPlan | { readonly error: string }
  readonly size: {
    readonly afterInsert: SizeReading
    readonly afterRuns: SizeReading
    readonly afterVacuumFull: SizeReading
    readonly vacuumFullSeconds: number
  }
}

type Worker = ForkedWorker<RefreshWorkerRequest, RefreshWorkerReply>

function sizeReading(s: TableSize): SizeReading {
  return {
    ...s,
    bytesPerConnection: Math.round(s.totalBytes / Math.max(1, s.rows)),
    indexBytesPerConnection: Math.round(s.indexBytes / Math.max(1, s.rows)),
  }
}

/** One access token from the simulator's token endpoint, for its length. */
async function realAccessToken(sim: RemoteSimulator, refreshToken: string): Promise<string> {
  const response = await fetch(sim.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: sim.clientId,
      client_secret: sim.clientSecret,
    }),
  })
  const body = (await response.json()) as { access_token?: string }
  if (!response.ok || !body.access_token) throw new Error(`token endpoint answered ${response.status}`)
  return body.access_token
}

export async function run(settings: PgRefreshSettings = DEFAULTS): Promise<PgRefreshResult> {
  return withCleanup(async (defer) => {
    const sim = await RemoteSimulator.start()
    defer(() => sim.close())
    const database = await createBenchDatabase()
    defer(() => database.drop())
    const server = { ...(await serverInfo(database.url)), where: where(database.url) }
    const env = {
      ...benchEnv(sim.target, database.url, newEncryptionKey()),
      SP_CONNECT_DB_POOL_SIZE: String(settings.poolSizePerInstance),
    }
    const runtime = await openBenchRuntime(env)
    defer(() => runtime.close())
    // The benchmark's own statements on the table, beside the store (which has no "count refreshed" query).
    const db = openPostgresKysely({ url: database.url, poolSize: 1 })
    defer(() => db.destroy())

    // Refresh tokens issued by the simulator (one grant each), in batches over its IPC channel.
    const t0 = performance.now()
    const spids = Array.from({ length: settings.connections }, (_, i) => sellingPartnerId(i + 1))
    const refreshTokens: string[] = []
    for (let i = 0; i < spids.length; i += 5_000) {
      refreshTokens.push(...(await sim.selfAuthorize(spids.slice(i, i + 5_000))))
    }
    const selfAuthorizeSeconds = (performance.now() - t0) / 1000
    const sample = await realAccessToken(sim, refreshTokens[0] ?? '')
    const now = runtime.deps.now()
    const t1 = performance.now()
    await bulkInsertConnections(
      runtime,
      database.url,
      spids.map((sp, i) => ({
        sellingPartnerId: sp,
        refreshToken: refreshTokens[i] ?? '',
        // Nobody uses an expired token: it only has to be as long as a real one, and unique.
        accessToken: {
          token: `${sample.slice(0, -10)}${i.toString(36).padStart(10, '0')}`,
          expiresAt: now - 60_000,
        },
        lastUsedAt: now - 60_000,
      })),
      { batch: settings.insertBatch },
    )
    const insertSeconds = (performance.now() - t1) / 1000
    const refreshTokenChars = refreshTokens[0]?.length ?? 0
    refreshTokens.length = 0
    const afterInsert = sizeReading(await tableSize(database.url, 'connections'))
    // The refresher's own query (its defaults: 6 h warm window, margin + 10 min lookahead, daily health check).
    const planNow = runtime.deps.now()
    const plan = await claimPlan(
      database.url,
      {
        now: planNow,
        warmUsedSince: planNow - 6 * 3_600_000,
        warmExpiringBefore: planNow + runtime.tokens.refreshMarginMs + 10 * 60_000,
        idleCheckedBefore: planNow - 24 * 3_600_000,
        limit: 100,
      },
      planNow,
    ).catch((error: unknown) => ({ error: error instanceof Error ? error.message : String(error) }))

    const workers: Worker[] = Array.from(
      { length: Math.max(...settings.instances) },
      () => new ForkedWorker(WORKER),
    )
    for (const w of workers) defer(() => w.close({ op: 'close' }))
    await Promise.all(workers.map((w) => w.request({ op: 'init', env }, 30_000)))

    const count = async (condition: ReturnType<typeof sql>) => {
      const { rows } = await sql<{
        n: string
      }>`select count(*) as n from connections where ${condition}`.execute(db)
      return Number(rows[0]?.n ?? 0)
    }
    const runs: PgRefreshRun[] = []
    for (const variant of settings.variants) {
      for (const instances of settings.instances) {
        // Everything the previous run refreshed is due again, and its dead row versions are vacuumed away.
        const expired = runtime.deps.now() - 60_000
        await sql`update connections set access_token_expires_at = ${expired}, last_refresh_at = null
                  where last_refresh_at is not null`.execute(db)
        await execute(database.url, 'vacuum (analyze) connections')
        const dueAtStart = await count(sql`access_token_expires_at < ${runtime.deps.now()}`)
        const ratePerInstance = variant.ratePerInstance ?? (variant.clusterRatePerSecond ?? 0) / instances
        await sim.resetCounters()
        const busyBefore = machineBusySeconds()
        const startAt = epochMs() + 300
        const replies = await Promise.all(
          workers.slice(0, instances).map((w) =>
            w.request(
              {
                op: 'go',
                startAt,
                ratePerSecond: ratePerInstance,
                concurrency: settings.concurrencyPerInstance,
                durationMs: settings.windowSeconds * 1000,
              },
              (settings.windowSeconds + 60) * 1000,
            ),
          ),
        )
        const done = replies.flatMap((r) => (r.type === 'done' ? [r] : []))
        const wallSeconds = (Math.max(...done.map((r) => r.endedAt)) - startAt) / 1000
        const busy = machineBusySeconds() - busyBefore
        const calls = (await sim.counters()).byGrant.refresh_token
        const refreshed = await count(sql`last_refresh_at is not null`)
        const callsPerSecond = calls / wallSeconds
        runs.push({
          variant: variant.label,
          instances,
          ratePerInstance: round(ratePerInstance, 1),
          clusterRateLimit: round(ratePerInstance * instances, 1),
          concurrencyPerInstance: settings.concurrencyPerInstance,
          dueAtStart,
          wallSeconds: round(wallSeconds, 2),
          tokenEndpointCalls: calls,
          callsPerSecond: Math.round(callsPerSecond),
          connectionsRefreshed: refreshed,
          duplicates: calls - refreshed,
          failed: done.reduce((s, r) => s + r.failed, 0),
          throttled: done.some((r) => r.throttled),
          refreshedPerInstance: done.map((r) => r.refreshed),
          cpuSecondsPerInstance: done.map((r) => r.cpuSeconds),
          claims: done.reduce((s, r) => s + r.claims, 0),
          claimMsMean: round(
            done.reduce((s, r) => s + r.claimMsMean * r.claims, 0) /
              Math.max(
                1,
                done.reduce((s, r) => s + r.claims, 0),
              ),
            1,
          ),
          claimMsMax: Math.max(...done.map((r) => r.claimMsMax)),
          machineCpuShare: round(busy / (wallSeconds * availableParallelism()), 2),
          extrapolatedSecondsForAll: Math.round(settings.connections / callsPerSecond),
        })
      }
    }

    const afterRuns = sizeReading(await tableSize(database.url, 'connections'))
    const tv = performance.now()
    await execute(database.url, 'vacuum full connections')
    const vacuumFullSeconds = (performance.now() - tv) / 1000
    const afterVacuumFull = sizeReading(await tableSize(database.url, 'connections'))
    return {
      settings,
      server,
      prepare: {
        selfAuthorizeSeconds: round(selfAuthorizeSeconds, 2),
        insertSeconds: round(insertSeconds, 2),
        rowsPerSecond: Math.round(settings.connections / insertSeconds),
        accessTokenChars: sample.length,
        refreshTokenChars,
      },
      runs,
      claimPlan: plan,
      size: { afterInsert, afterRuns, afterVacuumFull, vacuumFullSeconds: round(vacuumFullSeconds, 2) },
    }
  })
}
