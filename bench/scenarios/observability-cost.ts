/**
 * 8. The per-request cost of logging and metrics on the cached token path: `POST
 * /v1/connections/:id/access-token` answered by two sp-connect instances on one SQLite file, identical but for
 * logging + metrics (`on`: pino at `info`, one JSON line per request, output discarded, plus prom-client
 * metrics; `off`: a silent logger and no metrics), each in its own process (observability-cost-worker.ts),
 * driven by autocannon in this process. Rounds alternate between the two so drift on the machine hits both
 * alike. Every connection has a valid stored access token: no token-endpoint call is made.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { pino } from 'pino'
import { silentLogger } from '../../src/core/deps.ts'
import { requestContextLogger, runInRequestContext } from '../../src/core/request-context.ts'
import { createLogger } from '../../src/logger.ts'
import { PrometheusMetrics } from '../../src/server/metrics.ts'
import { generateDevApp } from '../../src/simulator/index.ts'
import {
  benchEnv,
  insertConnections,
  newEncryptionKey,
  openBenchRuntime,
  sellingPartnerId,
  tempDir,
  withCleanup,
} from '../lib/harness.ts'
import { processCpuSeconds } from '../lib/serve-process.ts'
import { median, round } from '../lib/stats.ts'
import type { CostWorkerReply, CostWorkerRequest } from './observability-cost-worker.ts'

const WORKER = fileURLToPath(new URL('./observability-cost-worker.ts', import.meta.url))
const CONNECTIONS = 100
const HTTP_CONNECTIONS = 32
const DURATION_SECONDS = 6
const WARMUP_SECONDS = 2
const ROUNDS = 5

export type CostMode = 'on' | 'off'

export interface CostRound {
  readonly round: number
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly non2xx: number
  readonly errors: number
  /** CPU-seconds of the instance per 1,000 requests. */
  readonly serverCpuMsPerRequest: number
}

/** In-process cost of the pieces, per call (µs), timed in this process before the HTTP rounds. */
export interface MicroCosts {
  /** One `request` log line through the request-id wrapper into pino (redaction on, output to /dev/null). */
  readonly logLineMicros: number
  /** The same call with the silent logger (what `off` pays for the wrapper). */
  readonly silentLineMicros: number
  /** One counter increment through PrometheusMetrics. */
  readonly metricMicros: number
  /** One scrape of /metrics' text (registry with default process metrics), in ms: paid per scrape, not per request. */
  readonly scrapeRenderMs: number
}

export interface ObservabilityCostResult {
  readonly micro?: MicroCosts
  readonly modes: Readonly<
    Record<CostMode, { readonly rounds: readonly CostRound[]; readonly medianRps: number }>
  >
  /** (off − on) / off, from the medians. */
  readonly overheadShare: number
  /** Extra server CPU per request with logging + metrics, in microseconds (medians). */
  readonly extraCpuMicrosPerRequest: number
  readonly settings: {
    readonly connections: number
    readonly httpConnections: number
    readonly durationSeconds: number
    readonly warmupSeconds: number
    readonly rounds: number
  }
}

function startWorker(request: CostWorkerRequest): Promise<{ url: string; pid: number; stop: () => void }> {
  // stdout discarded, as `serve`'s JSON lines would go to a collector.
  const child = fork(WORKER, [], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: process.execArgv.filter((a) => a !== '--expose-gc'),
  })
  return new Promise((resolve, reject) => {
    child.once('message', (reply: CostWorkerReply) => {
      if (reply.type === 'ready') resolve({ url: reply.url, pid: child.pid ?? -1, stop: () => child.kill() })
      else reject(new Error(reply.message))
    })
    child.once('exit', (code) => reject(new Error(`worker exited (${code})`)))
    child.send(request)
  })
}

async function microCosts(): Promise<MicroCosts> {
  const CALLS = 200_000
  const perCall = (fn: () => void): number => {
    for (let i = 0; i < CALLS / 10; i++) fn()
    const started = performance.now()
    for (let i = 0; i < CALLS; i++) fn()
    return round(((performance.now() - started) * 1000) / CALLS, 2)
  }
  const line = () => ({ method: 'POST', path: '/v1/connections/:id/access-token', status: 200, ms: 1 })
  const logged = requestContextLogger(
    createLogger(
      'info',
      pino.destination({ dest: '/dev/null', sync: false }) as unknown as NodeJS.WritableStream,
    ),
  )
  const silent = requestContextLogger(silentLogger)
  const context = { requestId: 'f1b0c7d2-1111-4a4a-9b9b-123456789abc' }
  const metrics = new PrometheusMetrics()
  const median3 = (fn: () => number) => median([fn(), fn(), fn()])
  const scrapeStart = performance.now()
  for (let i = 0; i < 20; i++) await metrics.registry.metrics()
  const scrapeRenderMs = round((performance.now() - scrapeStart) / 20, 2)
  return {
    logLineMicros: median3(() =>
      perCall(() => runInRequestContext(context, () => logged.info(line(), 'request'))),
    ),
    silentLineMicros: median3(() =>
      perCall(() => runInRequestContext(context, () => silent.info(line(), 'request'))),
    ),
    metricMicros: median3(() => perCall(() => metrics.tokenRequest('cached'))),
    scrapeRenderMs,
  }
}

