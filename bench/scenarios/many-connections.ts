/**
 * 4. 10,000 connections.
 *
 * Background refresh: 10,000 connections inserted through the store (refresh tokens from the simulator's
 * self-authorization, sealed with `sealToken`), all recently used and all with an expired access token, as
 * after downtime. The BackgroundRefresher (concurrency 16) runs rounds back to back until none is left to do,
 * once per rate limit, each on a fresh database. Measured: wall time, calls/s achieved, token-endpoint calls
 * (the simulator's counters; should be exactly 10,000), and that every connection ends up fresh. The simulator
 * runs in its own process, so its work does not share an event loop with the refresher.
 *
 * Warm-cache memory: a new runtime in a fresh process (warm-cache-worker.ts) on the refreshed database (empty
 * token cache) hands out all 10,000 tokens once (from the store: read, decrypt, cache; no token-endpoint call);
 * heap after forced GC before and after, divided by 10,000. That is what a process serving 10,000 connections keeps in memory for them: the cached
 * token and the per-connection usage timestamp.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { DEFAULT_REFRESH_MARGIN_MS } from '../../src/core/tokens/manager.ts'
import { BackgroundRefresher } from '../../src/core/tokens/refresher.ts'
import type { Runtime } from '../../src/runtime.ts'
import { MAX_LIST_LIMIT } from '../../src/store/index.ts'
import {
  benchEnv,
  insertConnections,
  newEncryptionKey,
  openBenchRuntime,
  sellingPartnerId,
  tempDir,
  withCleanup,
} from '../lib/harness.ts'
import { RemoteSimulator } from '../lib/remote-simulator.ts'
import { round } from '../lib/stats.ts'
import type { WarmCacheReply, WarmCacheRequest } from './warm-cache-worker.ts'

const WARM_CACHE_WORKER = fileURLToPath(new URL('./warm-cache-worker.ts', import.meta.url))
const CONNECTIONS = 10_000
const RATES = [500, 2000]
const CONCURRENCY = 16
/** The refresher's default lookahead: warm connections are refreshed when less than margin + this is left. */
const LOOKAHEAD_MS = 10 * 60_000
/** Bound on one refresher run (10,000 at 500/s needs 20 s). */
const REFRESH_TIME_LIMIT_MS = 45_000

export interface RefresherRun {
  readonly ratePerSecond: number
  readonly concurrency: number
  readonly connections: number
  readonly insertSeconds: number
  readonly wallSeconds: number
  readonly callsPerSecond: number
  readonly tokenEndpointCalls: number
  readonly rounds: number
  readonly refreshed: number
  readonly failed: number
  readonly throttled: boolean
  /** Connections whose access token stays valid beyond margin + lookahead afterwards. */
  readonly freshAfter: number
  /** The bound on the run; when it is reached, the remaining connections are left stale. */
  readonly timeLimitSeconds: number
  readonly finishedInTime: boolean
}

export interface WarmCacheMemory {
  readonly connections: number
  readonly heapDeltaBytes: number
  readonly bytesPerConnection: number
  readonly rssBeforeMiB: number
  readonly rssAfterMiB: number
  /** Filling the cold cache from the store: sequential getAccessToken over all connections. */
  readonly fillSeconds: number
  readonly tokenEndpointCallsDuringFill: number
  /**
   * Token-endpoint calls made to refresh, on demand, connections the last refresher run left stale (when it hit
   * its time limit), so the memory measurement finds every token fresh in the store.
   */
  readonly topUpCalls: number
}

export interface ManyConnectionsResult {
  readonly refresher: readonly RefresherRun[]
  readonly memory: WarmCacheMemory
}

async function countFresh(runtime: Runtime): Promise<number> {
  const threshold = runtime.deps.now() + DEFAULT_REFRESH_MARGIN_MS + LOOKAHEAD_MS
  let fresh = 0
  let after: string | undefined
  for (;;) {
    const page = await runtime.store.listConnections({ limit: MAX_LIST_LIMIT, ...(after ? { after } : {}) })
    for (const row of page) {
      if (row.accessTokenExpiresAt !== null && row.accessTokenExpiresAt > threshold) fresh++
    }
    const last = page.at(-1)
    if (!last || page.length < MAX_LIST_LIMIT) return fresh
    after = last.id
  }
}

