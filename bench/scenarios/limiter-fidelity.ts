/**
 * Limiter fidelity (issue 10): 300 concurrent calls for ONE seller on one operation whose plan is rate 5, burst
 * 10, spread over 3 sp-connect instances (separate processes, limiter-fidelity-worker.ts) on one PostgreSQL
 * database, all through `SpApiClient.call`, against one simulator process that enforces the plan per (app,
 * seller, operation) as SP-API does. Counted: the simulator's 429s, what every caller got, and the wall time
 * beside the ideal (300 − 10) / 5 = 58 s (the burst goes at once, then one call per interval).
 *
 * The operation is the Sellers API's getMarketplaceParticipations, which the simulator implements and which needs
 * no Restricted Data Token (an RDT would add its own plan to the measure). Its published plan is 0.016/s, burst
 * 15, and no operation the simulator implements is published at 5/10, so the plan is set on both sides: at the
 * simulator with `POST /_control/usage-plans`, and in sp-connect by handing the limiter that plan for the key
 * (the worker's PinnedPlanLimiter; sp-connect has no per-seller plan setting, and learning it from
 * `x-amzn-RateLimit-Limit` alone cannot work here: see the report section).
 *
 * The seller's access token is fetched once before the run, so the calls measure the limiter and not a refresh.
 * Every call has a deadline of 120 s, beyond the ~58 s the last one needs.
 */
import { fileURLToPath } from 'node:url'
import { findOperationByName, type RatePlan } from '../../src/core/spapi/operations.ts'
import { ForkedWorker } from '../lib/forked-worker.ts'
import {
  benchEnv,
  insertConnections,
  newEncryptionKey,
  openBenchRuntime,
  sellingPartnerId,
  withCleanup,
} from '../lib/harness.ts'
import { benchPostgresUrl, createBenchDatabase, serverInfo, where } from '../lib/postgres.ts'
import { RemoteSimulator } from '../lib/remote-simulator.ts'
import { epochMs, round } from '../lib/stats.ts'
import type { FidelityWorkerReply, FidelityWorkerRequest } from './limiter-fidelity-worker.ts'

const WORKER = fileURLToPath(new URL('./limiter-fidelity-worker.ts', import.meta.url))
const OPERATION = 'getMarketplaceParticipations'
const PATH = '/sellers/v1/marketplaceParticipations'
const PLAN: RatePlan = { rate: 5, burst: 10 }
const INSTANCES = 3
const CALLS = 300
const CALL_TIMEOUT_MS = 120_000
const POOL_SIZE = 10

export interface LimiterFidelityResult {
  readonly settings: {
    readonly operation: string
    readonly plan: RatePlan
    readonly publishedPlan: RatePlan
    readonly instances: number
    readonly calls: number
    readonly callTimeoutMs: number
    readonly poolSizePerInstance: number
    readonly postgres: string
    readonly postgresVersion: string
  }
  /** 429s the simulator served for the operation during the run. */
  readonly simulator429s: number
  /** What the callers got: HTTP status (as a string) or SpConnectError code, with counts. */
  readonly outcomes: Readonly<Record<string, number>>
  readonly outcomesPerInstance: readonly Readonly<Record<string, number>>[]
  /** From the common start to the last answer. */
  readonly wallSeconds: number
  /** (calls − burst) / rate. */
  readonly idealSeconds: number
  /** When the burst's last call was answered, from the start. */
  readonly burstAnsweredSeconds: number
  /** Calls after the burst per second, between the burst's last answer and the last answer. */
  readonly steadyCallsPerSecond: number
  /** The most answers in any one-second window (the plan allows at most burst + rate in one that starts full). */
  readonly maxAnswersInOneSecond: number
}

type Worker = ForkedWorker<FidelityWorkerRequest, FidelityWorkerReply>

function tally(outcomes: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1
  return counts
}

function maxInWindow(sortedTimes: readonly number[], windowMs: number): number {
  let best = 0
  let start = 0
  for (let end = 0; end < sortedTimes.length; end++) {
    while ((sortedTimes[end] ?? 0) - (sortedTimes[start] ?? 0) >= windowMs) start++
    best = Math.max(best, end - start + 1)
  }
  return best
}

