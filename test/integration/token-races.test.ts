/**
 * Races in the token manager explored with fast-check's scheduler: every store call and every call to the
 * token endpoint is a point where fast-check may switch to another caller. The parts are real (the SQLite
 * store on a temp file, the simulator's LWA endpoint in-process, the LWA client); only the order of their
 * completions is chosen by the scheduler.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Keyring } from '../../src/core/crypto/keyring.ts'
import { type Deps, defaultDeps } from '../../src/core/deps.ts'
import { EventRecorder } from '../../src/core/events/events.ts'
import { LwaClient } from '../../src/core/lwa/client.ts'
import { TokenManager } from '../../src/core/tokens/manager.ts'
import { openToken, sealToken } from '../../src/core/tokens/sealed.ts'
import { createSimulator, generateDevApp } from '../../src/simulator/index.ts'
import { openSqliteStore } from '../../src/store/index.ts'
import type { Store } from '../../src/store/store.ts'

const HOUR = 3_600_000

/**
 * Wraps every method of the store so its result is delivered when the scheduler says. Waiting for another
 * process's lease (`waitForConnectionChange`) takes no real time: it is one more scheduling point, resolved
 * whenever the scheduler picks it (the real wait would block the scheduler for up to its timeout).
 */
function scheduledStore(store: Store, s: fc.Scheduler): Store {
  return new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver)
      if (typeof value !== 'function' || key === 'close' || key === 'migrate') return value
      if (key === 'waitForConnectionChange') {
        return () => s.schedule(Promise.resolve(), 'store.waitForConnectionChange')
      }
      return (...args: unknown[]) => s.schedule(value.apply(target, args), `store.${String(key)}`)
    },
  })
}

async function setUp(s: fc.Scheduler, managers: number, leaseMs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'sp-connect-race-'))
  let now = Date.now()
  const clock = {
    now: () => now,
    advance: (ms: number) => {
      now += ms
    },
  }
  const app = generateDevApp({
    redirectUri: 'https://app.example.com/callback',
    loginUri: 'https://app.example.com/login',
  })
  const simulator = createSimulator({ apps: [app], now: clock.now })
  const realStore = await openSqliteStore({ path: join(dir, 'db.sqlite') })
  await realStore.migrate()
  const keyring = new Keyring([{ id: 'k1', key: new Uint8Array(randomBytes(32)) }])
  const id = 'con_race'
  await realStore.insertConnection({
    id,
    sellingPartnerId: 'ARACE0000000001',
    region: 'na',
    accountType: 'seller',
    tenantId: null,
    refreshTokenCiphertext: sealToken(
      keyring,
      id,
      'refresh_token',
      simulator.selfAuthorize(app.appId, 'ARACE0000000001', 'na'),
    ),
    accessTokenCiphertext: null,
    accessTokenExpiresAt: null,
    authorizedAt: now,
    reauthorizeBy: now + 365 * 24 * HOUR,
    now,
  })
  const store = scheduledStore(realStore, s)
  const deps: Deps = defaultDeps({
    now: clock.now,
    // The simulator answers in-process; the scheduler decides when each answer arrives.
    fetch: (input, init) => s.schedule(Promise.resolve(simulator.app.fetch(new Request(input, init))), 'lwa'),
    // Retry pauses take no real time either: one more scheduling point.
    sleep: () => s.schedule(Promise.resolve(), 'sleep'),
  })
  const events = new EventRecorder({ store }, deps)
  const credentials = { clientId: app.clientId, clientSecret: app.clientSecrets[0]?.secret ?? '' }
  const lwa = new LwaClient(
    { tokenUrl: 'http://lwa.test/auth/o2/token', credentials: () => credentials },
    deps,
  )
  const processes = Array.from(
    { length: managers },
    (_, i) => new TokenManager({ store, keyring, lwa, events, leaseMs, owner: `proc-${i}` }, deps),
  )
  return {
    id,
    clock,
    processes,
    simulator,
    keyring,
    realStore,
    async tearDown() {
      await realStore.close()
      await simulator.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

describe('token manager races (fast-check scheduler)', () => {
  it('many callers in several processes on an expired connection: one refresh, one token for all', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.nat(), { minLength: 2, maxLength: 10 }),
        async (s, managers, callers) => {
          const t = await setUp(s, managers, 30_000)
          try {
            const calls = callers.map((n) => t.processes[n % managers]?.getAccessToken(t.id))
            const tokens = await s.waitFor(Promise.all(calls))
            expect(t.simulator.counters().byGrant.refresh_token).toBe(1)
            expect(new Set(tokens.map((token) => token?.accessToken)).size).toBe(1)
            const row = await t.realStore.getConnection(t.id)
            expect(row?.version).toBe(2)
            expect(openToken(t.keyring, t.id, 'access_token', row?.accessTokenCiphertext ?? '')).toBe(
              tokens[0]?.accessToken,
            )
          } finally {
            await t.tearDown()
          }
        },
      ),
      { numRuns: 60 },
    )
  })

  it('a lease holder that stalls past its lease never overwrites a newer token (fencing)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.nat(), { minLength: 2, maxLength: 8 }),
        async (s, callers) => {
          const t = await setUp(s, 2, 1_000)
          try {
            // At a point the scheduler picks, time jumps past the lease: a second process may take over while the
            // first is still waiting for LWA.
            const jump = s.schedule(Promise.resolve(), 'clock jump').then(() => t.clock.advance(2_000))
            const calls = callers.map((n) => t.processes[n % 2]?.getAccessToken(t.id))
            const tokens = await s.waitFor(
              Promise.all([...calls, jump]).then((all) => all.slice(0, calls.length)),
            )
            const issued = t.simulator.counters().byGrant.refresh_token
            expect(issued).toBeGreaterThanOrEqual(1)
            expect(issued).toBeLessThanOrEqual(2)
            const row = await t.realStore.getConnection(t.id)
            // One successful write per issued token at most, and the stored token is the newest handed out.
            expect(row?.version).toBeLessThanOrEqual(1 + issued)
            const stored = openToken(t.keyring, t.id, 'access_token', row?.accessTokenCiphertext ?? '')
            const latest = Math.max(...tokens.map((token) => (token as { expiresAt: number }).expiresAt))
            expect(row?.accessTokenExpiresAt).toBe(latest)
            expect(tokens.map((token) => (token as { accessToken: string }).accessToken)).toContain(stored)
          } finally {
            await t.tearDown()
          }
        },
      ),
      { numRuns: 60 },
    )
  })
})
