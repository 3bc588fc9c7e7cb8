/**
 * `Store` conformance, `RefresherStore`: the background refresher's candidates, backoff and re-authorization reminders. Every rule in store.ts's doc comments for these
 * methods, races included; test/store/conformance.ts runs it for each backend.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import type { ConnectionRecord, Store } from '../../src/store/store.ts'
import { defined, HOUR, MINUTE, newConnection, reauthorization, type StoreHarness, T0 } from './fixtures.ts'

export function refresherConformance(h: StoreHarness): void {
  describe('RefresherStore', () => {
    let store: Store
    const another = () => h.another()

    beforeEach(() => {
      store = h.store
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
        expect((await candidateIds()).sort()).toEqual(['idle', 'tokenless-used', 'warm-expired', 'warm-soon'])
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
        expect((await store.claimRefreshCandidates(query, 'three', NOW + MINUTE)).map((c) => c.id)).toEqual([
          'k-a',
        ])
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
  })
}