async function control(sim: RemoteSimulator, path: string, body?: object): Promise<unknown> {
  const response = await fetch(`${sim.url}/_control/${path}`, {
    method: body ? 'POST' : 'GET',
    ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  })
  if (!response.ok) throw new Error(`simulator /_control/${path} answered ${response.status}`)
  return response.json()
}

async function throttledCount(sim: RemoteSimulator): Promise<number> {
  const counters = (await control(sim, 'counters')) as {
    spapi?: { throttledByOperation?: Record<string, number> }
  }
  const byOperation = counters.spapi?.throttledByOperation ?? {}
  return Object.values(byOperation).reduce((sum, n) => sum + n, 0)
}

export async function run(): Promise<LimiterFidelityResult> {
  return withCleanup(async (defer) => {
    const sim = await RemoteSimulator.start()
    defer(() => sim.close())
    const database = await createBenchDatabase()
    defer(() => database.drop())
    const info = await serverInfo(database.url)
    const env = {
      ...benchEnv(sim.target, database.url, newEncryptionKey()),
      SP_CONNECT_DB_POOL_SIZE: String(POOL_SIZE),
    }
    const runtime = await openBenchRuntime(env)
    defer(() => runtime.close())
    const spid = sellingPartnerId(1)
    const [refreshToken] = await sim.selfAuthorize([spid])
    const [connectionId] = await insertConnections(runtime, [
      { sellingPartnerId: spid, refreshToken: refreshToken ?? '' },
    ])
    if (!connectionId) throw new Error('no connection')
    await runtime.tokens.getAccessToken(connectionId)
    const published = findOperationByName(OPERATION)
    if (!published) throw new Error(`${OPERATION} is not in the operations table`)
    await control(sim, 'usage-plans', { operation: OPERATION, ...PLAN })

    const workers: Worker[] = Array.from({ length: INSTANCES }, () => new ForkedWorker(WORKER))
    for (const w of workers) defer(() => w.close({ op: 'close' }))
    await Promise.all(workers.map((w) => w.request({ op: 'init', env, plan: PLAN }, 60_000)))

    await sim.resetCounters()
    const before = await throttledCount(sim)
    const startAt = epochMs() + 500
    const perInstance = Math.ceil(CALLS / INSTANCES)
    const replies = await Promise.all(
      workers.map((w, i) =>
        w.request(
          {
            op: 'go',
            connectionId,
            path: PATH,
            startAt,
            calls: Math.min(perInstance, CALLS - i * perInstance),
            timeoutMs: CALL_TIMEOUT_MS,
          },
          CALL_TIMEOUT_MS + 30_000,
        ),
      ),
    )
    const done = replies.flatMap((r) => (r.type === 'done' ? [r] : []))
    const simulator429s = (await throttledCount(sim)) - before
    const answered = done.flatMap((r) => r.answeredAt.map((t) => t - startAt)).sort((a, b) => a - b)
    const last = answered[answered.length - 1] ?? 0
    const burstAnswered = answered[PLAN.burst - 1] ?? 0
    return {
      settings: {
        operation: OPERATION,
        plan: PLAN,
        publishedPlan: { rate: published.rate, burst: published.burst },
        instances: INSTANCES,
        calls: CALLS,
        callTimeoutMs: CALL_TIMEOUT_MS,
        poolSizePerInstance: POOL_SIZE,
        postgres: where(benchPostgresUrl()),
        postgresVersion: info.version,
      },
      simulator429s,
      outcomes: tally(done.flatMap((r) => r.outcomes)),
      outcomesPerInstance: done.map((r) => tally(r.outcomes)),
      wallSeconds: round(last / 1000, 2),
      idealSeconds: (CALLS - PLAN.burst) / PLAN.rate,
      burstAnsweredSeconds: round(burstAnswered / 1000, 3),
      steadyCallsPerSecond: round((CALLS - PLAN.burst) / Math.max(0.001, (last - burstAnswered) / 1000), 3),
      maxAnswersInOneSecond: maxInWindow(answered, 1000),
    }
  })
}
