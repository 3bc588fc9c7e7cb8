/**
 * `Store` conformance, `StoreLifecycle`: migrate and pendingMigrations (run on an unmigrated store). Every rule in store.ts's doc comments for these
 * methods, races included; test/store/conformance.ts runs it for each backend.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import type { Store } from '../../src/store/store.ts'
import { authState, type StoreHarness } from './fixtures.ts'

export function lifecycleConformance(h: StoreHarness): void {
  describe('StoreLifecycle', () => {
    let store: Store
    const another = () => h.another()

    beforeEach(() => {
      store = h.store
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
  })
}