export async function run(): Promise<ObservabilityCostResult> {
  return withCleanup(async (defer) => {
    const dir = tempDir('observability')
    defer(() => dir.dispose())
    // Credentials in Amazon's shapes; nothing listens at the token URL, and nothing calls it.
    const app = generateDevApp({
      redirectUri: 'http://127.0.0.1:1/callback',
      loginUri: 'http://127.0.0.1:1/login',
    })
    const target = {
      tokenUrl: 'http://127.0.0.1:1/auth/o2/token',
      simulatorUrl: 'http://127.0.0.1:1',
      appId: app.appId,
      clientId: app.clientId,
      clientSecret: app.clientSecrets[0]?.secret ?? '',
    }
    const env = benchEnv(target, `${dir.path}/sp-connect.db`, newEncryptionKey())
    const apiKey = (env['SP_CONNECT_API_KEYS'] ?? '').split(':')[1] ?? ''
    const runtime = await openBenchRuntime(env)
    const expiresAt = Date.now() + 55 * 60_000
    const ids = await insertConnections(
      runtime,
      Array.from({ length: CONNECTIONS }, (_, i) => ({
        sellingPartnerId: sellingPartnerId(i + 1),
        refreshToken: `Atzr|bench-${i}`,
        accessToken: { token: `Atza|bench-${i}`, expiresAt },
      })),
    )
    await runtime.close()

    const micro = await microCosts()
    const workers = {
      on: await startWorker({ mode: 'on', env }),
      off: await startWorker({ mode: 'off', env }),
    }
    defer(() => workers.on.stop())
    defer(() => workers.off.stop())
    const requests: autocannon.Request[] = ids.map((id) => ({
      method: 'POST',
      path: `/v1/connections/${id}/access-token`,
    }))
    const fire = (url: string, seconds: number) =>
      autocannon({
        url,
        connections: HTTP_CONNECTIONS,
        pipelining: 1,
        duration: seconds,
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}` },
        requests,
      })
    for (const mode of ['on', 'off'] as const) await fire(workers[mode].url, WARMUP_SECONDS)
    const rounds: Record<CostMode, CostRound[]> = { on: [], off: [] }
    for (let r = 1; r <= ROUNDS; r++) {
      // Alternate which goes first, so neither always runs on a machine just warmed by the other.
      const order: CostMode[] = r % 2 === 1 ? ['off', 'on'] : ['on', 'off']
      for (const mode of order) {
        const cpuBefore = processCpuSeconds(workers[mode].pid)
        const result = await fire(workers[mode].url, DURATION_SECONDS)
        const cpu = processCpuSeconds(workers[mode].pid) - cpuBefore
        rounds[mode].push({
          round: r,
          requestsPerSecond: Math.round(result.requests.total / result.duration),
          p50Ms: result.latency.p50,
          p99Ms: result.latency.p99,
          non2xx: result.non2xx,
          errors: result.errors,
          serverCpuMsPerRequest: round((cpu * 1000) / Math.max(1, result.requests.total), 4),
        })
      }
    }
    const summary = (mode: CostMode) => ({
      rounds: rounds[mode],
      medianRps: median(rounds[mode].map((r) => r.requestsPerSecond)),
    })
    const on = summary('on')
    const off = summary('off')
    const cpu = (mode: CostMode) => median(rounds[mode].map((r) => r.serverCpuMsPerRequest))
    return {
      micro,
      modes: { on, off },
      overheadShare: round((off.medianRps - on.medianRps) / off.medianRps, 3),
      extraCpuMicrosPerRequest: round((cpu('on') - cpu('off')) * 1000, 1),
      settings: {
        connections: CONNECTIONS,
        httpConnections: HTTP_CONNECTIONS,
        durationSeconds: DURATION_SECONDS,
        warmupSeconds: WARMUP_SECONDS,
        rounds: ROUNDS,
      },
    }
  })
}
