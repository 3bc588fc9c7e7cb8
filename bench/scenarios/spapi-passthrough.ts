/**
 * SP-API passthrough: `GET /v1/connections/:id/spapi/sellers/v1/marketplaceParticipations` through one real
 * `sp-connect serve` process (SQLite, the default store; production settings: API-key check, log line at
 * `info`, the store-backed usage-plan limiter, the token manager's cache), beside, in the same run:
 *
 * - a bare `node:http` proxy (bare-spapi-proxy.ts, own process) forwarding the same request to the same
 *   simulator with the connection's access token and nothing else: the ceiling for a passthrough;
 * - the simulator answered directly (autocannon straight at it, token in the header): what one hop costs;
 * - `amazon-sp-api` (amz-tools), unmodified, making the same calls one after the other in this process. It
 *   speaks only HTTPS to `sellingpartnerapi-na.amazon.com`, so it reaches the same simulator listener over TLS
 *   (certificate from the simulator's generated CA) through its documented `https_proxy_agent` option: a
 *   keep-alive `https.Agent` that connects to 127.0.0.1 instead of Amazon, as /etc/hosts would. It is given
 *   the same access token (`access_token`, `auto_request_tokens: false`): cached token on every side.
 *
 * The simulator runs in its own process (passthrough-simulator.ts), plain HTTP and HTTPS on one port. Its usage
 * plan for getMarketplaceParticipations (Amazon's default: 0.0167 rps, burst 15) is raised to SIM_RATE so it
 * never answers 429, and it reports that rate in `x-amzn-RateLimit-Limit`. sp-connect's limiter starts each
 * key from the published plan and adopts the reported rate from the first answer (converting the turn it owes),
 * as in production: nothing is configured on sp-connect's side. The warm-up checks that a second call per
 * connection is let through at once. Every sp-connect call still takes its turn (one SQLite upsert).
 *
 * Loads: sequential (autocannon with 1 connection; amazon-sp-api one call after another) and 64 concurrent
 * connections, each cycling through CONNECTIONS connections. Per target an untimed warm-up, then ROUNDS rounds of
 * DURATION_SECONDS, interleaved across targets. Latency percentiles come from every 2xx response's own time
 * (autocannon's `response` events, sub-millisecond), not autocannon's whole-millisecond histogram. Afterwards a
 * second `serve` process with `--cpu-prof` takes the 64-connection load for PROFILE_SECONDS; the samples taken
 * during that load (not its start-up or warm-up) are summed up by frame (the timed figures come from the
 * unprofiled process).
 */
import { Agent as HttpsAgent } from 'node:https'
import { availableParallelism } from 'node:os'
import type { TLSSocket } from 'node:tls'
import { connect as tlsConnect } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { SellingPartner } from 'amazon-sp-api'
import autocannon from 'autocannon'
import { machineBusySeconds } from '../lib/cpu.ts'
import { monotonicUs, type ProfileSummary, summariseProfileDir } from '../lib/cpu-profile.ts'
import { ForkedWorker } from '../lib/forked-worker.ts'
import {
  benchEnv,
  insertConnections,
  newEncryptionKey,
  openBenchRuntime,
  sellingPartnerId,
  tempDir,
  withCleanup,
} from '../lib/harness.ts'
import type { PassthroughSimulatorReply, PassthroughSimulatorRequest } from '../lib/passthrough-simulator.ts'
import { processCpuSeconds, startServe } from '../lib/serve-process.ts'
import { quantile, round } from '../lib/stats.ts'
import type { BareProxyReply, BareProxyRequest } from './bare-spapi-proxy.ts'

const SIMULATOR = fileURLToPath(new URL('../lib/passthrough-simulator.ts', import.meta.url))
const BARE_PROXY = fileURLToPath(new URL('./bare-spapi-proxy.ts', import.meta.url))
const CONNECTIONS = 16
const CONCURRENCY = 64
const DURATION_SECONDS = 4
const WARMUP_SECONDS = 1
const ROUNDS = 3
const PROFILE_SECONDS = 8
const OPERATION = 'getMarketplaceParticipations'
const SPAPI_PATH = '/sellers/v1/marketplaceParticipations'
const SPAPI_HOST = 'sellingpartnerapi-na.amazon.com'
/** Below 100,000: sp-connect ignores a larger `x-amzn-RateLimit-Limit` as implausible. */
const SIM_RATE = 50_000
const SIM_BURST = 1_000_000

export type PassthroughTargetName =
  | 'sp-connect'
  | 'bare node:http proxy'
  | 'simulator direct'
  | 'amazon-sp-api'
export type PassthroughLoad = 'sequential' | 'concurrent'

