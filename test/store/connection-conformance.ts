/**
 * `Store` conformance, `ConnectionStore`: connections, fenced token writes, leases and waits. Every rule in store.ts's doc comments for these
 * methods, races included; test/store/conformance.ts runs it for each backend.
 */
import fc from 'fast-check'
import { beforeEach, describe, expect, it } from 'vitest'
import type { ConnectionRecord, Store } from '../../src/store/store.ts'
import {
  count,
  defined,
  HOUR,
  MINUTE,
  newConnection,
  reauthorization,
  type StoreHarness,
  T0,
} from './fixtures.ts'

export function connectionConformance(h: StoreHarness): void {
  describe('ConnectionStore', () => {
    let store: Store
    const another = () => h.another()

    beforeEach(() => {
      store = h.store
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
        const row = defined(await store.insertConnection(newConnection({ accessTokenExpiresAt: T0 + HOUR })))
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
          fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 12 }), async (deltas) => {
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
          }),
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
        expect(await store.acquireLease(row.id, 'worker-2', T0 + 2 * MINUTE, T0 + MINUTE - 1)).toBeUndefined()
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
          (s, row) => s.recordRefreshFailure(row.id, row.version, { error: 'lwa_server_error', now: T0 + 2 }),
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
        if (h.subject.wakesAcrossHandles !== true) return
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
  })
}
