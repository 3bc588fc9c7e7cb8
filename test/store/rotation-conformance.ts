/**
 * `Store` conformance, `KeyRotationStore`: re-encryption under a new key. Every rule in store.ts's doc comments for these
 * methods, races included; test/store/conformance.ts runs it for each backend.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import type { Store } from '../../src/store/store.ts'
import { defined, HOUR, newConnection, type StoreHarness, T0, unique } from './fixtures.ts'

export function keyRotationConformance(h: StoreHarness): void {
  describe('KeyRotationStore', () => {
    let store: Store

    beforeEach(() => {
      store = h.store
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
  })
}