export interface PassthroughRound {
  readonly round: number
  readonly requests: number
  readonly requestsPerSecond: number
  readonly latencyMs: {
    readonly p50: number
    readonly p90: number
    readonly p99: number
    readonly max: number
  }
  readonly non2xx: number
  readonly errors: number
  readonly durationSeconds: number
  /** CPU-seconds of the target's server process during the round (amazon-sp-api: none of its own). */
  readonly serverCpuSeconds: number
  /** CPU-seconds of this process (autocannon, or amazon-sp-api itself). */
  readonly loadGeneratorCpuSeconds: number
  /** Busy share of all CPUs during the round (everything on the machine, other work included). */
  readonly machineCpuShare: number
}

export interface PassthroughCase {
  readonly target: PassthroughTargetName
  readonly load: PassthroughLoad
  readonly connections: number
  readonly rounds: readonly PassthroughRound[]
  /** The round with the median requests per second. */
  readonly median: PassthroughRound
}

export interface PassthroughResult {
  readonly cases: readonly PassthroughCase[]
  /** sp-connect's median req/s over the bare proxy's, per load. */
  readonly ratio: { readonly sequential: number; readonly concurrent: number }
  /** 429s the simulator served during the whole run (0: no side was throttled). */
  readonly simulatorThrottled: number
  readonly profile: ProfileSummary & { readonly requestsPerSecond: number; readonly seconds: number }
  readonly settings: {
    readonly operation: string
    readonly connections: number
    readonly concurrency: number
    readonly durationSeconds: number
    readonly warmupSeconds: number
    readonly rounds: number
    readonly responseBytes: number
    readonly store: string
    readonly simulatorPlan: { readonly rate: number; readonly burst: number }
    readonly cpus: number
    readonly autocannon: string
    readonly amazonSpApi: string
  }
}

interface Target {
  readonly name: Exclude<PassthroughTargetName, 'amazon-sp-api'>
  readonly url: string
  readonly pid: number
  readonly requests: autocannon.Request[]
  readonly headers: Record<string, string>
}

interface Measured {
  readonly requests: number
  readonly latencies: number[]
  readonly non2xx: number
  readonly errors: number
  readonly seconds: number
}

function fire(target: Target, connections: number, seconds: number): Promise<Measured> {
  const latencies: number[] = []
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.url,
        connections,
        pipelining: 1,
        duration: seconds,
        headers: target.headers,
        requests: target.requests,
      },
      (error, result) => {
        if (error) reject(error)
        else
          resolve({
            requests: result.requests.total,
            latencies,
            non2xx: result.non2xx,
            errors: result.errors,
            seconds: result.duration,
          })
      },
    )
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime)
    })
  })
}

/** The Amazon SP-API host mapped to the simulator's port, like an /etc/hosts entry; TLS checked against its CA. */
class SimulatorAgent extends HttpsAgent {
  readonly #port: number
  constructor(port: number, ca: string) {
    super({ keepAlive: true, ca })
    this.#port = port
  }
  override createConnection(options: object, callback?: (err: Error | null, socket: TLSSocket) => void) {
    const socket = tlsConnect({ ...options, host: '127.0.0.1', port: this.#port, servername: SPAPI_HOST })
    if (callback) socket.once('secureConnect', () => callback(null, socket))
    return socket
  }
}

async function amazonSpApiRun(clients: readonly SellingPartner[], seconds: number): Promise<Measured> {
  const latencies: number[] = []
  let errors = 0
  const start = performance.now()
  const end = start + seconds * 1000
  for (let i = 0; performance.now() < end; i++) {
    const client = clients[i % clients.length]
    if (!client) break
    const t0 = performance.now()
    try {
      await client.callAPI({ operation: OPERATION, endpoint: 'sellers' })
      latencies.push(performance.now() - t0)
    } catch {
      errors++
    }
  }
  return {
    requests: latencies.length + errors,
    latencies,
    non2xx: 0,
    errors,
    seconds: (performance.now() - start) / 1000,
  }
}

function toRound(
  r: number,
  m: Measured,
  serverCpuSeconds: number,
  selfCpu: NodeJS.CpuUsage,
  busy: number,
): PassthroughRound {
  const q = (p: number) => round(quantile(m.latencies, p), 3)
  return {
    round: r,
    requests: m.requests,
    requestsPerSecond: Math.round(m.latencies.length / m.seconds),
    latencyMs: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1) },
    non2xx: m.non2xx,
    errors: m.errors,
    durationSeconds: round(m.seconds, 2),
    serverCpuSeconds: round(serverCpuSeconds, 2),
    loadGeneratorCpuSeconds: round((selfCpu.user + selfCpu.system) / 1e6, 2),
    machineCpuShare: round(busy / (m.seconds * availableParallelism()), 2),
  }
}

