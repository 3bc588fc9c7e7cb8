/**
 * 1. Cached token lookup: sequential `await tokens.getAccessToken(id)` on a warm cache, beside
 * `@sp-api-sdk/auth`'s `await auth.getAccessToken()` in the same process and run.
 *
 * Each side gets one real token from the simulator first (ours over loopback HTTP; bizon's fixed Amazon URL is
 * intercepted by nock and forwarded to the simulator's in-process app), then a warm-up, then timed rounds that
 * alternate between the two. Ours is timed for longer than its 5 s status re-check interval, so the timed
 * calls include the periodic store reads; a counting wrapper around the store reports how many.
 */
import { readFileSync } from 'node:fs'
import { SellingPartnerApiAuth } from '@sp-api-sdk/auth'
import { loadConfigFromEnv } from '../../src/config.ts'
import { defaultDeps } from '../../src/core/deps.ts'
import { STATUS_RECHECK_MS } from '../../src/core/tokens/manager.ts'
import { buildRuntime } from '../../src/runtime.ts'
import { createSimulator, generateDevApp, startSimulatorServer } from '../../src/simulator/index.ts'
import { openSqliteStore } from '../../src/store/index.ts'
import type { Store } from '../../src/store/store.ts'
import { benchEnv, insertConnections, newEncryptionKey, tempDir, withCleanup } from '../lib/harness.ts'
import { median, round } from '../lib/stats.ts'

/** Each side is warmed up this long before timing. */
const WARMUP_MS = 500
/** Timed rounds per side, alternating ours / bizon so drift on a shared machine hits both alike. */
const ROUNDS = 7
/** 7 × 1 s > STATUS_RECHECK_MS, so our timed calls span at least one status re-check. */
const ROUND_MS = 1_000
const BATCH = 20_000

export interface LoopRound {
  readonly calls: number
  readonly ms: number
  readonly opsPerSec: number
  readonly nsPerOp: number
}

export interface LoopStats {
  readonly rounds: readonly LoopRound[]
  readonly medianOpsPerSec: number
  readonly medianNsPerOp: number
  readonly timedCalls: number
  /** Token-endpoint calls the side made in all (the one that filled its cache). */
  readonly tokenEndpointCalls: number
}

export interface CachedTokenResult {
  readonly ours: LoopStats & { readonly storeReadsWhileTimed: number; readonly statusRecheckMs: number }
  readonly bizon: LoopStats & { readonly version: string }
  readonly settings: { warmupMs: number; rounds: number; roundMs: number; batch: number }
}

/** Sequential awaited calls in batches until `ms` have passed. */
async function timed(call: () => Promise<unknown>, ms: number): Promise<LoopRound> {
  let calls = 0
  const start = performance.now()
  let elapsed = 0
  do {
    for (let i = 0; i < BATCH; i++) await call()
    calls += BATCH
    elapsed = performance.now() - start
  } while (elapsed < ms)
  return {
    calls,
    ms: round(elapsed, 1),
    opsPerSec: Math.round((calls / elapsed) * 1000),
    nsPerOp: round((elapsed * 1e6) / calls, 1),
  }
}

function summary(rounds: readonly LoopRound[]): Omit<LoopStats, 'tokenEndpointCalls'> {
  return {
    rounds,
    medianOpsPerSec: median(rounds.map((r) => r.opsPerSec)),
    medianNsPerOp: median(rounds.map((r) => r.nsPerOp)),
    timedCalls: rounds.reduce((sum, r) => sum + r.calls, 0),
  }
}

