/**
 * The `Store` conformance suite: every rule in store.ts's doc comments, races included. Each backend runs it
 * with its own factory (SQLite files today, PostgreSQL later), so both implement the same contract.
 */
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type {
  AuthStateRecord,
  ConnectionRecord,
  ConnectSessionRecord,
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
    now: T0,
    ...overrides,
  }
}

function reauthorization(overrides: Partial<Reauthorization> = {}): Reauthorization {
  return {
    accountType: 'vendor',
    tenantId: 'tenant-2',
    refreshTokenCiphertext: 'refresh-ct-new',
    accessTokenCiphertext: 'access-ct-new',
    accessTokenExpiresAt: T0 + 5 * HOUR,
    authorizedAt: T0 + 2 * HOUR,
    reauthorizeBy: T0 + 2 * HOUR + 365 * 24 * HOUR,
    now: T0 + 2 * HOUR,
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
    })
  })
}
