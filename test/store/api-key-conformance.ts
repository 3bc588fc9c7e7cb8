/**
 * Conformance of the API-key sub-store (`Store.apiKeys`, src/store/api-key-store.ts): the same rules on every
 * backend. Invoked from the SQLite and PostgreSQL store tests with their store factories.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { NewApiKey } from '../../src/store/api-key-store.ts'
import type { Store } from '../../src/store/store.ts'
import type { StoreUnderTest } from './conformance.ts'

const T0 = 1_800_000_000_000
const MINUTE = 60_000

let serial = 0
const unique = (prefix: string) => `${prefix}_${++serial}${Math.random().toString(36).slice(2, 8)}`

function newKey(overrides: Partial<NewApiKey> = {}): NewApiKey {
  return {
    id: unique('key'),
    name: 'backend',
    hash: unique('hash'),
    scopes: ['read', 'tokens'],
    tenants: ['tenant-a', 'tenant-b'],
    createdAt: T0,
    createdBy: 'cli',
    ...overrides,
  }
}

/** Registers the API-key sub-store tests for one backend (a fresh, unmigrated store per test). */
export function apiKeyConformanceSuite(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`API key store conformance: ${name}`, () => {
    let subject: StoreUnderTest
    let store: Store
    const extra: Store[] = []

    beforeEach(async () => {
      subject = await makeStore()
      store = subject.store
      await store.migrate()
    })

    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close()
      await subject.cleanup()
    })

    it('stores a key and finds it by id and by hash, with scopes and tenants as given', async () => {
      const key = newKey({ tenants: ['tenant-a', 'ünïcode tenant ✓', 'x'.repeat(256)] })
      await store.apiKeys.insert(key)
      const expected = { ...key, lastUsedAt: null, revokedAt: null }
      expect(await store.apiKeys.get(key.id)).toEqual(expected)
      expect(await store.apiKeys.findByHash(key.hash)).toEqual(expected)
      expect(await store.apiKeys.findByHash('no-such-hash')).toBeUndefined()
      expect(await store.apiKeys.get('key_missing')).toBeUndefined()
    })

    it('keeps null tenants as every tenant and refuses an empty tenant list', async () => {
      const all = newKey({ tenants: null, scopes: ['manage'] })
      await store.apiKeys.insert(all)
      expect((await store.apiKeys.get(all.id))?.tenants).toBeNull()
      await expect(store.apiKeys.insert(newKey({ tenants: [] }))).rejects.toMatchObject({
        code: 'invalid_request',
      })
    })

    it('refuses a second key with the same hash', async () => {
      const first = newKey()
      await store.apiKeys.insert(first)
      await expect(store.apiKeys.insert(newKey({ hash: first.hash }))).rejects.toThrow()
      expect(await store.apiKeys.list()).toHaveLength(1)
    })

    it('lists every key oldest first, revoked ones included', async () => {
      const b = newKey({ id: 'key_b', createdAt: T0 + 1 })
      const a = newKey({ id: 'key_a', createdAt: T0 + 1 })
      const first = newKey({ id: 'key_z', createdAt: T0 })
      for (const k of [b, a, first]) await store.apiKeys.insert(k)
      await store.apiKeys.revoke('key_a', T0 + 5)
      const listed = await store.apiKeys.list()
      expect(listed.map((k) => k.id)).toEqual(['key_z', 'key_a', 'key_b'])
      expect(listed[1]?.revokedAt).toBe(T0 + 5)
    })

    it('revokes once: a second revocation keeps the first time; an unknown id is undefined', async () => {
      const key = newKey()
      await store.apiKeys.insert(key)
      expect((await store.apiKeys.revoke(key.id, T0 + MINUTE))?.revokedAt).toBe(T0 + MINUTE)
      expect((await store.apiKeys.revoke(key.id, T0 + 2 * MINUTE))?.revokedAt).toBe(T0 + MINUTE)
      expect((await store.apiKeys.findByHash(key.hash))?.revokedAt).toBe(T0 + MINUTE)
      expect(await store.apiKeys.revoke('key_missing', T0)).toBeUndefined()
    })

    it('records use at most once per interval', async () => {
      const key = newKey()
      await store.apiKeys.insert(key)
      expect(await store.apiKeys.touch(key.id, T0 + MINUTE, 5 * MINUTE)).toBe(true)
      expect(await store.apiKeys.touch(key.id, T0 + 2 * MINUTE, 5 * MINUTE)).toBe(false)
      expect((await store.apiKeys.get(key.id))?.lastUsedAt).toBe(T0 + MINUTE)
      expect(await store.apiKeys.touch(key.id, T0 + 6 * MINUTE, 5 * MINUTE)).toBe(true)
      expect((await store.apiKeys.get(key.id))?.lastUsedAt).toBe(T0 + 6 * MINUTE)
      expect(await store.apiKeys.touch('key_missing', T0, 5 * MINUTE)).toBe(false)
    })

    it('lets exactly one of several handles record a use at the same time', async () => {
      const key = newKey()
      await store.apiKeys.insert(key)
      const handles = [store]
      if (subject.openAnother) {
        for (let i = 0; i < 2; i++) {
          const other = await subject.openAnother()
          extra.push(other)
          handles.push(other)
        }
      }
      const results = await Promise.all(
        handles.flatMap((h) => Array.from({ length: 5 }, () => h.apiKeys.touch(key.id, T0 + MINUTE, MINUTE))),
      )
      expect(results.filter(Boolean)).toHaveLength(1)
    })
  })
}
