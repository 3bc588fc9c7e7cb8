/**
 * `Store` conformance, `AppSecretStore`: LWA client secrets received through rotation. Every rule in store.ts's doc comments for these
 * methods, races included; test/store/conformance.ts runs it for each backend.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import type { AppSecretRecord, Store } from '../../src/store/store.ts'
import { HOUR, type StoreHarness, T0, unique } from './fixtures.ts'

export function appSecretConformance(h: StoreHarness): void {
  describe('AppSecretStore', () => {
    let store: Store

    beforeEach(() => {
      store = h.store
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
  })
}
