/**
 * The `Store` conformance suite: every rule in store.ts's doc comments, races included. Each backend runs it
 * with its own factory (SQLite files today, PostgreSQL later), so both implement the same contract.
 */
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type {
  AppSecretRecord,
  AuthStateRecord,
  ConnectionRecord,
  ConnectSessionRecord,
  DeliveryRecord,
  EventRecord,
  NewConnection,
  Reauthorization,
  Store,
} from '../../src/store/store.ts'

/** What a backend's factory returns: a fresh, empty, *unmigrated* store. */
export interface StoreUnderTest {
  readonly store: Store
  /** Closes `store` and removes whatever the factory created. Stores from `openAnother` are closed by the suite. */
  cleanup(): Promise<void>
  /** Opens another, independent handle on the same database: a second "process". Omit if impossible. */
  readonly openAnother?: () => Promise<Store>
  /**
   * Writes through a handle from `openAnother` wake `waitForConnectionChange` on this one (PostgreSQL's
   * LISTEN/NOTIFY). When false, only a handle's own writes wake its waiters (SQLite).
   */
  readonly wakesAcrossHandles?: boolean
}

const T0 = 1_800_000_000_000
const MINUTE = 60_000
const HOUR = 60 * MINUTE

let serial = 0
const unique = (prefix: string) => `${prefix}-${++serial}-${Math.random().toString(36).slice(2, 8)}`

function authState(overrides: Partial<AuthStateRecord> = {}): AuthStateRecord {
  return {
    stateHash: unique('state'),
    flow: 'website',
    region: 'na',
    accountType: 'seller',
    tenantId: 'tenant-1',
    returnTo: '/done',
    browserBindingHash: unique('binding'),
    sellingPartnerId: null,
    connectionId: null,
    createdAt: T0,
    expiresAt: T0 + 10 * MINUTE,
    consumedAt: null,
    ...overrides,
  }
}

function newConnection(overrides: Partial<NewConnection> = {}): NewConnection {
  return {
    id: unique('con'),
    sellingPartnerId: unique('A'),
    region: 'eu',
    accountType: 'seller',
    tenantId: 'tenant-1',
    refreshTokenCiphertext: 'refresh-ct-1',
    accessTokenCiphertext: 'access-ct-1',
    accessTokenExpiresAt: T0 + HOUR,
    authorizedAt: T0,
    reauthorizeBy: T0 + 365 * 24 * HOUR,
    accountFingerprint: 'v1:first',
    now: T0,
    ...overrides,
  }
}

function reauthorization(overrides: Partial<Reauthorization> = {}): Reauthorization {
  return {
    accountType: 'vendor',
    // The connection's own tenant: a re-authorization never moves a connection (see the test below).
    tenantId: 'tenant-1',
    refreshTokenCiphertext: 'refresh-ct-new',
    accessTokenCiphertext: 'access-ct-new',
    accessTokenExpiresAt: T0 + 5 * HOUR,
    authorizedAt: T0 + 2 * HOUR,
    reauthorizeBy: T0 + 2 * HOUR + 365 * 24 * HOUR,
    accountFingerprint: null,
    now: T0 + 2 * HOUR,
    ...overrides,
  }
}

function event(overrides: Partial<EventRecord> = {}): EventRecord {
  return {
    id: unique('evt'),
    type: 'connection.created',
    connectionId: null,
    data: { flow: 'website' },
    createdAt: T0,
    ...overrides,
  }
}

function defined<T>(value: T | undefined): T {
  expect(value).toBeDefined()
  if (value === undefined) throw new Error('unreachable')
  return value
}

const count = (values: readonly unknown[]) => values.filter((v) => v !== undefined && v !== false).length

/**
 * Registers the conformance tests for one backend. `makeStore` is called once per test and must return a
 * fresh, empty, unmigrated store; the suite migrates it where the test needs a schema.
 */
