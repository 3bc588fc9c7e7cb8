/**
 * `Store` conformance, `AuthStateStore`: auth states and connect sessions. Every rule in store.ts's doc comments for these
 * methods, races included; test/store/conformance.ts runs it for each backend.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import type { ConnectSessionRecord, Store } from '../../src/store/store.ts'
import { authState, HOUR, MINUTE, type StoreHarness, T0, unique } from './fixtures.ts'

export function authStateConformance(h: StoreHarness): void {
  describe('AuthStateStore', () => {
    let store: Store
    const another = () => h.another()

    beforeEach(() => {
      store = h.store
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
  })
}
