/**
 * Conformance of `store.operators` (src/store/operator-store.ts) on every backend: accounts with unique
 * emails, sessions that end at their idle or absolute deadline (checked and slid in one statement), deleting
 * an account ends its sessions, and the sweeper deletes exactly the expired sessions.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { OperatorAccountRecord, OperatorSessionRecord } from '../../src/store/operator-store.ts'
import type { Store } from '../../src/store/store.ts'
import type { StoreUnderTest } from './conformance.ts'

const T0 = 1_800_000_000_000
const MINUTE = 60_000
const IDLE = 30 * MINUTE

let serial = 0

function account(overrides: Partial<OperatorAccountRecord> = {}): OperatorAccountRecord {
  const n = ++serial
  return {
    id: `opr_${n}`,
    email: `op${n}@example.com`,
    passwordHash:
      '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g',
    createdAt: T0,
    updatedAt: T0,
    lastSignInAt: null,
    ...overrides,
  }
}

function session(overrides: Partial<OperatorSessionRecord> = {}): OperatorSessionRecord {
  return {
    idHash: `hash-${++serial}`,
    operatorId: null,
    label: 'dev',
    createdAt: T0,
    lastSeenAt: T0,
    idleExpiresAt: T0 + IDLE,
    absoluteExpiresAt: T0 + 12 * 60 * MINUTE,
    ...overrides,
  }
}

export function operatorStoreConformanceSuite(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`OperatorStore conformance: ${name}`, () => {
    let subject: StoreUnderTest
    let store: Store

    beforeEach(async () => {
      subject = await makeStore()
      store = subject.store
      await store.migrate()
    })
    afterEach(async () => {
      await subject.cleanup()
    })

    it('inserts an account once per email, reads it back, lists by email and deletes it', async () => {
      const a = account({ email: 'b@example.com' })
      expect(await store.operators.insertAccount(a)).toBe(true)
      expect(await store.operators.insertAccount(account({ email: 'b@example.com' }))).toBe(false)
      expect(await store.operators.insertAccount(account({ email: 'a@example.com' }))).toBe(true)
      expect(await store.operators.getAccountByEmail('b@example.com')).toEqual(a)
      expect(await store.operators.getAccountByEmail('nobody@example.com')).toBeUndefined()
      expect((await store.operators.listAccounts()).map((x) => x.email)).toEqual([
        'a@example.com',
        'b@example.com',
      ])
      await store.operators.recordSignIn(a.id, T0 + 5)
      expect((await store.operators.getAccountByEmail('b@example.com'))?.lastSignInAt).toBe(T0 + 5)
      expect(await store.operators.deleteAccount('b@example.com')).toBe(true)
      expect(await store.operators.deleteAccount('b@example.com')).toBe(false)
    })

    it('touches a live session, sliding its idle deadline but never past the absolute one', async () => {
      const s = session({ absoluteExpiresAt: T0 + 40 * MINUTE })
      await store.operators.insertSession(s)
      const first = await store.operators.touchSession(s.idHash, T0 + 20 * MINUTE, IDLE)
      expect(first?.lastSeenAt).toBe(T0 + 20 * MINUTE)
      expect(first?.idleExpiresAt).toBe(T0 + 40 * MINUTE)
      expect(await store.operators.touchSession(s.idHash, T0 + 40 * MINUTE, IDLE)).toBeUndefined()
      expect(await store.operators.touchSession('unknown', T0, IDLE)).toBeUndefined()
    })

    it('refuses a session whose idle deadline passed, even though its absolute one has not', async () => {
      const s = session()
      await store.operators.insertSession(s)
      expect(await store.operators.touchSession(s.idHash, T0 + IDLE, IDLE)).toBeUndefined()
      // A refused touch does not revive it.
      expect(await store.operators.touchSession(s.idHash, T0 + IDLE + 1, IDLE)).toBeUndefined()
    })

    it('deleting an account ends its sessions; deleting a session ends it', async () => {
      const a = account()
      await store.operators.insertAccount(a)
      const mine = session({ operatorId: a.id, label: a.email })
      const other = session()
      await store.operators.insertSession(mine)
      await store.operators.insertSession(other)
      await store.operators.deleteAccount(a.email)
      expect(await store.operators.touchSession(mine.idHash, T0 + 1, IDLE)).toBeUndefined()
      expect(await store.operators.touchSession(other.idHash, T0 + 1, IDLE)).toBeDefined()
      expect(await store.operators.deleteSession(other.idHash)).toBe(true)
      expect(await store.operators.deleteSession(other.idHash)).toBe(false)
      expect(await store.operators.touchSession(other.idHash, T0 + 2, IDLE)).toBeUndefined()
    })

    it('sweeps exactly the sessions past either deadline', async () => {
      const live = session()
      const idleGone = session({ idleExpiresAt: T0 + 5 })
      const absoluteGone = session({ absoluteExpiresAt: T0 + 5, idleExpiresAt: T0 + IDLE })
      for (const s of [live, idleGone, absoluteGone]) await store.operators.insertSession(s)
      expect(await store.operators.deleteExpiredSessions(T0 + 5)).toBe(2)
      expect(await store.operators.deleteExpiredSessions(T0 + 5)).toBe(0)
      expect(await store.operators.touchSession(live.idHash, T0 + 6, IDLE)).toBeDefined()
    })
  })
}
