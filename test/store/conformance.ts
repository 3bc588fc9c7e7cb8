/**
 * The `Store` conformance suite: every rule in store.ts's doc comments, races included, one suite file per role
 * (test/store/*-conformance.ts). Each backend runs it with its own factory (a SQLite file, a PostgreSQL
 * schema), so both implement the same contract.
 */
import { afterEach, beforeEach, describe } from 'vitest'
import type { Store } from '../../src/store/store.ts'
import { authStateConformance } from './auth-state-conformance.ts'
import { connectionConformance } from './connection-conformance.ts'
import { eventConformance } from './event-conformance.ts'
import type { StoreHarness, StoreUnderTest } from './fixtures.ts'
import { lifecycleConformance } from './lifecycle-conformance.ts'
import { refresherConformance } from './refresher-conformance.ts'
import { keyRotationConformance } from './rotation-conformance.ts'
import { appSecretConformance } from './secret-conformance.ts'

export type { StoreUnderTest } from './fixtures.ts'

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

    const harness: StoreHarness = {
      get store() {
        return store
      },
      get subject() {
        return subject
      },
      another,
    }

    lifecycleConformance(harness)

    describe('with the schema', () => {
      beforeEach(async () => {
        await store.migrate()
      })

      authStateConformance(harness)
      connectionConformance(harness)
      refresherConformance(harness)
      eventConformance(harness)
      appSecretConformance(harness)
      keyRotationConformance(harness)
    })
  })
}