/** The store, with its `getConnection` reads counted (the cached path's periodic status re-check). */
function countingStore(store: Store): { store: Store; reads: () => number } {
  let reads = 0
  const proxy = new Proxy(store, {
    get(target, key) {
      if (key === 'getConnection') {
        return (id: string) => {
          reads++
          return target.getConnection(id)
        }
      }
      const value: unknown = Reflect.get(target, key)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return { store: proxy, reads: () => reads }
}

export async function run(): Promise<CachedTokenResult> {
  return withCleanup(async (defer) => {
    const dir = tempDir('cached')
    defer(() => dir.dispose())
    const app = generateDevApp({
      redirectUri: 'http://127.0.0.1:1/callback',
      loginUri: 'http://127.0.0.1:1/login',
    })
    const sim = createSimulator({ apps: [app] })
    defer(() => sim.close())
    const server = await startSimulatorServer(sim, { port: 0, hostname: '127.0.0.1' })
    defer(() => server.close())
    const clientSecret = app.clientSecrets[0]?.secret ?? ''
    const target = {
      tokenUrl: `${server.url}/auth/o2/token`,
      simulatorUrl: server.url,
      appId: app.appId,
      clientId: app.clientId,
      clientSecret,
    }

    // --- sp-connect
    const config = loadConfigFromEnv(benchEnv(target, `${dir.path}/bench.db`, newEncryptionKey()))
    const raw = await openSqliteStore({ path: `${dir.path}/bench.db` })
    await raw.migrate()
    const counted = countingStore(raw)
    const runtime = buildRuntime(config, defaultDeps(), counted.store)
    defer(() => runtime.close())
    const refreshToken = sim.selfAuthorize(app.appId, 'A0000000000001', 'na')
    const [id] = await insertConnections(runtime, [{ sellingPartnerId: 'A0000000000001', refreshToken }])
    if (id === undefined) throw new Error('no connection')
    sim.resetCounters()
    await runtime.tokens.getAccessToken(id)
    const oursCalls = sim.counters().total

    // --- @sp-api-sdk/auth: its token URL is fixed to Amazon's, so nock answers it from the simulator's app.
    // Imported only after our token was fetched; our cached path does no HTTP, so nock is never under it.
    const { default: nock } = await import('nock')
    defer(() => {
      nock.cleanAll()
      nock.restore()
    })
    nock.disableNetConnect()
    nock('https://api.amazon.com')
      .post('/auth/o2/token')
      // nock 15 hands a reply function the fetch Request (a two-parameter function would be callback style).
      .reply(async (request: Request) => {
        const response = await sim.app.fetch(
          new Request(`${server.url}/auth/o2/token`, {
            method: 'POST',
            headers: { 'content-type': request.headers.get('content-type') ?? 'application/json' },
            body: await request.text(),
          }),
        )
        return [response.status, await response.text(), { 'content-type': 'application/json' }]
      })
    sim.resetCounters()
    const auth = new SellingPartnerApiAuth({
      clientId: app.clientId,
      clientSecret,
      refreshToken: sim.selfAuthorize(app.appId, 'A0000000000002', 'na'),
    })
    await auth.getAccessToken()
    const bizonCalls = sim.counters().total

    const ours = () => runtime.tokens.getAccessToken(id)
    const bizon = () => auth.getAccessToken()
    await timed(ours, WARMUP_MS)
    await timed(bizon, WARMUP_MS)
    const readsBefore = counted.reads()
    const oursRounds: LoopRound[] = []
    const bizonRounds: LoopRound[] = []
    for (let r = 0; r < ROUNDS; r++) {
      oursRounds.push(await timed(ours, ROUND_MS))
      bizonRounds.push(await timed(bizon, ROUND_MS))
    }
    const storeReadsWhileTimed = counted.reads() - readsBefore
    const { version } = JSON.parse(
      readFileSync(new URL('../../node_modules/@sp-api-sdk/auth/package.json', import.meta.url), 'utf8'),
    ) as { version: string }
    return {
      ours: {
        ...summary(oursRounds),
        tokenEndpointCalls: oursCalls,
        storeReadsWhileTimed,
        statusRecheckMs: STATUS_RECHECK_MS,
      },
      bizon: { ...summary(bizonRounds), tokenEndpointCalls: bizonCalls, version },
      settings: { warmupMs: WARMUP_MS, rounds: ROUNDS, roundMs: ROUND_MS, batch: BATCH },
    }
  })
}