export function storeConformanceSuite(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`Store conformance: ${name}`, () => {
    let subject: StoreUnderTest
    let store: Store
    const extra: Store[] = []

    async function another(): Promise<Store | undefined> {
      if (subject.openAnother === undefined) return undefined
      const second = await subject.openAnother()
      extra.push(second)
      return second
    }

    beforeEach(async () => {
      subject = await makeStore()
      store = subject.store
    })

    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close()
      await subject.cleanup()
    })

    describe('migrate', () => {
      it('applies every migration once, then reports them already applied', async () => {
        const first = await store.migrate()
        expect(first.length).toBeGreaterThan(0)
        expect(first.every((o) => o.status === 'applied')).toBe(true)
        const names = first.map((o) => o.name)
        expect([...names].sort()).toEqual(names)
        const second = await store.migrate()
        expect(second).toEqual(names.map((n) => ({ name: n, status: 'already_applied' })))
      })

      it('applies each migration exactly once when called concurrently on one handle', async () => {
        const [a, b] = await Promise.all([store.migrate(), store.migrate()])
        expect(a.length).toBe(b.length)
        a.forEach((outcome, i) => {
          const statuses = [outcome.status, b[i]?.status].sort()
          expect(statuses).toEqual(['already_applied', 'applied'])
        })
      })

      it('applies each migration exactly once when two handles migrate concurrently', async () => {
        const second = await another()
        if (second === undefined) return
        const [a, b] = await Promise.all([store.migrate(), second.migrate()])
        expect(a.length).toBe(b.length)
        a.forEach((outcome, i) => {
          expect(b[i]?.name).toBe(outcome.name)
          expect([outcome.status, b[i]?.status].sort()).toEqual(['already_applied', 'applied'])
        })
        // Both handles now work against the migrated schema.
        const state = authState()
        await store.insertAuthState(state)
        expect(await second.getAuthState(state.stateHash)).toEqual(state)
      })
    })

    describe('pendingMigrations', () => {
      it('lists every migration before migrate, none after', async () => {
        const before = await store.pendingMigrations()
        expect(before.length).toBeGreaterThan(0)
        const applied = await store.migrate()
        expect(before).toEqual(applied.map((o) => o.name))
        expect(await store.pendingMigrations()).toEqual([])
      })
    })

    describe('with the schema', () => {
      beforeEach(async () => {
        await store.migrate()
      })

      describe('auth states', () => {
        it('round-trips every field, with and without optional values', async () => {
          const full = authState({ flow: 'appstore', sellingPartnerId: 'A2SELLER', region: 'fe' })
          const sparse = authState({ tenantId: null, returnTo: null, accountType: 'vendor' })
          await store.insertAuthState(full)
          await store.insertAuthState(sparse)
          expect(await store.getAuthState(full.stateHash)).toEqual(full)
          expect(await store.getAuthState(sparse.stateHash)).toEqual(sparse)
          expect(await store.getAuthState('no-such-state')).toBeUndefined()
        })

        it('rejects a second state with the same hash', async () => {
          const state = authState()
          await store.insertAuthState(state)
          await expect(store.insertAuthState({ ...state, browserBindingHash: 'other' })).rejects.toThrow()
          expect(await store.getAuthState(state.stateHash)).toEqual(state)
        })

        it('consumes an unexpired, unconsumed state once and records when', async () => {
          const state = authState()
          await store.insertAuthState(state)
          expect(await store.consumeAuthState(state.stateHash, T0 + MINUTE)).toBe(true)
          expect(await store.consumeAuthState(state.stateHash, T0 + 2 * MINUTE)).toBe(false)
          expect(await store.getAuthState(state.stateHash)).toEqual({ ...state, consumedAt: T0 + MINUTE })
        })

        it('does not consume a missing state', async () => {
          expect(await store.consumeAuthState('no-such-state', T0)).toBe(false)
        })

        it('does not consume a state at or after its expiry', async () => {
          const state = authState()
          await store.insertAuthState(state)
          expect(await store.consumeAuthState(state.stateHash, state.expiresAt)).toBe(false)
          expect(await store.consumeAuthState(state.stateHash, state.expiresAt + 1)).toBe(false)
          expect((await store.getAuthState(state.stateHash))?.consumedAt).toBeNull()
          expect(await store.consumeAuthState(state.stateHash, state.expiresAt - 1)).toBe(true)
        })

        it('does not consume a state inserted as already consumed', async () => {
          const state = authState({ consumedAt: T0 })
          await store.insertAuthState(state)
          expect(await store.consumeAuthState(state.stateHash, T0 + 1)).toBe(false)
          expect((await store.getAuthState(state.stateHash))?.consumedAt).toBe(T0)
        })

        it('lets exactly one of 20 concurrent consumers win', async () => {
          const state = authState()
          await store.insertAuthState(state)
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) => store.consumeAuthState(state.stateHash, T0 + i)),
          )
          expect(results.filter(Boolean)).toHaveLength(1)
        })

        it('lets exactly one consumer win across two handles', async () => {
          const second = await another()
          if (second === undefined) return
          const states = Array.from({ length: 10 }, () => authState())
          for (const s of states) await store.insertAuthState(s)
          for (const s of states) {
            const results = await Promise.all(
              Array.from({ length: 10 }, (_, i) =>
                (i % 2 === 0 ? store : second).consumeAuthState(s.stateHash, T0 + i),
              ),
            )
            expect(results.filter(Boolean)).toHaveLength(1)
          }
        })

        it('deletes only states that expired before the cutoff and says how many', async () => {
          const old1 = authState({ expiresAt: T0 + 1 })
          const old2 = authState({ expiresAt: T0 + 2, consumedAt: T0 })
          const boundary = authState({ expiresAt: T0 + 3 })
          const live = authState({ expiresAt: T0 + 4 })
          for (const s of [old1, old2, boundary, live]) await store.insertAuthState(s)
          expect(await store.deleteExpiredAuthStates(T0 + 3)).toBe(2)
          expect(await store.getAuthState(old1.stateHash)).toBeUndefined()
          expect(await store.getAuthState(old2.stateHash)).toBeUndefined()
          expect(await store.getAuthState(boundary.stateHash)).toEqual(boundary)
          expect(await store.getAuthState(live.stateHash)).toEqual(live)
          expect(await store.deleteExpiredAuthStates(T0 + 3)).toBe(0)
        })

        it('deletes only states consumed before the cutoff, whatever their expiry', async () => {
          const usedLongAgo = authState({ consumedAt: T0 + 1, expiresAt: T0 + 10 * HOUR })
          const boundary = authState({ consumedAt: T0 + 3 })
          const usedLater = authState({ consumedAt: T0 + 4 })
          const unused = authState({ expiresAt: T0 + 1 })
          for (const s of [usedLongAgo, boundary, usedLater, unused]) await store.insertAuthState(s)
          const consumedByCall = authState()
          await store.insertAuthState(consumedByCall)
          expect(await store.consumeAuthState(consumedByCall.stateHash, T0 + 2)).toBe(true)
          expect(await store.deleteConsumedAuthStates(T0 + 3)).toBe(2)
          expect(await store.getAuthState(usedLongAgo.stateHash)).toBeUndefined()
          expect(await store.getAuthState(consumedByCall.stateHash)).toBeUndefined()
          expect(await store.getAuthState(boundary.stateHash)).toEqual(boundary)
          expect(await store.getAuthState(usedLater.stateHash)).toEqual(usedLater)
          // Never consumed: left to the expiry sweep, however old.
          expect(await store.getAuthState(unused.stateHash)).toEqual(unused)
          expect(await store.deleteConsumedAuthStates(T0 + 3)).toBe(0)
        })
      })

      describe('connect sessions', () => {
        it('round-trips every field and misses unknown tokens', async () => {
          const session: ConnectSessionRecord = {
            tokenHash: unique('token'),
            tenantId: 'tenant-9',
            region: 'eu',
            accountType: 'vendor',
            marketplace: 'DE',
            returnTo: 'https://app.example/done',
            connectionId: 'con-reconnect',
            createdAt: T0,
            expiresAt: T0 + HOUR,
          }
          const sparse: ConnectSessionRecord = {
            ...session,
            tokenHash: unique('token'),
            marketplace: null,
            returnTo: null,
          }
          await store.insertConnectSession(session)
          await store.insertConnectSession(sparse)
          expect(await store.getConnectSession(session.tokenHash)).toEqual(session)
          expect(await store.getConnectSession(sparse.tokenHash)).toEqual(sparse)
          expect(await store.getConnectSession('no-such-token')).toBeUndefined()
          await expect(store.insertConnectSession(session)).rejects.toThrow()
        })

        it('deletes only sessions that expired before the cutoff and says how many', async () => {
          const session = (expiresAt: number): ConnectSessionRecord => ({
            tokenHash: unique('token'),
            tenantId: 'tenant-sweep',
            region: 'na',
            accountType: 'seller',
            marketplace: null,
            returnTo: null,
            connectionId: null,
            createdAt: T0,
            expiresAt,
          })
          const [old1, old2, boundary, live] = [T0 + 1, T0 + 2, T0 + 3, T0 + 4].map(session)
          for (const s of [old1, old2, boundary, live]) if (s) await store.insertConnectSession(s)
          expect(await store.deleteExpiredConnectSessions(T0 + 3)).toBe(2)
          expect(await store.getConnectSession(old1?.tokenHash ?? '')).toBeUndefined()
          expect(await store.getConnectSession(old2?.tokenHash ?? '')).toBeUndefined()
          expect(await store.getConnectSession(boundary?.tokenHash ?? '')).toEqual(boundary)
          expect(await store.getConnectSession(live?.tokenHash ?? '')).toEqual(live)
          expect(await store.deleteExpiredConnectSessions(T0 + 3)).toBe(0)
        })
      })

      describe('insertConnection', () => {
        it('creates an active connection with clean bookkeeping', async () => {
          const input = newConnection()
          const row = defined(await store.insertConnection(input))
          expect(row).toEqual({
            id: input.id,
            sellingPartnerId: input.sellingPartnerId,
            region: input.region,
            accountType: input.accountType,
            tenantId: input.tenantId,
            status: 'active',
            statusReason: null,
            refreshTokenCiphertext: input.refreshTokenCiphertext,
            accessTokenCiphertext: input.accessTokenCiphertext,
            accessTokenExpiresAt: input.accessTokenExpiresAt,
            authorizedAt: input.authorizedAt,
            reauthorizeBy: input.reauthorizeBy,
            lastRefreshAt: null,
            lastRefreshError: null,
            failureCount: 0,
            leaseOwner: null,
            leaseUntil: null,
            lastUsedAt: null,
            refreshNotBefore: null,
            reauthReminderDays: null,
            accountFingerprint: input.accountFingerprint ?? null,
            version: row.version,
            createdAt: T0,
            updatedAt: T0,
          } satisfies ConnectionRecord)
          expect(Number.isSafeInteger(row.version)).toBe(true)
          expect(await store.getConnection(input.id)).toEqual(row)
          expect(await store.findConnection(input.sellingPartnerId, input.region)).toEqual(row)
        })

        it('accepts a connection without tenant or access token', async () => {
          const input = newConnection({
            tenantId: null,
            accessTokenCiphertext: null,
            accessTokenExpiresAt: null,
          })
          const row = defined(await store.insertConnection(input))
          expect(row.tenantId).toBeNull()
          expect(row.accessTokenCiphertext).toBeNull()
          expect(row.accessTokenExpiresAt).toBeNull()
        })

        it('returns undefined and changes nothing when the selling partner and region exist', async () => {
          const first = defined(await store.insertConnection(newConnection({ sellingPartnerId: 'ADUP' })))
          const again = await store.insertConnection(
            newConnection({
              sellingPartnerId: 'ADUP',
              region: first.region,
              refreshTokenCiphertext: 'other',
            }),
          )
          expect(again).toBeUndefined()
          expect(await store.getConnection(first.id)).toEqual(first)
          expect(await store.listConnections()).toHaveLength(1)
        })

        it('allows the same selling partner in another region', async () => {
          const eu = defined(
            await store.insertConnection(newConnection({ sellingPartnerId: 'AMULTI', region: 'eu' })),
          )
          const na = defined(
            await store.insertConnection(newConnection({ sellingPartnerId: 'AMULTI', region: 'na' })),
          )
          expect(na.id).not.toBe(eu.id)
          expect((await store.findConnection('AMULTI', 'na'))?.id).toBe(na.id)
          expect((await store.findConnection('AMULTI', 'eu'))?.id).toBe(eu.id)
          expect(await store.findConnection('AMULTI', 'fe')).toBeUndefined()
        })

        it('lets exactly one of many concurrent inserts for one seller win', async () => {
          const second = await another()
          const results = await Promise.all(
            Array.from({ length: 12 }, (_, i) =>
              (second !== undefined && i % 2 === 1 ? second : store).insertConnection(
                newConnection({ sellingPartnerId: 'ARACE', region: 'na' }),
              ),
            ),
          )
          expect(count(results)).toBe(1)
          expect(await store.listConnections()).toHaveLength(1)
        })

        it('misses unknown ids and sellers', async () => {
          expect(await store.getConnection('no-such-id')).toBeUndefined()
          expect(await store.findConnection('ANOBODY', 'na')).toBeUndefined()
        })
      })

      describe('listConnections', () => {
        async function seed(): Promise<ConnectionRecord[]> {
          const rows: ConnectionRecord[] = []
          // Several share a created_at so the id tie-break matters; inserted out of order on purpose.
          const plan: Array<[string, number, string | null]> = [
            ['con-e', T0 + 2, 'tenant-1'],
            ['con-a', T0 + 1, 'tenant-2'],
            ['con-c', T0 + 2, 'tenant-1'],
            ['con-b', T0 + 2, null],
            ['con-d', T0 + 3, 'tenant-2'],
            ['con-f', T0 + 0, 'tenant-1'],
          ]
          for (const [id, now, tenantId] of plan) {
            rows.push(defined(await store.insertConnection(newConnection({ id, now, tenantId }))))
          }
          return rows
        }

        it('orders by created_at, then id', async () => {
          await seed()
          const ids = (await store.listConnections()).map((c) => c.id)
          expect(ids).toEqual(['con-f', 'con-a', 'con-b', 'con-c', 'con-e', 'con-d'])
        })

        it('filters by tenant and by status', async () => {
          await seed()
          const t1 = await store.listConnections({ tenantId: 'tenant-1' })
          expect(t1.map((c) => c.id)).toEqual(['con-f', 'con-c', 'con-e'])
          await store.disconnectConnection('con-c', T0 + 10)
          const gone = await store.listConnections({ status: 'disconnected' })
          expect(gone.map((c) => c.id)).toEqual(['con-c'])
          const activeT1 = await store.listConnections({ tenantId: 'tenant-1', status: 'active' })
          expect(activeT1.map((c) => c.id)).toEqual(['con-f', 'con-e'])
          expect(await store.listConnections({ status: 'needs_reauthorization' })).toEqual([])
        })

        it('pages with limit and after, visiting every row once', async () => {
          const rows = await seed()
          const seen: string[] = []
          let after: string | undefined
          for (;;) {
            const page = await store.listConnections({ limit: 4, ...(after ? { after } : {}) })
            expect(page.length).toBeLessThanOrEqual(4)
            if (page.length === 0) break
            seen.push(...page.map((c) => c.id))
            after = page.at(-1)?.id
          }
          expect(seen).toEqual(['con-f', 'con-a', 'con-b', 'con-c', 'con-e', 'con-d'])
          expect(seen).toHaveLength(rows.length)
        })

        it('pages within a filter', async () => {
          await seed()
          const first = await store.listConnections({ tenantId: 'tenant-1', limit: 2 })
          expect(first.map((c) => c.id)).toEqual(['con-f', 'con-c'])
          const next = await store.listConnections({ tenantId: 'tenant-1', limit: 2, after: 'con-c' })
          expect(next.map((c) => c.id)).toEqual(['con-e'])
        })

        it('returns an empty page after an unknown id', async () => {
          await seed()
          expect(await store.listConnections({ after: 'no-such-id' })).toEqual([])
        })

        it('defaults to 100 rows and never returns more than 1000', async () => {
          const inserts = Array.from({ length: 1001 }, (_, i) =>
            newConnection({ id: `bulk-${String(i).padStart(4, '0')}`, now: T0 + i }),
          )
          for (let i = 0; i < inserts.length; i += 100) {
            await Promise.all(inserts.slice(i, i + 100).map((c) => store.insertConnection(c)))
          }
          expect(await store.listConnections()).toHaveLength(100)
          expect(await store.listConnections({ limit: 5000 })).toHaveLength(1000)
          expect(await store.listConnections({ limit: 7 })).toHaveLength(7)
        })
      })

      describe('updateTokens', () => {
        it('writes tokens at the expected version, bumps it, clears failures, and keeps the refresh token', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const failed = defined(
            await store.recordRefreshFailure(row.id, row.version, { error: 'lwa_server_error', now: T0 + 1 }),
          )
          const updated = defined(
            await store.updateTokens(row.id, failed.version, {
              accessTokenCiphertext: 'access-ct-2',
              accessTokenExpiresAt: T0 + 2 * HOUR,
              now: T0 + 2,
            }),
          )
          expect(updated).toEqual({
            ...failed,
            accessTokenCiphertext: 'access-ct-2',
            accessTokenExpiresAt: T0 + 2 * HOUR,
            lastRefreshAt: T0 + 2,
            lastRefreshError: null,
            failureCount: 0,
            version: failed.version + 1,
            updatedAt: T0 + 2,
          })
          expect(updated.refreshTokenCiphertext).toBe(row.refreshTokenCiphertext)
          expect(await store.getConnection(row.id)).toEqual(updated)
        })

        it('replaces the refresh token when one is given', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const updated = defined(
            await store.updateTokens(row.id, row.version, {
              accessTokenCiphertext: 'access-ct-2',
              accessTokenExpiresAt: T0 + 2 * HOUR,
              refreshTokenCiphertext: 'refresh-ct-2',
              now: T0 + 1,
            }),
          )
          expect(updated.refreshTokenCiphertext).toBe('refresh-ct-2')
        })

        it('rejects a stale version and leaves the row alone', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const winner = defined(
            await store.updateTokens(row.id, row.version, {
              accessTokenCiphertext: 'winner',
              accessTokenExpiresAt: T0 + 2 * HOUR,
              now: T0 + 1,
            }),
          )
          const loser = await store.updateTokens(row.id, row.version, {
            accessTokenCiphertext: 'loser',
            accessTokenExpiresAt: T0 + 3 * HOUR,
            now: T0 + 2,
          })
          expect(loser).toBeUndefined()
          expect(await store.getConnection(row.id)).toEqual(winner)
        })

        it('lets exactly one of several writers at the same version win', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const second = await another()
          const results = await Promise.all(
            Array.from({ length: 10 }, (_, i) =>
              (second !== undefined && i % 2 === 1 ? second : store).updateTokens(row.id, row.version, {
                accessTokenCiphertext: `writer-${i}`,
                accessTokenExpiresAt: T0 + 2 * HOUR + i,
                now: T0 + 1,
              }),
            ),
          )
          expect(count(results)).toBe(1)
          expect((await store.getConnection(row.id))?.version).toBe(row.version + 1)
        })

        it('never moves the expiry backwards; an equal expiry is accepted', async () => {
          const row = defined(
            await store.insertConnection(newConnection({ accessTokenExpiresAt: T0 + HOUR })),
          )
          const earlier = await store.updateTokens(row.id, row.version, {
            accessTokenCiphertext: 'older',
            accessTokenExpiresAt: T0 + HOUR - 1,
            now: T0 + 1,
          })
          expect(earlier).toBeUndefined()
          expect(await store.getConnection(row.id)).toEqual(row)
          const same = await store.updateTokens(row.id, row.version, {
            accessTokenCiphertext: 'same',
            accessTokenExpiresAt: T0 + HOUR,
            now: T0 + 1,
          })
          expect(same?.accessTokenCiphertext).toBe('same')
        })

        it('accepts any expiry when none is stored', async () => {
          const row = defined(
            await store.insertConnection(
              newConnection({ accessTokenCiphertext: null, accessTokenExpiresAt: null }),
            ),
          )
          const updated = await store.updateTokens(row.id, row.version, {
            accessTokenCiphertext: 'first',
            accessTokenExpiresAt: 1,
            now: T0 + 1,
          })
          expect(updated?.accessTokenExpiresAt).toBe(1)
        })

        it('keeps the stored expiry the maximum of all accepted writes (property)', async () => {
          await fc.assert(
            fc.asyncProperty(
              fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 12 }),
              async (deltas) => {
                const row = defined(
                  await store.insertConnection(newConnection({ accessTokenExpiresAt: T0 + 500 })),
                )
                let expected = T0 + 500
                for (const delta of deltas) {
                  const current = defined(await store.getConnection(row.id))
                  const result = await store.updateTokens(row.id, current.version, {
                    accessTokenCiphertext: `ct-${delta}`,
                    accessTokenExpiresAt: T0 + delta,
                    now: T0 + 1,
                  })
                  expect(result !== undefined).toBe(T0 + delta >= expected)
                  expected = Math.max(expected, T0 + delta)
                  expect((await store.getConnection(row.id))?.accessTokenExpiresAt).toBe(expected)
                }
              },
            ),
            { numRuns: 25 },
          )
        })

        it('keeps needs_reauthorization: a refresh never reactivates', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const marked = defined(
            await store.recordRefreshFailure(row.id, row.version, {
              error: 'lwa_invalid_grant',
              status: 'needs_reauthorization',
              now: T0 + 1,
            }),
          )
          const updated = defined(
            await store.updateTokens(row.id, marked.version, {
              accessTokenCiphertext: 'late',
              accessTokenExpiresAt: T0 + 2 * HOUR,
              now: T0 + 2,
            }),
          )
          expect(updated.status).toBe('needs_reauthorization')
          expect(updated.statusReason).toBe('lwa_invalid_grant')
          expect(updated.failureCount).toBe(0)
        })

        it('rejects disconnected and unknown connections', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const gone = defined(await store.disconnectConnection(row.id, T0 + 1))
          const update = { accessTokenCiphertext: 'x', accessTokenExpiresAt: T0 + 9 * HOUR, now: T0 + 2 }
          expect(await store.updateTokens(row.id, gone.version, update)).toBeUndefined()
          expect(await store.getConnection(row.id)).toEqual(gone)
          expect(await store.updateTokens('no-such-id', 1, update)).toBeUndefined()
        })
      })

      describe('recordRefreshFailure', () => {
        it('counts consecutive failures, records the error, bumps the version, keeps the status', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const one = defined(
            await store.recordRefreshFailure(row.id, row.version, { error: 'lwa_server_error', now: T0 + 1 }),
          )
          expect(one).toEqual({
            ...row,
            lastRefreshError: 'lwa_server_error',
            failureCount: 1,
            version: row.version + 1,
            updatedAt: T0 + 1,
          })
          const two = defined(
            await store.recordRefreshFailure(row.id, one.version, { error: 'lwa_unreachable', now: T0 + 2 }),
          )
          expect(two.failureCount).toBe(2)
          expect(two.lastRefreshError).toBe('lwa_unreachable')
          expect(two.status).toBe('active')
          expect(two.statusReason).toBeNull()
          expect(two.version).toBe(row.version + 2)
        })

        it('moves the status when asked and records the reason', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const marked = defined(
            await store.recordRefreshFailure(row.id, row.version, {
              error: 'lwa_invalid_grant',
              status: 'needs_reauthorization',
              now: T0 + 1,
            }),
          )
          expect(marked.status).toBe('needs_reauthorization')
          expect(marked.statusReason).toBe('lwa_invalid_grant')
          expect(marked.refreshTokenCiphertext).toBe(row.refreshTokenCiphertext)
        })

        it('rejects a stale version', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const refreshed = defined(
            await store.updateTokens(row.id, row.version, {
              accessTokenCiphertext: 'new',
              accessTokenExpiresAt: T0 + 2 * HOUR,
              now: T0 + 1,
            }),
          )
          const late = await store.recordRefreshFailure(row.id, row.version, {
            error: 'lwa_invalid_grant',
            status: 'needs_reauthorization',
            now: T0 + 2,
          })
          expect(late).toBeUndefined()
          expect(await store.getConnection(row.id)).toEqual(refreshed)
        })

        it('never touches a disconnected connection', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const gone = defined(await store.disconnectConnection(row.id, T0 + 1))
          const result = await store.recordRefreshFailure(row.id, gone.version, {
            error: 'lwa_invalid_grant',
            status: 'needs_reauthorization',
            now: T0 + 2,
          })
          expect(result).toBeUndefined()
          expect(await store.getConnection(row.id)).toEqual(gone)
          expect(await store.recordRefreshFailure('no-such-id', 1, { error: 'x', now: T0 })).toBeUndefined()
        })
      })

      describe('reauthorizeConnection', () => {
        it('replaces the authorization, reactivates, clears failures and the lease, bumps the version', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const leased = defined(await store.acquireLease(row.id, 'worker-1', T0 + MINUTE, T0))
          const marked = defined(
            await store.recordRefreshFailure(row.id, leased.version, {
              error: 'lwa_invalid_grant',
              status: 'needs_reauthorization',
              now: T0 + 1,
            }),
          )
          const update = reauthorization()
          const re = defined(await store.reauthorizeConnection(row.id, update))
          expect(re).toEqual({
            ...marked,
            accountType: update.accountType,
            tenantId: update.tenantId,
            status: 'active',
            statusReason: null,
            refreshTokenCiphertext: update.refreshTokenCiphertext,
            accessTokenCiphertext: update.accessTokenCiphertext,
            accessTokenExpiresAt: update.accessTokenExpiresAt,
            authorizedAt: update.authorizedAt,
            reauthorizeBy: update.reauthorizeBy,
            lastRefreshError: null,
            failureCount: 0,
            leaseOwner: null,
            leaseUntil: null,
            version: marked.version + 1,
            updatedAt: update.now,
          })
          expect(await store.getConnection(row.id)).toEqual(re)
        })

        it('wins unconditionally, even with an earlier expiry or none, and fences out older writers', async () => {
          const row = defined(
            await store.insertConnection(newConnection({ accessTokenExpiresAt: T0 + 9 * HOUR })),
          )
          const re = defined(
            await store.reauthorizeConnection(
              row.id,
              reauthorization({ accessTokenCiphertext: null, accessTokenExpiresAt: null }),
            ),
          )
          expect(re.accessTokenExpiresAt).toBeNull()
          const stale = await store.updateTokens(row.id, row.version, {
            accessTokenCiphertext: 'stale',
            accessTokenExpiresAt: T0 + 10 * HOUR,
            now: T0 + 3 * HOUR,
          })
          expect(stale).toBeUndefined()
          expect(await store.getConnection(row.id)).toEqual(re)
        })

        it('reconnects a disconnected connection', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await store.disconnectConnection(row.id, T0 + 1)
          const re = defined(await store.reauthorizeConnection(row.id, reauthorization()))
          expect(re.status).toBe('active')
          expect(re.refreshTokenCiphertext).toBe('refresh-ct-new')
          expect(await store.acquireLease(row.id, 'w', T0 + 3 * HOUR, T0 + 2 * HOUR)).toBeDefined()
        })

        it('misses unknown ids', async () => {
          expect(await store.reauthorizeConnection('no-such-id', reauthorization())).toBeUndefined()
        })

        it('never moves a connection to another tenant, or between a tenant and none', async () => {
          const owned = defined(await store.insertConnection(newConnection()))
          const tenantless = defined(await store.insertConnection(newConnection({ tenantId: null })))
          expect(
            await store.reauthorizeConnection(owned.id, reauthorization({ tenantId: 'tenant-2' })),
          ).toBeUndefined()
          expect(
            await store.reauthorizeConnection(owned.id, reauthorization({ tenantId: null })),
          ).toBeUndefined()
          expect(await store.reauthorizeConnection(tenantless.id, reauthorization())).toBeUndefined()
          expect(await store.getConnection(owned.id)).toEqual(owned)
          expect(await store.getConnection(tenantless.id)).toEqual(tenantless)
          expect(
            await store.reauthorizeConnection(tenantless.id, reauthorization({ tenantId: null })),
          ).toMatchObject({ tenantId: null, refreshTokenCiphertext: 'refresh-ct-new' })
        })

        it('keeps the recorded account fingerprint unless a new one is given', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          expect(row.accountFingerprint).toBe('v1:first')
          const kept = defined(await store.reauthorizeConnection(row.id, reauthorization()))
          expect(kept.accountFingerprint).toBe('v1:first')
          const replaced = defined(
            await store.reauthorizeConnection(row.id, reauthorization({ accountFingerprint: 'v1:second' })),
          )
          expect(replaced.accountFingerprint).toBe('v1:second')
        })
      })

      describe('leases', () => {
        it('takes a free lease without bumping the version', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const leased = defined(await store.acquireLease(row.id, 'worker-1', T0 + MINUTE, T0))
          expect(leased).toEqual({ ...row, leaseOwner: 'worker-1', leaseUntil: T0 + MINUTE })
          expect(await store.getConnection(row.id)).toEqual(leased)
        })

        it('refuses a lease someone else holds until it expires', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await store.acquireLease(row.id, 'worker-1', T0 + MINUTE, T0)
          expect(await store.acquireLease(row.id, 'worker-2', T0 + 2 * MINUTE, T0 + 1)).toBeUndefined()
          expect(
            await store.acquireLease(row.id, 'worker-2', T0 + 2 * MINUTE, T0 + MINUTE - 1),
          ).toBeUndefined()
          expect((await store.getConnection(row.id))?.leaseOwner).toBe('worker-1')
          // Expired exactly at lease_until.
          const taken = defined(await store.acquireLease(row.id, 'worker-2', T0 + 2 * MINUTE, T0 + MINUTE))
          expect(taken.leaseOwner).toBe('worker-2')
          expect(taken.leaseUntil).toBe(T0 + 2 * MINUTE)
        })

        it('lets the holder take it again to extend it', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await store.acquireLease(row.id, 'worker-1', T0 + MINUTE, T0)
          const again = defined(await store.acquireLease(row.id, 'worker-1', T0 + 5 * MINUTE, T0 + 1))
          expect(again.leaseUntil).toBe(T0 + 5 * MINUTE)
        })

        it('releases only for the holder', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await store.acquireLease(row.id, 'worker-1', T0 + MINUTE, T0)
          await store.releaseLease(row.id, 'worker-2')
          expect((await store.getConnection(row.id))?.leaseOwner).toBe('worker-1')
          await store.releaseLease(row.id, 'worker-1')
          const freed = defined(await store.getConnection(row.id))
          expect(freed.leaseOwner).toBeNull()
          expect(freed.leaseUntil).toBeNull()
          expect(freed.version).toBe(row.version)
          expect(await store.acquireLease(row.id, 'worker-2', T0 + MINUTE, T0 + 1)).toBeDefined()
          await store.releaseLease('no-such-id', 'worker-2')
        })

        it('does not let a slow holder release its successor’s lease', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await store.acquireLease(row.id, 'slow', T0 + MINUTE, T0)
          await store.acquireLease(row.id, 'next', T0 + 3 * MINUTE, T0 + 2 * MINUTE)
          await store.releaseLease(row.id, 'slow')
          expect((await store.getConnection(row.id))?.leaseOwner).toBe('next')
        })

        it('lets exactly one of 20 concurrent contenders win', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) => store.acquireLease(row.id, `worker-${i}`, T0 + MINUTE, T0)),
          )
          expect(count(results)).toBe(1)
        })

        it('lets exactly one contender win across two handles', async () => {
          const second = await another()
          if (second === undefined) return
          for (let round = 0; round < 10; round++) {
            const row = defined(await store.insertConnection(newConnection()))
            const results = await Promise.all(
              Array.from({ length: 10 }, (_, i) =>
                (i % 2 === 0 ? store : second).acquireLease(row.id, `worker-${i}`, T0 + MINUTE, T0),
              ),
            )
            expect(count(results)).toBe(1)
            const winner = results.find((r) => r !== undefined)
            expect((await second.getConnection(row.id))?.leaseOwner).toBe(winner?.leaseOwner)
          }
        })

        it('refuses disconnected and unknown connections', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await store.disconnectConnection(row.id, T0 + 1)
          expect(await store.acquireLease(row.id, 'worker-1', T0 + MINUTE, T0 + 2)).toBeUndefined()
          expect(await store.acquireLease('no-such-id', 'worker-1', T0 + MINUTE, T0)).toBeUndefined()
        })

        it('can be taken on a connection that needs re-authorization', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await store.recordRefreshFailure(row.id, row.version, {
            error: 'lwa_invalid_grant',
            status: 'needs_reauthorization',
            now: T0 + 1,
          })
          expect(await store.acquireLease(row.id, 'worker-1', T0 + MINUTE, T0 + 2)).toBeDefined()
        })
      })

      describe('disconnectConnection', () => {
        it('deletes the tokens and the lease, marks it disconnected, bumps the version', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await store.acquireLease(row.id, 'worker-1', T0 + MINUTE, T0)
          const gone = defined(await store.disconnectConnection(row.id, T0 + 5))
          expect(gone).toEqual({
            ...row,
            status: 'disconnected',
            statusReason: null,
            refreshTokenCiphertext: null,
            accessTokenCiphertext: null,
            accessTokenExpiresAt: null,
            leaseOwner: null,
            leaseUntil: null,
            version: row.version + 1,
            updatedAt: T0 + 5,
          })
          expect(await store.getConnection(row.id)).toEqual(gone)
          expect(await store.findConnection(row.sellingPartnerId, row.region)).toEqual(gone)
        })

        it('keeps the seller’s slot: a new insert for it is refused, so the caller re-authorizes', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await store.disconnectConnection(row.id, T0 + 1)
          const again = await store.insertConnection(
            newConnection({ sellingPartnerId: row.sellingPartnerId, region: row.region }),
          )
          expect(again).toBeUndefined()
        })

        it('misses unknown ids', async () => {
          expect(await store.disconnectConnection('no-such-id', T0)).toBeUndefined()
        })
      })

      describe('waitForConnectionChange', () => {
        /** Long enough that only a wake-up (or a hung test) can end it. */
        const LONG = 10 * MINUTE
        /** How long a test gives a wake-up before calling the wait stuck: a liveness bound, not a timing. */
        const WAKE_BOUND_MS = 10_000

        /** 'woken' when the wait resolves within the bound, 'still waiting' otherwise. */
        async function outcome(wait: Promise<void>): Promise<'woken' | 'still waiting'> {
          let timer: ReturnType<typeof setTimeout> | undefined
          const bound = new Promise<'still waiting'>((resolve) => {
            timer = setTimeout(() => resolve('still waiting'), WAKE_BOUND_MS)
          })
          try {
            return await Promise.race([wait.then(() => 'woken' as const), bound])
          } finally {
            clearTimeout(timer)
          }
        }

        /** Every write that must wake a waiter, each changing the row from its current state. */
        const wakingWrites: ReadonlyArray<
          readonly [string, (s: Store, row: ConnectionRecord) => Promise<unknown>]
        > = [
          [
            'updateTokens',
            (s, row) =>
              s.updateTokens(row.id, row.version, {
                accessTokenCiphertext: 'access-ct-woke',
                accessTokenExpiresAt: T0 + 3 * HOUR,
                now: T0 + 1,
              }),
          ],
          [
            'recordRefreshFailure',
            (s, row) =>
              s.recordRefreshFailure(row.id, row.version, { error: 'lwa_server_error', now: T0 + 2 }),
          ],
          ['releaseLease', (s, row) => s.releaseLease(row.id, row.leaseOwner ?? 'nobody')],
          ['reauthorizeConnection', (s, row) => s.reauthorizeConnection(row.id, reauthorization())],
          ['disconnectConnection', (s, row) => s.disconnectConnection(row.id, T0 + 3 * HOUR)],
        ]

        /** Runs each waking write in turn (through `writer`), with a waiter on `waiter` for each. */
        async function expectEachWriteWakes(waiter: Store, writer: Store): Promise<void> {
          const inserted = defined(await store.insertConnection(newConnection()))
          for (const [name, write] of wakingWrites) {
            if (name === 'releaseLease') await store.acquireLease(inserted.id, 'holder', T0 + HOUR, T0)
            const row = defined(await store.getConnection(inserted.id))
            const waits = [
              waiter.waitForConnectionChange(row.id, LONG),
              waiter.waitForConnectionChange(row.id, LONG),
            ]
            await write(writer, row)
            expect([name, await outcome(waits[0] as Promise<void>)]).toEqual([name, 'woken'])
            expect([name, await outcome(waits[1] as Promise<void>)]).toEqual([name, 'woken'])
            expect(await store.getConnection(row.id)).not.toEqual(row)
          }
        }

        it('resolves (never rejects) when the timeout passes, for known and unknown connections', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await expect(store.waitForConnectionChange(row.id, 20)).resolves.toBeUndefined()
          await expect(store.waitForConnectionChange('no-such-id', 1)).resolves.toBeUndefined()
          // Odd timeouts are not errors either.
          await expect(store.waitForConnectionChange(row.id, 0)).resolves.toBeUndefined()
          await expect(store.waitForConnectionChange(row.id, -5)).resolves.toBeUndefined()
          await expect(store.waitForConnectionChange(row.id, Number.NaN)).resolves.toBeUndefined()
        })

        it('wakes every waiter on the connection when this handle writes it, for each waking write', async () => {
          await expectEachWriteWakes(store, store)
        })

        it('wakes waiters on this handle when another handle writes (where the backend can tell)', async () => {
          if (subject.wakesAcrossHandles !== true) return
          const second = defined(await another())
          await expectEachWriteWakes(store, second)
          // And the other way round.
          await expectEachWriteWakes(second, store)
        })

        it('rejects with the abort reason when aborted, before or during the wait, and only then', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const reason = new Error('caller gave up')
          await expect(store.waitForConnectionChange(row.id, LONG, AbortSignal.abort(reason))).rejects.toBe(
            reason,
          )
          const controller = new AbortController()
          const waiting = store.waitForConnectionChange(row.id, LONG, controller.signal)
          controller.abort(reason)
          await expect(waiting).rejects.toBe(reason)
          // A signal that is never aborted changes nothing: the timeout still resolves the wait.
          const calm = new AbortController()
          await expect(store.waitForConnectionChange(row.id, 10, calm.signal)).resolves.toBeUndefined()
          // An abort after the wait ended is ignored.
          calm.abort(reason)
          // Aborting one waiter leaves the others waiting for the write.
          const left = new AbortController()
          const aborted = store.waitForConnectionChange(row.id, LONG, left.signal)
          const kept = store.waitForConnectionChange(row.id, LONG)
          left.abort(reason)
          await expect(aborted).rejects.toBe(reason)
          await store.disconnectConnection(row.id, T0 + 1)
          expect(await outcome(kept)).toBe('woken')
        })

        it('ends pending waits when the store is closed, and later waits at once', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const pending = store.waitForConnectionChange(row.id, LONG)
          await store.close()
          expect(await outcome(pending)).toBe('woken')
          expect(await outcome(store.waitForConnectionChange(row.id, LONG))).toBe('woken')
        })
      })

      describe('events', () => {
        it('round-trips events and lists them newest first', async () => {
          const con = defined(await store.insertConnection(newConnection()))
          const e1 = {
            id: 'evt-1',
            type: 'connection.created',
            connectionId: con.id,
            data: { flow: 'website' },
            createdAt: T0,
          }
          const e2 = {
            id: 'evt-2',
            type: 'connection.refresh_failed',
            connectionId: con.id,
            data: { error: 'lwa_server_error', failureCount: 2, nested: { list: [1, 'two', null, true] } },
            createdAt: T0 + 1,
          }
          const e3 = { id: 'evt-3', type: 'app.alarm', connectionId: null, data: {}, createdAt: T0 + 2 }
          for (const e of [e1, e2, e3]) await store.appendEvent(e)
          expect(await store.listEvents()).toEqual([e3, e2, e1])
          expect(await store.listEvents({ connectionId: con.id })).toEqual([e2, e1])
          expect(await store.listEvents({ connectionId: con.id, limit: 1 })).toEqual([e2])
          expect(await store.listEvents({ connectionId: 'no-such-id' })).toEqual([])
          await expect(store.appendEvent(e1)).rejects.toThrow()
        })

        it('orders events at the same time by id and caps the page size', async () => {
          for (let i = 0; i < 105; i++) {
            await store.appendEvent({
              id: `evt-${String(i).padStart(3, '0')}`,
              type: 't',
              connectionId: null,
              data: { i },
              createdAt: T0,
            })
          }
          const page = await store.listEvents()
          expect(page).toHaveLength(100)
          expect(page[0]?.id).toBe('evt-104')
          expect(page[99]?.id).toBe('evt-005')
          expect(await store.listEvents({ limit: 5000 })).toHaveLength(105)
        })
      })

      describe('events: type filter and lookup', () => {
        it('filters by type, alone and with the connection, and finds one event by id', async () => {
          const a = event({ id: 'evt-a', type: 'connection.created', connectionId: 'con-1', createdAt: T0 })
          const b = event({
            id: 'evt-b',
            type: 'connection.refresh_failed',
            connectionId: 'con-1',
            createdAt: T0 + 1,
          })
          const c = event({
            id: 'evt-c',
            type: 'connection.created',
            connectionId: 'con-2',
            createdAt: T0 + 2,
          })
          for (const e of [a, b, c]) await store.appendEvent(e)
          expect(await store.listEvents({ type: 'connection.created' })).toEqual([c, a])
          expect(await store.listEvents({ type: 'connection.created', connectionId: 'con-1' })).toEqual([a])
          expect(await store.listEvents({ type: 'connection.created', limit: 1 })).toEqual([c])
          expect(await store.listEvents({ type: 'no.such_type' })).toEqual([])
          expect(await store.getEvent('evt-b')).toEqual(b)
          expect(await store.getEvent('no-such-event')).toBeUndefined()
        })
      })

      describe('refresh backoff, usage and reminders on connections', () => {
        it('sets the backoff from a failure’s notBefore, keeps it without one, and a refresh clears it', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const one = defined(
            await store.recordRefreshFailure(row.id, row.version, {
              error: 'lwa_server_error',
              notBefore: T0 + 5 * MINUTE,
              now: T0 + 1,
            }),
          )
          expect(one).toEqual({
            ...row,
            lastRefreshError: 'lwa_server_error',
            failureCount: 1,
            refreshNotBefore: T0 + 5 * MINUTE,
            version: row.version + 1,
            updatedAt: T0 + 1,
          })
          const two = defined(
            await store.recordRefreshFailure(row.id, one.version, { error: 'lwa_unreachable', now: T0 + 2 }),
          )
          expect(two.refreshNotBefore).toBe(T0 + 5 * MINUTE)
          const three = defined(
            await store.recordRefreshFailure(row.id, two.version, {
              error: 'lwa_server_error',
              notBefore: T0 + 20 * MINUTE,
              now: T0 + 3,
            }),
          )
          expect(three.refreshNotBefore).toBe(T0 + 20 * MINUTE)
          const refreshed = defined(
            await store.updateTokens(row.id, three.version, {
              accessTokenCiphertext: 'access-ct-2',
              accessTokenExpiresAt: T0 + 2 * HOUR,
              now: T0 + 4,
            }),
          )
          expect(refreshed.refreshNotBefore).toBeNull()
          expect(refreshed.failureCount).toBe(0)
        })

        it('re-authorization clears the backoff and the reminders but keeps the last use', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await store.touchConnection(row.id, T0 + MINUTE)
          expect(await store.markReauthorizationReminder(row.id, row.authorizedAt, 30)).toBe(true)
          const failed = defined(
            await store.recordRefreshFailure(row.id, row.version, {
              error: 'lwa_server_error',
              notBefore: T0 + HOUR,
              now: T0 + 2,
            }),
          )
          expect(failed).toMatchObject({
            lastUsedAt: T0 + MINUTE,
            refreshNotBefore: T0 + HOUR,
            reauthReminderDays: 30,
          })
          const re = defined(await store.reauthorizeConnection(row.id, reauthorization()))
          expect(re).toMatchObject({
            lastUsedAt: T0 + MINUTE,
            refreshNotBefore: null,
            reauthReminderDays: null,
          })
          expect(await store.getConnection(row.id)).toEqual(re)
        })
      })

      describe('touchConnection', () => {
        it('records the last use without bumping the version or updated_at', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await store.touchConnection(row.id, T0 + MINUTE)
          expect(await store.getConnection(row.id)).toEqual({ ...row, lastUsedAt: T0 + MINUTE })
          await store.touchConnection(row.id, T0 + 5 * MINUTE)
          expect(await store.getConnection(row.id)).toEqual({ ...row, lastUsedAt: T0 + 5 * MINUTE })
          // A refresh fenced at the version read before the touches still lands.
          const refreshed = await store.updateTokens(row.id, row.version, {
            accessTokenCiphertext: 'access-ct-2',
            accessTokenExpiresAt: T0 + 2 * HOUR,
            now: T0 + 6 * MINUTE,
          })
          expect(refreshed?.lastUsedAt).toBe(T0 + 5 * MINUTE)
        })

        it('never moves the last use backwards', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          await store.touchConnection(row.id, T0 + 5 * MINUTE)
          await store.touchConnection(row.id, T0 + MINUTE)
          expect((await store.getConnection(row.id))?.lastUsedAt).toBe(T0 + 5 * MINUTE)
          await Promise.all(
            Array.from({ length: 10 }, (_, i) => store.touchConnection(row.id, T0 + 6 * MINUTE + i)),
          )
          expect((await store.getConnection(row.id))?.lastUsedAt).toBe(T0 + 6 * MINUTE + 9)
        })

        it('ignores unknown ids', async () => {
          await store.touchConnection('no-such-id', T0)
          expect(await store.listConnections()).toEqual([])
        })
      })

      describe('listRefreshCandidates', () => {
        const NOW = T0 + 100 * HOUR
        const query = {
          now: NOW,
          warmUsedSince: NOW - HOUR,
          warmExpiringBefore: NOW + 10 * MINUTE,
          idleCheckedBefore: NOW - 24 * HOUR,
          limit: 100,
        }
        const candidateIds = async (overrides: { limit?: number } = {}) =>
          (await store.listRefreshCandidates({ ...query, ...overrides })).map((c) => c.id)

        /** A connection authorized an hour ago (so not idle) and unused, unless told otherwise. */
        async function connection(
          id: string,
          options: { expiresAt?: number | null; usedAt?: number; authorizedAt?: number } = {},
        ): Promise<ConnectionRecord> {
          const expiresAt = options.expiresAt === undefined ? NOW + 50 * MINUTE : options.expiresAt
          const authorizedAt = options.authorizedAt ?? NOW - HOUR
          const row = defined(
            await store.insertConnection(
              newConnection({
                id,
                accessTokenCiphertext: expiresAt === null ? null : 'access-ct',
                accessTokenExpiresAt: expiresAt,
                authorizedAt,
                now: authorizedAt,
              }),
            ),
          )
          if (options.usedAt === undefined) return row
          await store.touchConnection(id, options.usedAt)
          return defined(await store.getConnection(id))
        }

        it('refreshBacklog counts the candidates without a limit and gives the earliest warm expiry', async () => {
          const { limit: _limit, ...unlimited } = query
          expect(await store.refreshBacklog(unlimited)).toEqual({ due: 0, earliestWarmExpiry: null })
          const used = NOW - MINUTE
          await connection('warm-expired', { usedAt: used, expiresAt: NOW - 2 * MINUTE })
          await connection('warm-soon', { usedAt: used, expiresAt: NOW + 5 * MINUTE })
          await connection('tokenless-used', { usedAt: used, expiresAt: null })
          await connection('idle', { expiresAt: NOW - 5 * HOUR, authorizedAt: NOW - 25 * HOUR })
          await connection('not-due', { usedAt: used, expiresAt: NOW + 50 * MINUTE })
          expect((await candidateIds()).sort()).toEqual([
            'idle',
            'tokenless-used',
            'warm-expired',
            'warm-soon',
          ])
          expect(await store.refreshBacklog(unlimited)).toEqual({
            due: 4,
            earliestWarmExpiry: NOW - 2 * MINUTE,
          })
        })

        it('countConnectionsByStatus counts each status present', async () => {
          expect(await store.countConnectionsByStatus()).toEqual({})
          await connection('a')
          await connection('b')
          const c = await connection('c')
          await store.disconnectConnection(c.id, NOW)
          expect(await store.countConnectionsByStatus()).toEqual({ active: 2, disconnected: 1 })
        })

        it('keeps warm the connections used since warmUsedSince that expire before warmExpiringBefore or have no token', async () => {
          const used = NOW - MINUTE
          await connection('warm', { usedAt: used, expiresAt: NOW + 5 * MINUTE })
          await connection('used-at-cutoff', { usedAt: NOW - HOUR, expiresAt: NOW + 5 * MINUTE })
          await connection('used-before-cutoff', { usedAt: NOW - HOUR - 1, expiresAt: NOW + 5 * MINUTE })
          await connection('never-used', { expiresAt: NOW + 5 * MINUTE })
          await connection('expires-at-cutoff', { usedAt: used, expiresAt: NOW + 10 * MINUTE })
          await connection('expires-before-cutoff', { usedAt: used, expiresAt: NOW + 10 * MINUTE - 1 })
          await connection('expires-later', { usedAt: used, expiresAt: NOW + 50 * MINUTE })
          await connection('tokenless-used', { usedAt: used, expiresAt: null })
          await connection('tokenless-unused', { expiresAt: null })
          await connection('expired-used', { usedAt: used, expiresAt: NOW - MINUTE })
          expect(await candidateIds()).toEqual([
            'tokenless-used',
            'expired-used',
            'used-at-cutoff',
            'warm',
            'expires-before-cutoff',
          ])
        })

        it('health-checks connections whose last refresh, or else authorization, is at or before idleCheckedBefore', async () => {
          const cutoff = NOW - 24 * HOUR
          await connection('auth-at-cutoff', { authorizedAt: cutoff })
          await connection('auth-after-cutoff', { authorizedAt: cutoff + 1 })
          await connection('auth-long-ago', { authorizedAt: T0 })
          const refreshedAtCutoff = await connection('refreshed-at-cutoff', { authorizedAt: T0 })
          const refreshedLater = await connection('refreshed-after-cutoff', { authorizedAt: T0 })
          for (const [row, now] of [
            [refreshedAtCutoff, cutoff],
            [refreshedLater, cutoff + 1],
          ] as const) {
            defined(
              await store.updateTokens(row.id, row.version, {
                accessTokenCiphertext: 'access-ct-2',
                accessTokenExpiresAt: NOW + 50 * MINUTE,
                now,
              }),
            )
          }
          expect(await candidateIds()).toEqual(['auth-at-cutoff', 'auth-long-ago', 'refreshed-at-cutoff'])
        })

        it('skips connections in backoff, leased, not active, or without a refresh token', async () => {
          const warm = { usedAt: NOW - MINUTE, expiresAt: NOW + 5 * MINUTE }
          const backoffLater = await connection('backoff-later', warm)
          await store.recordRefreshFailure(backoffLater.id, backoffLater.version, {
            error: 'lwa_server_error',
            notBefore: NOW + 1,
            now: NOW - 2 * MINUTE,
          })
          const backoffOver = await connection('backoff-over', warm)
          await store.recordRefreshFailure(backoffOver.id, backoffOver.version, {
            error: 'lwa_server_error',
            notBefore: NOW,
            now: NOW - 2 * MINUTE,
          })
          const idleBackoff = await connection('idle-backoff', { authorizedAt: T0 })
          await store.recordRefreshFailure(idleBackoff.id, idleBackoff.version, {
            error: 'lwa_server_error',
            notBefore: NOW + HOUR,
            now: NOW - 2 * MINUTE,
          })
          await connection('leased', warm)
          defined(await store.acquireLease('leased', 'worker-1', NOW + 1, NOW - MINUTE))
          await connection('lease-expired', warm)
          defined(await store.acquireLease('lease-expired', 'worker-1', NOW, NOW - MINUTE))
          await connection('idle-leased', { authorizedAt: T0 })
          defined(await store.acquireLease('idle-leased', 'worker-1', NOW + MINUTE, NOW - MINUTE))
          const needsReauth = await connection('needs-reauth', warm)
          await store.recordRefreshFailure(needsReauth.id, needsReauth.version, {
            error: 'lwa_invalid_grant',
            status: 'needs_reauthorization',
            now: NOW - 2 * MINUTE,
          })
          await connection('disconnected', { authorizedAt: T0 })
          await store.disconnectConnection('disconnected', NOW - 2 * MINUTE)
          const noRefresh = await connection('no-refresh-token', warm)
          expect(
            await store.replaceConnectionCiphertexts(noRefresh.id, noRefresh.version, {
              refreshTokenCiphertext: null,
              accessTokenCiphertext: 'access-ct',
            }),
          ).toBe(true)
          expect(await candidateIds()).toEqual(['backoff-over', 'lease-expired'])
        })

        it('orders tokenless first, then soonest expiry, then id, and honours the limit', async () => {
          const used = NOW - MINUTE
          await connection('c-late', { usedAt: used, expiresAt: NOW + 9 * MINUTE })
          await connection('c-idle', { authorizedAt: T0, expiresAt: NOW + 40 * MINUTE })
          await connection('c-b', { usedAt: used, expiresAt: NOW + MINUTE })
          await connection('c-z', { usedAt: used, expiresAt: null })
          await connection('c-a', { usedAt: used, expiresAt: NOW + MINUTE })
          await connection('c-y', { authorizedAt: T0, expiresAt: null })
          await connection('c-old', { usedAt: used, expiresAt: NOW - HOUR })
          const all = ['c-y', 'c-z', 'c-old', 'c-a', 'c-b', 'c-late', 'c-idle']
          expect(await candidateIds()).toEqual(all)
          expect(await candidateIds({ limit: 3 })).toEqual(all.slice(0, 3))
          const rows = await store.listRefreshCandidates(query)
          expect(rows[0]).toEqual(await store.getConnection('c-y'))
        })

        it('returns nothing when nothing is due', async () => {
          await connection('fresh', { usedAt: NOW - MINUTE })
          expect(await candidateIds()).toEqual([])
        })

        it('claimRefreshCandidates leases the same candidates in order, and a second claimer gets the rest', async () => {
          const used = NOW - MINUTE
          await connection('k-a', { usedAt: used, expiresAt: NOW + MINUTE })
          await connection('k-b', { usedAt: used, expiresAt: NOW + 2 * MINUTE })
          await connection('k-none', { usedAt: used, expiresAt: null })
          await connection('k-fresh', { usedAt: used, expiresAt: NOW + HOUR })
          const first = await store.claimRefreshCandidates({ ...query, limit: 2 }, 'one', NOW + MINUTE)
          expect(first.map((c) => [c.id, c.leaseOwner, c.leaseUntil])).toEqual([
            ['k-none', 'one', NOW + MINUTE],
            ['k-a', 'one', NOW + MINUTE],
          ])
          expect(first.map((c) => c.version)).toEqual([1, 1]) // a claim is a lease, not a write of tokens
          const second = await store.claimRefreshCandidates(query, 'two', NOW + MINUTE)
          expect(second.map((c) => c.id)).toEqual(['k-b'])
          expect(await store.claimRefreshCandidates(query, 'three', NOW + MINUTE)).toEqual([])
          // The owner refreshes under its claim: acquireLease accepts it, and releasing frees the row.
          expect(await store.acquireLease('k-a', 'one', NOW + 2 * MINUTE, NOW)).toBeDefined()
          await store.releaseLease('k-a', 'one')
          expect((await store.claimRefreshCandidates(query, 'three', NOW + MINUTE)).map((c) => c.id)).toEqual(
            ['k-a'],
          )
          // Expired claims are claimable again.
          const later = { ...query, now: NOW + 2 * MINUTE }
          expect(
            (await store.claimRefreshCandidates(later, 'four', NOW + 3 * MINUTE)).map((c) => c.id).sort(),
          ).toEqual(['k-a', 'k-b', 'k-none'])
        })

        it('claimRefreshCandidates never hands one row to two concurrent claimers', async () => {
          const used = NOW - MINUTE
          for (let i = 0; i < 30; i++)
            await connection(`cc-${String(i).padStart(2, '0')}`, { usedAt: used, expiresAt: null })
          const claims = await Promise.all(
            Array.from({ length: 10 }, (_, i) =>
              store.claimRefreshCandidates({ ...query, limit: 4 }, `w${i}`, NOW + MINUTE),
            ),
          )
          const ids = claims.flat().map((c) => c.id)
          expect(new Set(ids).size).toBe(ids.length)
          expect(ids.length).toBe(30)
        })
      })

      describe('listConnectionsReauthorizeBefore', () => {
        it('lists active connections due at or before the cutoff, soonest first, then by id, up to the limit', async () => {
          const B = T0 + 300 * 24 * HOUR
          const plan: Array<[string, number]> = [
            ['r-c', B + 1],
            ['r-b', B],
            ['r-g', B - 1],
            ['r-a', B - 1],
            ['r-d', B - 2],
            ['r-e', B - 5],
            ['r-f', B - 5],
          ]
          for (const [id, reauthorizeBy] of plan)
            await store.insertConnection(newConnection({ id, reauthorizeBy }))
          const e = defined(await store.getConnection('r-e'))
          await store.recordRefreshFailure(e.id, e.version, {
            error: 'lwa_invalid_grant',
            status: 'needs_reauthorization',
            now: T0 + 1,
          })
          await store.disconnectConnection('r-f', T0 + 1)
          const ids = async (before: number, limit: number) =>
            (await store.listConnectionsReauthorizeBefore(before, limit)).map((c) => c.id)
          expect(await ids(B, 100)).toEqual(['r-d', 'r-a', 'r-g', 'r-b'])
          expect(await ids(B, 2)).toEqual(['r-d', 'r-a'])
          expect(await ids(B - 3, 100)).toEqual([])
          expect(await ids(B + 1, 100)).toEqual(['r-d', 'r-a', 'r-g', 'r-b', 'r-c'])
          expect((await store.listConnectionsReauthorizeBefore(B, 1))[0]).toEqual(
            await store.getConnection('r-d'),
          )
        })
      })

      describe('markReauthorizationReminder', () => {
        it('records each smaller reminder once, refuses larger or repeated ones, and does not bump the version', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          expect(await store.markReauthorizationReminder(row.id, row.authorizedAt, 30)).toBe(true)
          expect(await store.markReauthorizationReminder(row.id, row.authorizedAt, 30)).toBe(false)
          expect(await store.markReauthorizationReminder(row.id, row.authorizedAt, 60)).toBe(false)
          expect(await store.getConnection(row.id)).toEqual({ ...row, reauthReminderDays: 30 })
          expect(await store.markReauthorizationReminder(row.id, row.authorizedAt, 7)).toBe(true)
          expect(await store.markReauthorizationReminder(row.id, row.authorizedAt, 7)).toBe(false)
          expect(await store.markReauthorizationReminder(row.id, row.authorizedAt, 30)).toBe(false)
          expect(await store.markReauthorizationReminder(row.id, row.authorizedAt, 1)).toBe(true)
          expect(await store.markReauthorizationReminder(row.id, row.authorizedAt, 0)).toBe(true)
          expect(await store.getConnection(row.id)).toEqual({ ...row, reauthReminderDays: 0 })
        })

        it('refuses a reminder for another authorization; re-authorization starts over', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          expect(await store.markReauthorizationReminder(row.id, row.authorizedAt + 1, 30)).toBe(false)
          expect(await store.markReauthorizationReminder(row.id, row.authorizedAt, 7)).toBe(true)
          const update = reauthorization()
          const re = defined(await store.reauthorizeConnection(row.id, update))
          expect(re.reauthReminderDays).toBeNull()
          // The old authorization's reminders are over, whatever their size.
          expect(await store.markReauthorizationReminder(row.id, row.authorizedAt, 1)).toBe(false)
          expect(await store.markReauthorizationReminder(row.id, update.authorizedAt, 30)).toBe(true)
          expect((await store.getConnection(row.id))?.reauthReminderDays).toBe(30)
        })

        it('misses unknown ids', async () => {
          expect(await store.markReauthorizationReminder('no-such-id', T0, 30)).toBe(false)
        })

        it('lets exactly one of many concurrent senders record the same reminder, across handles', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const second = await another()
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              (second !== undefined && i % 2 === 1 ? second : store).markReauthorizationReminder(
                row.id,
                row.authorizedAt,
                7,
              ),
            ),
          )
          expect(results.filter(Boolean)).toHaveLength(1)
        })
      })

      describe('key rotation', () => {
        it('lists ciphertexts and versions by id, paging after an id, disconnected ones included', async () => {
          for (const id of ['k-c', 'k-a', 'k-d', 'k-b']) await store.insertConnection(newConnection({ id }))
          const c = defined(
            await store.updateTokens('k-c', 1, {
              accessTokenCiphertext: 'access-c',
              accessTokenExpiresAt: T0 + 2 * HOUR,
              now: T0 + 1,
            }),
          )
          const d = defined(await store.disconnectConnection('k-d', T0 + 1))
          const a = defined(await store.getConnection('k-a'))
          const all = await store.listConnectionCiphertexts(undefined, 100)
          expect(all.map((x) => x.id)).toEqual(['k-a', 'k-b', 'k-c', 'k-d'])
          expect(all[0]).toEqual({
            id: 'k-a',
            version: a.version,
            refreshTokenCiphertext: a.refreshTokenCiphertext,
            accessTokenCiphertext: a.accessTokenCiphertext,
          })
          expect(all[2]).toEqual({
            id: 'k-c',
            version: c.version,
            refreshTokenCiphertext: c.refreshTokenCiphertext,
            accessTokenCiphertext: 'access-c',
          })
          expect(all[3]).toEqual({
            id: 'k-d',
            version: d.version,
            refreshTokenCiphertext: null,
            accessTokenCiphertext: null,
          })
          const page = async (after: string | undefined, limit: number) =>
            (await store.listConnectionCiphertexts(after, limit)).map((x) => x.id)
          expect(await page(undefined, 3)).toEqual(['k-a', 'k-b', 'k-c'])
          expect(await page('k-c', 3)).toEqual(['k-d'])
          expect(await page('k-d', 3)).toEqual([])
          // The cursor is a position, not a row that must exist.
          expect(await page('k-bb', 3)).toEqual(['k-c', 'k-d'])
        })

        it('replaces both ciphertexts at the expected version without bumping it or updated_at', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          expect(
            await store.replaceConnectionCiphertexts(row.id, row.version, {
              refreshTokenCiphertext: 'refresh-k2',
              accessTokenCiphertext: 'access-k2',
            }),
          ).toBe(true)
          const replaced = defined(await store.getConnection(row.id))
          expect(replaced).toEqual({
            ...row,
            refreshTokenCiphertext: 'refresh-k2',
            accessTokenCiphertext: 'access-k2',
          })
          // A refresh that read the row before the re-encryption still lands, and keeps the new refresh ciphertext.
          const refreshed = defined(
            await store.updateTokens(row.id, row.version, {
              accessTokenCiphertext: 'access-k2-refreshed',
              accessTokenExpiresAt: T0 + 2 * HOUR,
              now: T0 + 1,
            }),
          )
          expect(refreshed.refreshTokenCiphertext).toBe('refresh-k2')
          expect(refreshed.version).toBe(row.version + 1)
        })

        it('refuses a stale version and leaves the row alone', async () => {
          const row = defined(await store.insertConnection(newConnection()))
          const refreshed = defined(
            await store.updateTokens(row.id, row.version, {
              accessTokenCiphertext: 'access-new',
              accessTokenExpiresAt: T0 + 2 * HOUR,
              now: T0 + 1,
            }),
          )
          expect(
            await store.replaceConnectionCiphertexts(row.id, row.version, {
              refreshTokenCiphertext: 'refresh-k2',
              accessTokenCiphertext: 'stale-access-k2',
            }),
          ).toBe(false)
          expect(await store.getConnection(row.id)).toEqual(refreshed)
          expect(
            await store.replaceConnectionCiphertexts('no-such-id', 1, {
              refreshTokenCiphertext: null,
              accessTokenCiphertext: null,
            }),
          ).toBe(false)
        })

        it('lists the distinct key ids named by stored ciphertexts, both token columns and app secrets', async () => {
          expect(await store.listCiphertextKeyIds()).toEqual([])
          await store.insertConnection(
            newConnection({
              refreshTokenCiphertext: 'v1.k-b.iv.tag.body',
              accessTokenCiphertext: 'v1.k2.i.t.b',
            }),
          )
          await store.insertConnection(
            newConnection({ refreshTokenCiphertext: 'v1.k-b.iv.tag.other', accessTokenCiphertext: null }),
          )
          // Not in the v1 format (a malformed or foreign value): no key id, and no error.
          await store.insertConnection(
            newConnection({ refreshTokenCiphertext: 'garbage', accessTokenCiphertext: 'v1.' }),
          )
          await store.insertAppSecret({
            id: unique('sec'),
            clientId: 'amzn1.application-oa2-client.keys',
            secretCiphertext: 'v1.A_app-key.iv.tag.body',
            state: 'active',
            createdAt: T0,
            expiresAt: null,
          })
          expect(await store.listCiphertextKeyIds()).toEqual(['A_app-key', 'k-b', 'k2'])
          // A disconnected connection holds no ciphertexts, so its key id is no longer listed.
          const only = defined(
            await store.insertConnection(newConnection({ refreshTokenCiphertext: 'v1.k-gone.a.b.c' })),
          )
          expect(await store.listCiphertextKeyIds()).toContain('k-gone')
          await store.disconnectConnection(only.id, T0 + 1)
          expect(await store.listCiphertextKeyIds()).not.toContain('k-gone')
        })
      })

      describe('app secrets', () => {
        function secret(overrides: Partial<AppSecretRecord> = {}): AppSecretRecord {
          return {
            id: unique('sec'),
            clientId: 'amzn1.application-oa2-client.one',
            secretCiphertext: 'secret-ct',
            state: 'active',
            createdAt: T0,
            expiresAt: T0 + 180 * 24 * HOUR,
            ...overrides,
          }
        }

        it('round-trips secrets and lists a client’s newest first, ties by id', async () => {
          const old = secret({ id: 'sec-old', createdAt: T0, state: 'retired', expiresAt: null })
          const newer = secret({ id: 'sec-b', createdAt: T0 + HOUR })
          const tie = secret({ id: 'sec-c', createdAt: T0 + HOUR })
          const other = secret({
            id: 'sec-other',
            clientId: 'amzn1.application-oa2-client.two',
            createdAt: T0 + 2 * HOUR,
          })
          for (const s of [old, newer, other, tie]) await store.insertAppSecret(s)
          expect(await store.listAppSecrets(old.clientId)).toEqual([tie, newer, old])
          expect(await store.listAppSecrets(other.clientId)).toEqual([other])
          expect(await store.listAppSecrets('no-such-client')).toEqual([])
          await expect(store.insertAppSecret({ ...old, secretCiphertext: 'other' })).rejects.toThrow()
        })

        it('updates only the fields given', async () => {
          const s = secret()
          await store.insertAppSecret(s)
          const current = async () => (await store.listAppSecrets(s.clientId))[0]
          await store.updateAppSecret(s.id, { state: 'retired' })
          expect(await current()).toEqual({ ...s, state: 'retired' })
          await store.updateAppSecret(s.id, { expiresAt: null })
          expect(await current()).toEqual({ ...s, state: 'retired', expiresAt: null })
          await store.updateAppSecret(s.id, { expiresAt: T0 + 5, secretCiphertext: 'secret-ct-k2' })
          expect(await current()).toEqual({
            ...s,
            state: 'retired',
            expiresAt: T0 + 5,
            secretCiphertext: 'secret-ct-k2',
          })
          await store.updateAppSecret(s.id, {})
          await store.updateAppSecret('no-such-secret', { state: 'active' })
          expect(await current()).toEqual({
            ...s,
            state: 'retired',
            expiresAt: T0 + 5,
            secretCiphertext: 'secret-ct-k2',
          })
        })
      })

      describe('webhook outbox', () => {
        const HOOK_A = 'https://app.example/hooks/a'
        const HOOK_B = 'https://app.example/hooks/b'
        const byUrl = (a: DeliveryRecord, b: DeliveryRecord) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0)
        const ids = (rows: readonly DeliveryRecord[]) => rows.map((r) => r.id)

        /** Appends one event at `createdAt` with one delivery per URL; returns the deliveries, ordered by URL. */
        async function deliveriesAt(
          createdAt: number,
          urls: readonly string[] = [HOOK_A],
        ): Promise<DeliveryRecord[]> {
          const e = event({ createdAt })
          await store.appendEvent(e, urls)
          return (await store.listDeliveries({ eventId: e.id })).sort(byUrl)
        }

        describe('appendEvent', () => {
          it('records the event with one pending delivery per URL, due at the event’s time', async () => {
            const e = event({ createdAt: T0 + 7 })
            await store.appendEvent(e, [HOOK_B, HOOK_A, HOOK_B])
            expect(await store.getEvent(e.id)).toEqual(e)
            const rows = (await store.listDeliveries({ eventId: e.id })).sort(byUrl)
            expect(rows).toEqual(
              [HOOK_A, HOOK_B].map((url) => ({
                id: expect.stringMatching(/^dlv_[A-Za-z0-9_-]{22}$/),
                eventId: e.id,
                url,
                status: 'pending',
                attempts: 0,
                nextAttemptAt: T0 + 7,
                lastStatusCode: null,
                lastError: null,
                leaseOwner: null,
                leaseUntil: null,
                createdAt: T0 + 7,
                updatedAt: T0 + 7,
                deliveredAt: null,
              })),
            )
            expect(new Set(ids(rows)).size).toBe(2)
          })

          it('records no deliveries without URLs', async () => {
            const e1 = event()
            const e2 = event()
            await store.appendEvent(e1)
            await store.appendEvent(e2, [])
            expect(await store.getEvent(e1.id)).toEqual(e1)
            expect(await store.getEvent(e2.id)).toEqual(e2)
            expect(await store.listDeliveries()).toEqual([])
          })

          it('records nothing when a delivery cannot be inserted', async () => {
            const e = event()
            // A NULL url violates NOT NULL on the second delivery row, after the event row went in.
            await expect(store.appendEvent(e, [HOOK_A, null as unknown as string])).rejects.toThrow()
            expect(await store.getEvent(e.id)).toBeUndefined()
            expect(await store.listEvents()).toEqual([])
            expect(await store.listDeliveries()).toEqual([])
            // The store is still usable afterwards.
            await store.appendEvent(e, [HOOK_A])
            expect(await store.listDeliveries({ eventId: e.id })).toHaveLength(1)
          })

          it('adds no deliveries when the event itself is refused', async () => {
            const e = event()
            await store.appendEvent(e, [HOOK_A])
            await expect(store.appendEvent({ ...e, type: 'other' }, [HOOK_B])).rejects.toThrow()
            const rows = await store.listDeliveries()
            expect(rows.map((r) => r.url)).toEqual([HOOK_A])
            expect(await store.getEvent(e.id)).toEqual(e)
          })

          it('appends concurrently from two handles while a third claims, each delivery claimed once', async () => {
            const second = await another()
            const third = await another()
            const writers = [store, second ?? store]
            const claimer = third ?? store
            let appending = true
            const appends = Promise.all(
              Array.from({ length: 30 }, (_, i) =>
                writers[i % 2]?.appendEvent(event({ createdAt: T0 + i }), [HOOK_A, HOOK_B]),
              ),
            ).finally(() => {
              appending = false
            })
            const claim = () => claimer.claimDueDeliveries(T0 + HOUR, 'claimer', T0 + 2 * HOUR, 7)
            // Claims interleave with the appends' transactions, then drain whatever is left.
            const claimed: DeliveryRecord[] = []
            while (appending) claimed.push(...(await claim()))
            await appends
            for (let more = await claim(); more.length > 0; more = await claim()) claimed.push(...more)
            expect(claimed).toHaveLength(60)
            expect(new Set(ids(claimed)).size).toBe(60)
            expect(await store.listEvents({ limit: 1000 })).toHaveLength(30)
          })
        })

        describe('pendingDeliveryStats', () => {
          it('counts pending deliveries and gives the oldest one’s creation time', async () => {
            expect(await store.pendingDeliveryStats()).toEqual({ pending: 0, oldestCreatedAt: null })
            await deliveriesAt(T0 + 5, [HOOK_A, HOOK_B])
            await deliveriesAt(T0 + 9)
            expect(await store.pendingDeliveryStats()).toEqual({ pending: 3, oldestCreatedAt: T0 + 5 })
            // One of the two from T0 + 5 delivered: the other still makes T0 + 5 the oldest.
            const [claimed] = await store.claimDueDeliveries(T0 + 5, 'w', T0 + HOUR, 1)
            expect(claimed?.createdAt).toBe(T0 + 5)
            await store.completeDelivery(defined(claimed).id, 'w', { ok: true, statusCode: 200, now: T0 + 6 })
            expect(await store.pendingDeliveryStats()).toEqual({ pending: 2, oldestCreatedAt: T0 + 5 })
          })
        })

        describe('claimDueDeliveries', () => {
          it('claims pending deliveries due at or before now, oldest due first, setting the lease', async () => {
            const [late] = await deliveriesAt(T0 + 20)
            const [due] = await deliveriesAt(T0 + 10)
            const [early] = await deliveriesAt(T0)
            const claimed = await store.claimDueDeliveries(T0 + 10, 'worker-1', T0 + MINUTE, 10)
            expect(ids(claimed)).toEqual([defined(early).id, defined(due).id])
            expect(claimed[0]).toEqual({ ...early, leaseOwner: 'worker-1', leaseUntil: T0 + MINUTE })
            expect((await store.listDeliveries({ eventId: defined(due).eventId }))[0]).toEqual(claimed[1])
            expect((await store.listDeliveries({ eventId: defined(late).eventId }))[0]).toEqual(late)
          })

          it('claims up to the limit, oldest first, then id', async () => {
            const rows: DeliveryRecord[] = []
            for (const at of [T0 + 4, T0 + 1, T0 + 3, T0 + 1, T0 + 2]) rows.push(...(await deliveriesAt(at)))
            const expected = [...rows]
              .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : 1))
              .map((r) => r.id)
            expect(ids(await store.claimDueDeliveries(T0 + 10, 'w', T0 + MINUTE, 2))).toEqual(
              expected.slice(0, 2),
            )
            expect(ids(await store.claimDueDeliveries(T0 + 10, 'w', T0 + MINUTE, 2))).toEqual(
              expected.slice(2, 4),
            )
            expect(ids(await store.claimDueDeliveries(T0 + 10, 'w', T0 + MINUTE, 2))).toEqual(
              expected.slice(4),
            )
            expect(await store.claimDueDeliveries(T0 + 10, 'w', T0 + MINUTE, 2)).toEqual([])
          })

          it('skips held leases, even its own, and reclaims expired ones exactly at lease_until', async () => {
            const [d] = await deliveriesAt(T0)
            const id = defined(d).id
            expect(ids(await store.claimDueDeliveries(T0, 'worker-1', T0 + MINUTE, 10))).toEqual([id])
            expect(await store.claimDueDeliveries(T0 + 1, 'worker-2', T0 + 2 * MINUTE, 10)).toEqual([])
            expect(await store.claimDueDeliveries(T0 + 1, 'worker-1', T0 + 2 * MINUTE, 10)).toEqual([])
            expect(await store.claimDueDeliveries(T0 + MINUTE - 1, 'worker-2', T0 + 2 * MINUTE, 10)).toEqual(
              [],
            )
            const taken = await store.claimDueDeliveries(T0 + MINUTE, 'worker-2', T0 + 3 * MINUTE, 10)
            expect(taken).toEqual([{ ...d, leaseOwner: 'worker-2', leaseUntil: T0 + 3 * MINUTE }])
          })

          it('skips delivered and failed deliveries', async () => {
            const [ok, gaveUp] = await deliveriesAt(T0, [HOOK_A, HOOK_B])
            await store.claimDueDeliveries(T0, 'w', T0 + MINUTE, 10)
            await store.completeDelivery(defined(ok).id, 'w', { ok: true, statusCode: 204, now: T0 + 1 })
            await store.completeDelivery(defined(gaveUp).id, 'w', {
              ok: false,
              statusCode: 410,
              error: 'http_410',
              nextAttemptAt: null,
              now: T0 + 1,
            })
            expect(await store.claimDueDeliveries(T0 + HOUR, 'w2', T0 + 2 * HOUR, 10)).toEqual([])
          })

          it('gives each delivery to exactly one of 20 concurrent claimers', async () => {
            for (let i = 0; i < 10; i++)
              await deliveriesAt(T0 + i, [HOOK_A, HOOK_B, 'https://app.example/hooks/c'])
            const results = await Promise.all(
              Array.from({ length: 20 }, (_, i) =>
                store.claimDueDeliveries(T0 + HOUR, `worker-${i}`, T0 + 2 * HOUR, 2),
              ),
            )
            const all = results.flat()
            expect(all).toHaveLength(30)
            expect(new Set(ids(all)).size).toBe(30)
            results.forEach((rows, i) => {
              for (const r of rows) expect(r.leaseOwner).toBe(`worker-${i}`)
            })
            const stored = await store.listDeliveries({ limit: 100 })
            const ownerOf = new Map(all.map((r) => [r.id, r.leaseOwner]))
            for (const r of stored) expect(r.leaseOwner).toBe(ownerOf.get(r.id))
          })

          it('gives each delivery to exactly one claimer across two handles', async () => {
            const second = await another()
            if (second === undefined) return
            for (let round = 0; round < 5; round++) {
              const now = T0 + round * HOUR
              for (let i = 0; i < 8; i++) await deliveriesAt(now, [HOOK_A, HOOK_B])
              const results = await Promise.all(
                Array.from({ length: 10 }, (_, i) =>
                  // Leases outlast every round, so each round can only claim its own deliveries.
                  (i % 2 === 0 ? store : second).claimDueDeliveries(
                    now,
                    `r${round}-w${i}`,
                    T0 + 100 * HOUR,
                    3,
                  ),
                ),
              )
              const all = results.flat()
              expect(all).toHaveLength(16)
              expect(new Set(ids(all)).size).toBe(16)
              for (const r of all) {
                const stored = (await second.listDeliveries({ eventId: r.eventId })).find(
                  (x) => x.id === r.id,
                )
                expect(stored?.leaseOwner).toBe(r.leaseOwner)
              }
            }
          })
        })

        describe('completeDelivery', () => {
          it('marks a success delivered, counts the attempt, clears the error and the lease', async () => {
            const [d] = await deliveriesAt(T0)
            const id = defined(d).id
            await store.claimDueDeliveries(T0, 'w1', T0 + MINUTE, 10)
            const retry = defined(
              await store.completeDelivery(id, 'w1', {
                ok: false,
                statusCode: 503,
                error: 'http_503',
                nextAttemptAt: T0 + 5 * MINUTE,
                now: T0 + 1,
              }),
            )
            expect(retry).toEqual({
              ...d,
              status: 'pending',
              attempts: 1,
              nextAttemptAt: T0 + 5 * MINUTE,
              lastStatusCode: 503,
              lastError: 'http_503',
              leaseOwner: null,
              leaseUntil: null,
              updatedAt: T0 + 1,
            })
            // Backoff: not due before nextAttemptAt, due at it.
            expect(await store.claimDueDeliveries(T0 + 5 * MINUTE - 1, 'w2', T0 + 6 * MINUTE, 10)).toEqual([])
            expect(ids(await store.claimDueDeliveries(T0 + 5 * MINUTE, 'w2', T0 + 6 * MINUTE, 10))).toEqual([
              id,
            ])
            const done = defined(
              await store.completeDelivery(id, 'w2', { ok: true, statusCode: 200, now: T0 + 5 * MINUTE + 3 }),
            )
            expect(done).toEqual({
              ...retry,
              status: 'delivered',
              attempts: 2,
              lastStatusCode: 200,
              lastError: null,
              deliveredAt: T0 + 5 * MINUTE + 3,
              updatedAt: T0 + 5 * MINUTE + 3,
            })
            expect((await store.listDeliveries({ eventId: done.eventId }))[0]).toEqual(done)
            expect(await store.claimDueDeliveries(T0 + 10 * HOUR, 'w3', T0 + 11 * HOUR, 10)).toEqual([])
          })

          it('gives up with status failed when there is no next attempt', async () => {
            const [d] = await deliveriesAt(T0)
            await store.claimDueDeliveries(T0, 'w1', T0 + MINUTE, 10)
            const failed = defined(
              await store.completeDelivery(defined(d).id, 'w1', {
                ok: false,
                statusCode: null,
                error: 'connection_refused',
                nextAttemptAt: null,
                now: T0 + 2,
              }),
            )
            expect(failed).toEqual({
              ...d,
              status: 'failed',
              attempts: 1,
              lastStatusCode: null,
              lastError: 'connection_refused',
              updatedAt: T0 + 2,
            })
            expect(await store.listDeliveries({ status: 'failed' })).toEqual([failed])
            expect(await store.claimDueDeliveries(T0 + HOUR, 'w2', T0 + 2 * HOUR, 10)).toEqual([])
          })

          it('accepts the result only from the lease owner, once', async () => {
            const [d] = await deliveriesAt(T0)
            const id = defined(d).id
            const success = { ok: true, statusCode: 200, now: T0 + 1 } as const
            // Not claimed: nobody holds it.
            expect(await store.completeDelivery(id, 'w1', success)).toBeUndefined()
            const [claimed] = await store.claimDueDeliveries(T0, 'w1', T0 + MINUTE, 10)
            expect(await store.completeDelivery(id, 'w2', success)).toBeUndefined()
            expect((await store.listDeliveries({ eventId: defined(d).eventId }))[0]).toEqual(claimed)
            // w1's lease runs out and w2 claims it: w1's late result is refused, w2's accepted.
            await store.claimDueDeliveries(T0 + MINUTE, 'w2', T0 + 2 * MINUTE, 10)
            expect(await store.completeDelivery(id, 'w1', success)).toBeUndefined()
            const done = defined(await store.completeDelivery(id, 'w2', success))
            expect(done.attempts).toBe(1)
            expect(await store.completeDelivery(id, 'w2', success)).toBeUndefined()
            expect(await store.completeDelivery('no-such-delivery', 'w2', success)).toBeUndefined()
          })

          it('still accepts the owner’s result after its lease ran out if nobody else claimed it', async () => {
            const [d] = await deliveriesAt(T0)
            await store.claimDueDeliveries(T0, 'w1', T0 + MINUTE, 10)
            const done = await store.completeDelivery(defined(d).id, 'w1', {
              ok: true,
              statusCode: 200,
              now: T0 + HOUR,
            })
            expect(done?.status).toBe('delivered')
          })

          it('truncates the error to 300 characters without splitting a character', async () => {
            const [a, b] = await deliveriesAt(T0, [HOOK_A, HOOK_B])
            await store.claimDueDeliveries(T0, 'w', T0 + MINUTE, 10)
            const failure = (error: string) =>
              ({ ok: false, statusCode: 500, error, nextAttemptAt: T0 + HOUR, now: T0 + 1 }) as const
            const long = defined(await store.completeDelivery(defined(a).id, 'w', failure('x'.repeat(301))))
            expect(long.lastError).toBe('x'.repeat(300))
            const emoji = defined(await store.completeDelivery(defined(b).id, 'w', failure('😀'.repeat(400))))
            expect(emoji.lastError).toBe('😀'.repeat(300))
          })
        })

        describe('listDeliveries', () => {
          it('filters by event and status, newest first, up to the limit', async () => {
            const first = await deliveriesAt(T0, [HOOK_A, HOOK_B])
            const second = await deliveriesAt(T0 + 1, [HOOK_A])
            await store.claimDueDeliveries(T0, 'w', T0 + MINUTE, 1)
            const [claimed] = first.filter(
              (d) => d.id === [...first].sort((x, y) => (x.id < y.id ? -1 : 1))[0]?.id,
            )
            await store.completeDelivery(defined(claimed).id, 'w', { ok: true, statusCode: 200, now: T0 + 2 })
            const all = await store.listDeliveries()
            expect(all).toHaveLength(3)
            expect(all[0]?.id).toBe(second[0]?.id)
            expect((await store.listDeliveries({ limit: 1 })).map((d) => d.id)).toEqual([second[0]?.id])
            expect(ids(await store.listDeliveries({ status: 'delivered' }))).toEqual([defined(claimed).id])
            const pendingOfFirst = await store.listDeliveries({
              eventId: defined(first[0]).eventId,
              status: 'pending',
            })
            expect(pendingOfFirst).toHaveLength(1)
            expect(pendingOfFirst[0]?.id).not.toBe(defined(claimed).id)
            expect(await store.listDeliveries({ eventId: 'no-such-event' })).toEqual([])
            expect(await store.listDeliveries({ status: 'failed' })).toEqual([])
          })
        })
      })
    })
  })
}
