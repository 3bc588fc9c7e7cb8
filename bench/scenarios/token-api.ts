/**
 * 6. Token API over HTTP on PostgreSQL: `POST /v1/connections/:id/access-token` answered by 1 and by 3 real
 * `sp-connect serve` processes, beside a bare `node:http` server answering a fixed JSON body of the same size
 * (the ceiling of Node's HTTP stack on this machine), all on loopback, driven by autocannon in this process.
 *
 * A fresh database (`sp_connect_bench_<random>`, dropped afterwards) with CONNECTIONS connections (refresh tokens
 * from the simulator, which runs in its own process). Every instance runs as in production (`serve`, its
 * environment only: PostgreSQL pool of 10, the background refresher on, log level `info` with its output
 * discarded). Before timing, each instance is asked once for every connection's token (the first instance
 * refreshes it at the simulator, the others read it from the database), so the timed requests measure the
 * cached path through the HTTP stack: API-key check, routing, the token manager's cache (with its status
 * re-check against the database every 5 s per connection), JSON answer with the security headers.
 *
 * autocannon: CONNECTIONS_HTTP keep-alive connections, no pipelining, each connection cycling through the
 * connections' paths; for 3 instances one autocannon run spreads its connections evenly over the three URLs
 * (no balancer in between: on 2 cores a proxy would take CPU from the instances), so the latency histogram is
 * one. Each target gets an untimed warm-up, then ROUNDS timed rounds of DURATION seconds, interleaved with the
 * other targets' rounds so drift on the machine hits all alike.
 */
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { machineBusySeconds } from '../lib/cpu.ts'
import { ForkedWorker } from '../lib/forked-worker.ts'
import {
  benchEnv,
  newEncryptionKey,
  openBenchRuntime,
  sellingPartnerId,
  withCleanup,
} from '../lib/harness.ts'
import { bulkInsertConnections, createBenchDatabase, serverInfo, where } from '../lib/postgres.ts'
import { RemoteSimulator } from '../lib/remote-simulator.ts'
import { processCpuSeconds, type ServeProcess, startServe } from '../lib/serve-process.ts'
import { round } from '../lib/stats.ts'
import type { BareServerReply, BareServerRequest } from './bare-http-server.ts'

const BARE_SERVER = fileURLToPath(new URL('./bare-http-server.ts', import.meta.url))
const CONNECTIONS = 300
/** autocannon's concurrent connections: a multiple of 3, so three instances get 16 each. */
const CONNECTIONS_HTTP = 48
const DURATION_SECONDS = 10
const WARMUP_SECONDS = 2
const ROUNDS = 3

export type TargetName = 'bare node:http' | 'sp-connect × 1' | 'sp-connect × 3'

export interface TokenApiRound {
  readonly round: number
  readonly requests: number
  readonly requestsPerSecond: number
  readonly latencyMs: {
    readonly p50: number
    readonly p90: number
    readonly p99: number
    readonly max: number
    readonly mean: number
  }
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
  readonly durationSeconds: number
  /** CPU-seconds of the server process(es) during the round. */
  readonly serverCpuSeconds: number
  /** CPU-seconds of this process, i.e. autocannon. */
  readonly loadGeneratorCpuSeconds: number
  /** Busy CPU of the whole machine during the round (servers, autocannon, PostgreSQL, the rest). */
  readonly machineCpuShare: number
}

export interface TokenApiTarget {
  readonly name: TargetName
  readonly processes: number
  readonly rounds: readonly TokenApiRound[]
}

export interface TokenApiResult {
  readonly targets: readonly TokenApiTarget[]
  readonly server: Awaited<ReturnType<typeof serverInfo>> & { readonly where: string }
  readonly settings: {
    readonly connections: number
    readonly httpConnections: number
    readonly durationSeconds: number
    readonly warmupSeconds: number
    readonly rounds: number
    readonly responseBytes: number
    readonly cpus: number
    readonly autocannon: string
  }
  /** Token-endpoint calls while the instances' caches were filled (one per connection). */
  readonly warmupTokenEndpointCalls: number
  /** Token-endpoint calls during all the timed rounds (the cached path makes none). */
  readonly timedTokenEndpointCalls: number
}

interface Target {
  readonly name: TargetName
  readonly urls: readonly string[]
  readonly pids: readonly number[]
}

function cpuOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0)
}

async function fire(
  target: Target,
  requests: autocannon.Request[],
  headers: Record<string, string>,
  seconds: number,
): Promise<autocannon.Result> {
  return autocannon({
    // autocannon takes several URLs and spreads its connections over them in turn (its types say one string).
    url: (target.urls.length === 1 ? target.urls[0] : target.urls) as string,
    connections: CONNECTIONS_HTTP,
    pipelining: 1,
    duration: seconds,
    method: 'POST',
    headers,
    requests,
  })
}

