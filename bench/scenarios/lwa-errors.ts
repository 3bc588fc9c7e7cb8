/**
 * 3. The token endpoint answers 30 % of calls with a 5xx (the simulator's `errorRate: 0.3`: half 500
 * server_error, half 503 temporarily_unavailable, drawn from a seeded PRNG). 100 refreshes, one after the
 * other, each the first refresh of its own connection (no access token stored, so nothing stale can stand in
 * for a failed refresh): the shape of the peers' row 4, "fresh client each".
 *
 * sp-connect runs as configured in production first: the runtime's LWA client with its default retry policy
 * (attempts, full-jitter backoff) and its default shared retry budget (retry-budget.ts), with real sleeps, so
 * the wall time includes those waits. Repeated for a few seeds, so one lucky or unlucky fault pattern does not
 * decide the headline. Then two what-ifs that the runtime cannot be configured for (buildRuntime makes the
 * LwaClient with defaults), wired the way buildRuntime does: more attempts; more attempts and a budget that
 * earns one retry per request.
 */
import { LwaClient } from '../../src/core/lwa/client.ts'
import { RetryBudget } from '../../src/core/lwa/retry-budget.ts'
import { DEFAULT_RETRY_POLICY } from '../../src/core/lwa/types.ts'
import { TokenManager } from '../../src/core/tokens/manager.ts'
import type { Runtime } from '../../src/runtime.ts'
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
import { quantile, round } from '../lib/stats.ts'

const REFRESHES = 100
const ERROR_RATE = 0.3

/** How the LWA client is set up in a variant; undefined fields keep the runtime's defaults. */
export interface LwaSetup {
  readonly label: string
  readonly maxAttempts?: number
  /** Retries earned per request by the shared retry budget. */
  readonly budgetRatio?: number
  /** The first seed is the variant's headline. */
  readonly seeds: readonly number[]
}

const VARIANTS: readonly LwaSetup[] = [
  { label: 'as configured (runtime defaults)', seeds: [1, 2, 3, 4, 5] },
  { label: 'what-if: 5 attempts', maxAttempts: 5, seeds: [1, 2, 3] },
  {
    label: 'what-if: 5 attempts, budget of 1 retry per request',
    maxAttempts: 5,
    budgetRatio: 1,
    seeds: [1, 2, 3],
  },
]

export interface LwaErrorRun {
  readonly seed: number
  readonly refreshes: number
  readonly ok: number
  readonly failed: number
  readonly failures: Readonly<Record<string, number>>
  readonly tokenEndpointCalls: number
  /** Calls the simulator answered with an injected 5xx. */
  readonly injectedFaults: number
  readonly callsPerSuccessfulRefresh: number
  readonly wallSeconds: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly slowestMs: number
  /** The circuit breaker's state after the run (it opens after 5 consecutive failed refreshes). */
  readonly breakerState: string
  /** Retries the LWA client's shared budget still allowed at the end (below 1: it was refusing retries). */
  readonly retryBudgetLeft: number
}

export interface LwaErrorsVariant {
  readonly setup: LwaSetup
  readonly maxAttempts: number
  readonly headline: LwaErrorRun
  readonly runs: readonly LwaErrorRun[]
  readonly all: {
    readonly refreshes: number
    readonly ok: number
    readonly okShare: number
    readonly tokenEndpointCalls: number
    readonly callsPerSuccessfulRefresh: number
    readonly wallSeconds: number
  }
  /**
   * Were every retry allowed, with independent faults: 1 - rate^attempts of refreshes succeed, using
   * 1 + rate + … + rate^(attempts-1) calls each.
   */
  readonly expectedOkShareWithoutBudget: number
  readonly expectedCallsPerRefreshWithoutBudget: number
}

export interface LwaErrorsResult {
  /** The first is sp-connect as configured in production; the others are what-ifs. */
  readonly variants: readonly LwaErrorsVariant[]
  readonly settings: {
    readonly errorRate: number
    readonly refreshesPerSeed: number
    readonly defaultRetryPolicy: typeof DEFAULT_RETRY_POLICY
  }
}