async function refresherRun(
  sim: RemoteSimulator,
  dbPath: string,
  rate: number,
  seeds: { sellingPartnerId: string; refreshToken: string }[],
): Promise<{ run: RefresherRun; ids: string[]; env: Record<string, string> }> {
  const env = benchEnv(sim.target, dbPath, newEncryptionKey())
  const runtime = await openBenchRuntime(env)
  try {
    const now = runtime.deps.now()
    const insertStart = performance.now()
    const ids = await insertConnections(
      runtime,
      seeds.map((s, i) => ({
        ...s,
        accessToken: { token: `Atza|expired-${i}`, expiresAt: now - 60_000 },
        lastUsedAt: now - 60_000,
      })),
    )
    const insertSeconds = (performance.now() - insertStart) / 1000
    const refresher = new BackgroundRefresher(
      {
        store: runtime.store,
        tokens: runtime.tokens,
        events: runtime.events,
        concurrency: CONCURRENCY,
        ratePerSecond: rate,
        lookaheadMs: LOOKAHEAD_MS,
      },
      runtime.deps,
    )
    await sim.resetCounters()
    const totals = { rounds: 0, refreshed: 0, failed: 0, throttled: false }
    const start = performance.now()
    let end = start
    while (performance.now() - start < REFRESH_TIME_LIMIT_MS) {
      const round = await refresher.runOnce()
      const handled = round.refreshed + round.failed + round.needsReauthorization
      if (handled === 0) break
      end = performance.now()
      totals.rounds++
      totals.refreshed += round.refreshed
      totals.failed += round.failed + round.needsReauthorization
      totals.throttled ||= round.throttled
    }
    const wallSeconds = (end - start) / 1000
    const calls = (await sim.counters()).byGrant.refresh_token
    const freshAfter = await countFresh(runtime)
    return {
      ids,
      env,
      run: {
        ratePerSecond: rate,
        concurrency: CONCURRENCY,
        connections: ids.length,
        insertSeconds: round(insertSeconds, 2),
        wallSeconds: round(wallSeconds, 2),
        callsPerSecond: Math.round(calls / wallSeconds),
        tokenEndpointCalls: calls,
        ...totals,
        freshAfter,
        timeLimitSeconds: REFRESH_TIME_LIMIT_MS / 1000,
        finishedInTime: freshAfter === ids.length,
      },
    }
  } finally {
    await runtime.close()
  }
}

/** Refreshes on demand (16 at a time) whatever the refresher left stale; returns the token-endpoint calls. */
async function topUp(
  sim: RemoteSimulator,
  env: Record<string, string>,
  ids: readonly string[],
): Promise<number> {
  await sim.resetCounters()
  const runtime = await openBenchRuntime(env, false)
  try {
    let next = 0
    const worker = async () => {
      for (let i = next++; i < ids.length; i = next++) await runtime.tokens.getAccessToken(ids[i] ?? '')
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  } finally {
    await runtime.close()
  }
  return (await sim.counters()).total
}

/** Runs warm-cache-worker.ts in a fresh process and turns its readings into the result. */
async function warmCacheMemory(
  sim: RemoteSimulator,
  env: Record<string, string>,
  ids: string[],
): Promise<WarmCacheMemory> {
  const topUpCalls = await topUp(sim, env, ids)
  await sim.resetCounters()
  const child = fork(WARM_CACHE_WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  try {
    const reply = await new Promise<WarmCacheReply>((resolve, reject) => {
      child.once('message', (message: WarmCacheReply) => resolve(message))
      child.once('exit', (code, signal) => reject(new Error(`warm-cache worker exited (${signal ?? code})`)))
      child.send({ env, ids } satisfies WarmCacheRequest)
    })
    const delta = reply.heapAfterBytes - reply.heapBeforeBytes
    return {
      connections: ids.length,
      heapDeltaBytes: delta,
      bytesPerConnection: Math.round(delta / ids.length),
      rssBeforeMiB: reply.rssBeforeMiB,
      rssAfterMiB: reply.rssAfterMiB,
      fillSeconds: reply.fillSeconds,
      tokenEndpointCallsDuringFill: (await sim.counters()).total,
      topUpCalls,
    }
  } finally {
    clearTimeout(timer)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

export async function run(): Promise<ManyConnectionsResult> {
  return withCleanup(async (defer) => {
    const dir = tempDir('many')
    defer(() => dir.dispose())
    const sim = await RemoteSimulator.start()
    defer(() => sim.close())
    const spids = Array.from({ length: CONNECTIONS }, (_, i) => sellingPartnerId(i + 1))
    const refreshTokens: string[] = []
    for (let i = 0; i < spids.length; i += 2_000) {
      refreshTokens.push(...(await sim.selfAuthorize(spids.slice(i, i + 2_000))))
    }
    const seeds = spids.map((sp, i) => ({ sellingPartnerId: sp, refreshToken: refreshTokens[i] ?? '' }))

    const runs: RefresherRun[] = []
    let last: { ids: string[]; env: Record<string, string> } | undefined
    for (const rate of RATES) {
      const { run, ids, env } = await refresherRun(sim, `${dir.path}/rate-${rate}.db`, rate, seeds)
      runs.push(run)
      last = { ids, env }
    }
    if (!last) throw new Error('no refresher run')
    const memory = await warmCacheMemory(sim, last.env, last.ids)
    return { refresher: runs, memory }
  })
}