export async function run(): Promise<TokenApiResult> {
  return withCleanup(async (defer) => {
    const sim = await RemoteSimulator.start()
    defer(() => sim.close())
    const database = await createBenchDatabase()
    defer(() => database.drop())
    const server = { ...(await serverInfo(database.url)), where: where(database.url) }
    const base = benchEnv(sim.target, database.url, newEncryptionKey())
    const apiKey = (base['SP_CONNECT_API_KEYS'] ?? '').split(':')[1] ?? ''
    const env: Record<string, string> = {
      ...base,
      SP_CONNECT_REFRESHER: 'on',
      SP_CONNECT_LOG_LEVEL: 'info',
    }
    const runtime = await openBenchRuntime(env)
    defer(() => runtime.close())
    const spids = Array.from({ length: CONNECTIONS }, (_, i) => sellingPartnerId(i + 1))
    const refreshTokens = await sim.selfAuthorize(spids)
    const ids = await bulkInsertConnections(
      runtime,
      database.url,
      spids.map((sp, i) => ({ sellingPartnerId: sp, refreshToken: refreshTokens[i] ?? '' })),
    )

    const instances: ServeProcess[] = await Promise.all([startServe(env), startServe(env), startServe(env)])
    for (const instance of instances) defer(() => instance.stop())
    const headers = { authorization: `Bearer ${apiKey}` }

    // Fill every instance's cache: one request per connection and instance.
    await sim.resetCounters()
    let sample = ''
    for (const instance of instances) {
      for (const id of ids) {
        const response = await fetch(`${instance.url}/v1/connections/${id}/access-token`, {
          method: 'POST',
          headers,
        })
        const text = await response.text()
        if (response.status !== 200)
          throw new Error(`warm-up answered ${response.status}: ${text.slice(0, 200)}`)
        sample = text
      }
    }
    const warmupTokenEndpointCalls = (await sim.counters()).byGrant.refresh_token

    const bare = new ForkedWorker<BareServerRequest, BareServerReply>(BARE_SERVER)
    defer(() => bare.close({ op: 'close' }))
    const ready = await bare.request({ op: 'start', body: sample }, 15_000)
    if (ready.type !== 'ready') throw new Error('bare server did not start')

    const first = instances[0]
    if (!first) throw new Error('no instance')
    const targets: Target[] = [
      { name: 'bare node:http', urls: [ready.url], pids: [bare.pid] },
      { name: 'sp-connect × 1', urls: [first.url], pids: [first.pid] },
      { name: 'sp-connect × 3', urls: instances.map((i) => i.url), pids: instances.map((i) => i.pid) },
    ]
    const requests: autocannon.Request[] = ids.map((id) => ({
      method: 'POST',
      path: `/v1/connections/${id}/access-token`,
    }))

    for (const target of targets) await fire(target, requests, headers, WARMUP_SECONDS)
    await sim.resetCounters()
    const rounds = new Map<TargetName, TokenApiRound[]>(targets.map((t) => [t.name, []]))
    for (let r = 1; r <= ROUNDS; r++) {
      for (const target of targets) {
        const serverBefore = cpuOf(target.pids)
        const selfBefore = process.cpuUsage()
        const busyBefore = machineBusySeconds()
        const result = await fire(target, requests, headers, DURATION_SECONDS)
        const self = process.cpuUsage(selfBefore)
        const seconds = result.duration
        rounds.get(target.name)?.push({
          round: r,
          requests: result.requests.total,
          requestsPerSecond: Math.round(result.requests.total / seconds),
          latencyMs: {
            p50: result.latency.p50,
            p90: result.latency.p90,
            p99: result.latency.p99,
            max: result.latency.max,
            mean: round(result.latency.average, 2),
          },
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          durationSeconds: round(seconds, 2),
          serverCpuSeconds: round(cpuOf(target.pids) - serverBefore, 2),
          loadGeneratorCpuSeconds: round((self.user + self.system) / 1e6, 2),
          machineCpuShare: round((machineBusySeconds() - busyBefore) / (seconds * availableParallelism()), 2),
        })
      }
    }
    const timedTokenEndpointCalls = (await sim.counters()).byGrant.refresh_token
    const version = (createRequire(import.meta.url)('autocannon/package.json') as { version: string }).version
    return {
      targets: targets.map((t) => ({
        name: t.name,
        processes: t.pids.length,
        rounds: rounds.get(t.name) ?? [],
      })),
      server,
      settings: {
        connections: CONNECTIONS,
        httpConnections: CONNECTIONS_HTTP,
        durationSeconds: DURATION_SECONDS,
        warmupSeconds: WARMUP_SECONDS,
        rounds: ROUNDS,
        responseBytes: Buffer.byteLength(sample),
        cpus: availableParallelism(),
        autocannon: version,
      },
      warmupTokenEndpointCalls,
      timedTokenEndpointCalls,
    }
  })
}