function medianRound(rounds: readonly PassthroughRound[]): PassthroughRound {
  const sorted = [...rounds].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)
  const middle = sorted[Math.floor((sorted.length - 1) / 2)]
  if (!middle) throw new Error('no rounds')
  return middle
}

export async function run(): Promise<PassthroughResult> {
  return withCleanup(async (defer) => {
    const dir = tempDir('passthrough')
    defer(() => dir.dispose())
    const spids = Array.from({ length: CONNECTIONS }, (_, i) => sellingPartnerId(i + 1, 'AP'))
    const sim = new ForkedWorker<PassthroughSimulatorRequest, PassthroughSimulatorReply>(SIMULATOR)
    defer(() => sim.close({ op: 'close' }))
    const ready = await sim.request(
      {
        op: 'start',
        sellingPartnerIds: spids,
        plans: [{ operation: OPERATION, rate: SIM_RATE, burst: SIM_BURST }],
      },
      30_000,
    )
    if (ready.type !== 'ready') throw new Error('simulator did not start')
    const simPort = Number(new URL(ready.url).port)
    const env: Record<string, string> = {
      ...benchEnv(
        {
          tokenUrl: `${ready.url}/auth/o2/token`,
          simulatorUrl: ready.url,
          appId: ready.appId,
          clientId: ready.clientId,
          clientSecret: ready.clientSecret,
        },
        `${dir.path}/sp-connect.db`,
        newEncryptionKey(),
      ),
      SP_CONNECT_REFRESHER: 'on',
      SP_CONNECT_LOG_LEVEL: 'info',
    }
    const apiKey = (env['SP_CONNECT_API_KEYS'] ?? '').split(':')[1] ?? ''
    const runtime = await openBenchRuntime(env)
    defer(() => runtime.close())
    const ids = await insertConnections(
      runtime,
      spids.map((sp, i) => ({ sellingPartnerId: sp, refreshToken: ready.refreshTokens[i] ?? '' })),
    )

    const instance = await startServe(env)
    defer(() => instance.stop())
    const auth = { authorization: `Bearer ${apiKey}` }
    const tokens: Record<string, string> = {}
    let sample = ''
    for (const id of ids) {
      const tokenAnswer = await fetch(`${instance.url}/v1/connections/${id}/access-token`, {
        method: 'POST',
        headers: auth,
      })
      if (tokenAnswer.status !== 200)
        throw new Error(
          `access-token answered ${tokenAnswer.status}: ${(await tokenAnswer.text()).slice(0, 300)}`,
        )
      tokens[id] = ((await tokenAnswer.json()) as { access_token: string }).access_token
      // The first call brings the simulator's rate; the second must then get its turn at once, not a 429.
      for (let i = 0; i < 2; i++) {
        const call = await fetch(`${instance.url}/v1/connections/${id}/spapi${SPAPI_PATH}`, { headers: auth })
        sample = await call.text()
        if (call.status !== 200)
          throw new Error(`passthrough answered ${call.status}: ${sample.slice(0, 200)}`)
      }
    }

    const bare = new ForkedWorker<BareProxyRequest, BareProxyReply>(BARE_PROXY)
    defer(() => bare.close({ op: 'close' }))
    const bareReady = await bare.request(
      { op: 'start', upstream: `${ready.url}/${SPAPI_HOST}`, tokens },
      15_000,
    )
    if (bareReady.type !== 'ready') throw new Error('bare proxy did not start')

    const viaDoor = ids.map((id) => ({
      method: 'GET' as const,
      path: `/v1/connections/${id}/spapi${SPAPI_PATH}`,
    }))
    const targets: Target[] = [
      { name: 'sp-connect', url: instance.url, pid: instance.pid, requests: viaDoor, headers: auth },
      { name: 'bare node:http proxy', url: bareReady.url, pid: bare.pid, requests: viaDoor, headers: {} },
      {
        name: 'simulator direct',
        url: ready.url,
        pid: sim.pid,
        requests: ids.map((id) => ({
          method: 'GET' as const,
          path: `/${SPAPI_HOST}${SPAPI_PATH}`,
          headers: { 'x-amz-access-token': tokens[id] ?? '', accept: 'application/json' },
        })),
        headers: {},
      },
    ]

    const agent = new SimulatorAgent(simPort, ready.caPem)
    defer(() => agent.destroy())
    const clients = ids.map(
      (id) =>
        new SellingPartner({
          region: 'na',
          refresh_token: 'unused: the access token is given',
          access_token: tokens[id] ?? '',
          credentials: {
            SELLING_PARTNER_APP_CLIENT_ID: ready.clientId,
            SELLING_PARTNER_APP_CLIENT_SECRET: ready.clientSecret,
          },
          options: { auto_request_tokens: false, auto_request_throttled: false, https_proxy_agent: agent },
        }),
    )
    // One call outside the loop, so a setup mistake fails the scenario with amazon-sp-api's own error.
    await clients[0]?.callAPI({ operation: OPERATION, endpoint: 'sellers' })

    for (const target of targets) {
      await fire(target, 1, WARMUP_SECONDS)
      await fire(target, CONCURRENCY, WARMUP_SECONDS)
    }
    await amazonSpApiRun(clients, WARMUP_SECONDS)

    const rounds = new Map<string, PassthroughRound[]>()
    const push = (name: PassthroughTargetName, load: PassthroughLoad, round: PassthroughRound) => {
      const key = `${name}\n${load}`
      rounds.set(key, [...(rounds.get(key) ?? []), round])
    }
    for (let r = 1; r <= ROUNDS; r++) {
      for (const load of ['sequential', 'concurrent'] as const) {
        for (const target of targets) {
          const serverBefore = processCpuSeconds(target.pid)
          const selfBefore = process.cpuUsage()
          const busyBefore = machineBusySeconds()
          const m = await fire(target, load === 'sequential' ? 1 : CONCURRENCY, DURATION_SECONDS)
          push(
            target.name,
            load,
            toRound(
              r,
              m,
              processCpuSeconds(target.pid) - serverBefore,
              process.cpuUsage(selfBefore),
              machineBusySeconds() - busyBefore,
            ),
          )
        }
        if (load === 'sequential') {
          const selfBefore = process.cpuUsage()
          const busyBefore = machineBusySeconds()
          const m = await amazonSpApiRun(clients, DURATION_SECONDS)
          push(
            'amazon-sp-api',
            'sequential',
            toRound(r, m, 0, process.cpuUsage(selfBefore), machineBusySeconds() - busyBefore),
          )
        }
      }
    }
    const throttled = await sim.request({ op: 'counters' }, 10_000)
    const simulatorThrottled =
      throttled.type === 'counters'
        ? Object.values(throttled.throttledByOperation).reduce((a, b) => a + b, 0)
        : Number.NaN

    const cases: PassthroughCase[] = [...rounds].map(([key, list]) => {
      const [target, load] = key.split('\n') as [PassthroughTargetName, PassthroughLoad]
      return {
        target,
        load,
        connections: load === 'sequential' ? 1 : CONCURRENCY,
        rounds: list,
        median: medianRound(list),
      }
    })
    const rps = (target: PassthroughTargetName, load: PassthroughLoad) =>
      cases.find((c) => c.target === target && c.load === load)?.median.requestsPerSecond ?? Number.NaN
    const ratio = {
      sequential: round(rps('sp-connect', 'sequential') / rps('bare node:http proxy', 'sequential'), 2),
      concurrent: round(rps('sp-connect', 'concurrent') / rps('bare node:http proxy', 'concurrent'), 2),
    }

    // The profile: a second instance on the same database, after the timed rounds, so they ran unprofiled.
    await instance.stop()
    const profileDir = tempDir('passthrough-profile')
    defer(() => profileDir.dispose())
    const profiled = await startServe(env, [
      '--cpu-prof',
      `--cpu-prof-dir=${profileDir.path}`,
      '--cpu-prof-interval=250',
    ])
    defer(() => profiled.stop())
    const profiledTarget = { ...targets[0], url: profiled.url, pid: profiled.pid } as Target
    await fire(profiledTarget, CONCURRENCY, WARMUP_SECONDS)
    const fromUs = monotonicUs()
    const profiledRun = await fire(profiledTarget, CONCURRENCY, PROFILE_SECONDS)
    const toUs = monotonicUs()
    await profiled.stop()
    const profile = {
      ...summariseProfileDir(profileDir.path, { fromUs, toUs }),
      requestsPerSecond: Math.round(profiledRun.latencies.length / profiledRun.seconds),
      seconds: PROFILE_SECONDS,
    }

    const { createRequire } = await import('node:module')
    const require = createRequire(import.meta.url)
    const version = (name: string) => (require(`${name}/package.json`) as { version: string }).version
    return {
      cases,
      ratio,
      simulatorThrottled,
      profile,
      settings: {
        operation: `${OPERATION} (GET ${SPAPI_PATH})`,
        connections: CONNECTIONS,
        concurrency: CONCURRENCY,
        durationSeconds: DURATION_SECONDS,
        warmupSeconds: WARMUP_SECONDS,
        rounds: ROUNDS,
        responseBytes: Buffer.byteLength(sample),
        store: 'SQLite file (default), limiter store-backed',
        simulatorPlan: { rate: SIM_RATE, burst: SIM_BURST },
        cpus: availableParallelism(),
        autocannon: version('autocannon'),
        amazonSpApi: version('amazon-sp-api'),
      },
    }
  })
}