/** The runtime's token manager, or one wired the same way around an LWA client set up differently. */
function tokenManager(runtime: Runtime, setup: LwaSetup): { tokens: TokenManager; lwa: LwaClient } {
  if (setup.maxAttempts === undefined && setup.budgetRatio === undefined) {
    return { tokens: runtime.tokens, lwa: runtime.lwa }
  }
  const { config, deps, store, keyring, events, secrets } = runtime
  const lwa = new LwaClient(
    {
      tokenUrl: config.amazon.lwaTokenUrl,
      credentials: secrets,
      ...(setup.maxAttempts === undefined ? {} : { retry: { maxAttempts: setup.maxAttempts } }),
      ...(setup.budgetRatio === undefined
        ? {}
        : { retryBudget: new RetryBudget({ ratio: setup.budgetRatio }, deps) }),
    },
    deps,
  )
  const tokens = new TokenManager(
    { store, keyring, lwa, events, refreshMarginMs: config.tokenRefreshMarginMs },
    deps,
  )
  return { tokens, lwa }
}

async function runSeed(seed: number, setup: LwaSetup): Promise<LwaErrorRun> {
  return withCleanup(async (defer) => {
    const dir = tempDir(`lwa-errors-${seed}`)
    defer(() => dir.dispose())
    const sim = await RemoteSimulator.start({ seed })
    defer(() => sim.close())
    const runtime = await openBenchRuntime(benchEnv(sim.target, `${dir.path}/bench.db`, newEncryptionKey()))
    defer(() => runtime.close())
    const spids = Array.from({ length: REFRESHES }, (_, i) => sellingPartnerId(i + 1))
    const refreshTokens = await sim.selfAuthorize(spids)
    const ids = await insertConnections(
      runtime,
      spids.map((sp, i) => ({ sellingPartnerId: sp, refreshToken: refreshTokens[i] ?? '' })),
    )
    const { tokens, lwa } = tokenManager(runtime, setup)
    await sim.resetCounters()
    await sim.setFaults({ errorRate: ERROR_RATE })

    const latencies: number[] = []
    const failures: Record<string, number> = {}
    let ok = 0
    const start = performance.now()
    for (const id of ids) {
      const t = performance.now()
      try {
        await tokens.getAccessToken(id)
        ok++
      } catch (error) {
        const code = error instanceof Error && 'code' in error ? String(error.code) : 'unknown'
        failures[code] = (failures[code] ?? 0) + 1
      }
      latencies.push(performance.now() - t)
    }
    const wallSeconds = (performance.now() - start) / 1000
    const counters = await sim.counters()
    const calls = counters.byGrant.refresh_token
    return {
      seed,
      refreshes: ids.length,
      ok,
      failed: ids.length - ok,
      failures,
      tokenEndpointCalls: calls,
      injectedFaults: counters.byOutcome.fault,
      callsPerSuccessfulRefresh: round(calls / ok, 3),
      wallSeconds: round(wallSeconds, 2),
      p50Ms: round(quantile(latencies, 0.5), 2),
      p99Ms: round(quantile(latencies, 0.99), 2),
      slowestMs: round(Math.max(...latencies), 2),
      breakerState: tokens.breaker.state,
      retryBudgetLeft: round(lwa.retryBudget.available, 2),
    }
  })
}

async function variant(setup: LwaSetup): Promise<LwaErrorsVariant> {
  const runs: LwaErrorRun[] = []
  for (const seed of setup.seeds) runs.push(await runSeed(seed, setup))
  const sum = (f: (r: LwaErrorRun) => number) => runs.reduce((s, r) => s + f(r), 0)
  const refreshes = sum((r) => r.refreshes)
  const ok = sum((r) => r.ok)
  const calls = sum((r) => r.tokenEndpointCalls)
  const headline = runs[0]
  if (!headline) throw new Error('no runs')
  const maxAttempts = setup.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts
  return {
    setup,
    maxAttempts,
    headline,
    runs,
    all: {
      refreshes,
      ok,
      okShare: round(ok / refreshes, 4),
      tokenEndpointCalls: calls,
      callsPerSuccessfulRefresh: round(calls / ok, 3),
      wallSeconds: round(
        sum((r) => r.wallSeconds),
        2,
      ),
    },
    expectedOkShareWithoutBudget: round(1 - ERROR_RATE ** maxAttempts, 4),
    expectedCallsPerRefreshWithoutBudget: round(
      Array.from({ length: maxAttempts }, (_, i) => ERROR_RATE ** i).reduce((a, b) => a + b, 0),
      3,
    ),
  }
}

export async function run(): Promise<LwaErrorsResult> {
  const variants: LwaErrorsVariant[] = []
  for (const setup of VARIANTS) variants.push(await variant(setup))
  return {
    variants,
    settings: {
      errorRate: ERROR_RATE,
      refreshesPerSeed: REFRESHES,
      defaultRetryPolicy: DEFAULT_RETRY_POLICY,
    },
  }
}
