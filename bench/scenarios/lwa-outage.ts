/**
 * A sustained token-endpoint outage (issue 8): token-endpoint calls per caller request, the share of them that
 * are retries, and the slowest caller's wait, before and after the issue-8 settings, in the same run.
 *
 * The token endpoint is a fake node:http server on loopback (the simulator cannot hang), in two modes:
 * - **503**: every call answered at once with `503 temporarily_unavailable` (no Retry-After); a new caller
 *   every 100 ms for 40 s, each on a connection of its own with no stored access token (nothing can stand in).
 * - **hang**: every call read and never answered; a new caller every second for 20 s.
 *
 * Each caller is `TokenManager.getAccessToken` on the real SQLite store, real LWA client, real breaker, real
 * time. **before** reproduces the settings before issue 8 by options: 5 attempts, the old retry budget
 * (`PREVIOUS_RETRY_BUDGET`: 0.5 per request, 1/s, 30 saved up, starting full), no caller deadline (the 60 s
 * lease still bounds a refresh), and retries also after a failed refresh and in the half-open probe
 * (`singleAttemptWhileFailing: false`). **after** is the defaults. The four runs go at the same time, each with
 * its own endpoint, store and client.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Keyring } from '../../src/core/crypto/keyring.ts'
import { defaultDeps } from '../../src/core/deps.ts'
import { EventRecorder } from '../../src/core/events/events.ts'
import { LwaClient } from '../../src/core/lwa/client.ts'
import { PREVIOUS_RETRY_BUDGET, RetryBudget } from '../../src/core/lwa/retry-budget.ts'
import { DEFAULT_RETRY_POLICY } from '../../src/core/lwa/types.ts'
import { NO_METRICS } from '../../src/core/metrics.ts'
import { DEFAULT_TOKEN_DEADLINE_MS, TokenManager } from '../../src/core/tokens/manager.ts'
import { sealToken } from '../../src/core/tokens/sealed.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'
import { openSqliteStore } from '../../src/store/index.ts'
import { tempDir, withCleanup } from '../lib/harness.ts'
import { quantile, round } from '../lib/stats.ts'

export type OutageMode = '503' | 'hang'
export type OutageSettings = 'before' | 'after'

const PLAN: Record<OutageMode, { readonly everyMs: number; readonly forMs: number }> = {
  '503': { everyMs: 100, forMs: 40_000 },
  hang: { everyMs: 1_000, forMs: 20_000 },
}

export interface OutageRun {
  readonly mode: OutageMode
  readonly settings: OutageSettings
  readonly callers: number
  readonly tokenEndpointCalls: number
  readonly retries: number
  readonly callsPerCaller: number
  readonly retryShare: number
  readonly p50WaitSeconds: number
  readonly slowestWaitSeconds: number
  readonly failures: Readonly<Record<string, number>>
}

export interface LwaOutageResult {
  readonly runs: readonly OutageRun[]
  readonly settings: {
    readonly plan: typeof PLAN
    readonly before: { readonly maxAttempts: number; readonly budget: typeof PREVIOUS_RETRY_BUDGET }
    readonly after: { readonly maxAttempts: number; readonly deadlineSeconds: number }
  }
}

async function fakeEndpoint(mode: OutageMode) {
  let calls = 0
  const hanging = new Set<ServerResponse>()
  const server = createServer((request, response) => {
    request.resume()
    request.on('end', () => {
      calls++
      if (mode === 'hang') {
        hanging.add(response)
        return
      }
      response.writeHead(503, { 'content-type': 'application/json' })
      response.end('{"error":"temporarily_unavailable"}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/auth/o2/token`,
    calls: () => calls,
    close: async () => {
      for (const response of hanging) response.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

async function runOne(mode: OutageMode, settings: OutageSettings): Promise<OutageRun> {
  return withCleanup(async (defer) => {
    const dir = tempDir(`lwa-outage-${mode}-${settings}`)
    defer(() => dir.dispose())
    const endpoint = await fakeEndpoint(mode)
    defer(() => endpoint.close())
    const store = await openSqliteStore({ path: join(dir.path, 'bench.db') })
    defer(() => store.close())
    await store.migrate()
    let retries = 0
    const deps = defaultDeps({ metrics: { ...NO_METRICS, lwaRetry: () => retries++ } })
    const keyring = new Keyring([{ id: 'k1', key: new Uint8Array(randomBytes(32)) }])
    const events = new EventRecorder({ store }, deps)
    const before = settings === 'before'
    const lwa = new LwaClient(
      {
        tokenUrl: endpoint.url,
        credentials: () => ({
          clientId: 'amzn1.application-oa2-client.bench',
          clientSecret: 'bench-secret-0123456789',
        }),
        ...(before
          ? { retry: { maxAttempts: 5 }, retryBudget: new RetryBudget(PREVIOUS_RETRY_BUDGET, deps) }
          : {}),
      },
      deps,
    )
    const tokens = new TokenManager(
      {
        store,
        keyring,
        lwa,
        events,
        ...(before ? { deadlineMs: Number.POSITIVE_INFINITY, singleAttemptWhileFailing: false } : {}),
      },
      deps,
    )
    const plan = PLAN[mode]
    const count = Math.floor(plan.forMs / plan.everyMs)
    const ids: string[] = []
    const now = Date.now()
    for (let i = 0; i < count; i++) {
      const id = `con_outage_${i}`
      await store.insertConnection({
        id,
        sellingPartnerId: `AOUTAGE${String(i).padStart(7, '0')}`,
        region: 'na',
        accountType: 'seller',
        tenantId: null,
        refreshTokenCiphertext: sealToken(keyring, id, 'refresh_token', `Atzr|bench-${i}`),
        accessTokenCiphertext: null,
        accessTokenExpiresAt: null,
        authorizedAt: now,
        reauthorizeBy: now + 365 * 86_400_000,
        now,
      })
      ids.push(id)
    }
    const waits: number[] = []
    const failures: Record<string, number> = {}
    const start = performance.now()
    const callers = ids.map(async (id, i) => {
      const due = start + i * plan.everyMs
      const delay = due - performance.now()
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
      const t = performance.now()
      try {
        await tokens.getAccessToken(id)
        failures['ok'] = (failures['ok'] ?? 0) + 1
      } catch (error) {
        const code = isSpConnectError(error) ? error.code : 'unknown'
        failures[code] = (failures[code] ?? 0) + 1
      }
      waits.push(performance.now() - t)
    })
    await Promise.all(callers)
    const calls = endpoint.calls()
    return {
      mode,
      settings,
      callers: ids.length,
      tokenEndpointCalls: calls,
      retries,
      callsPerCaller: round(calls / ids.length, 3),
      retryShare: round(calls === 0 ? 0 : retries / calls, 3),
      p50WaitSeconds: round(quantile(waits, 0.5) / 1000, 3),
      slowestWaitSeconds: round(Math.max(...waits) / 1000, 2),
      failures,
    }
  })
}

export async function run(): Promise<LwaOutageResult> {
  const runs = await Promise.all([
    runOne('503', 'before'),
    runOne('503', 'after'),
    runOne('hang', 'before'),
    runOne('hang', 'after'),
  ])
  return {
    runs,
    settings: {
      plan: PLAN,
      before: { maxAttempts: 5, budget: PREVIOUS_RETRY_BUDGET },
      after: {
        maxAttempts: DEFAULT_RETRY_POLICY.maxAttempts,
        deadlineSeconds: DEFAULT_TOKEN_DEADLINE_MS / 1000,
      },
    },
  }
}
