/**
 * What the `Store` conformance suites share: the factory contract a backend implements, the harness the index
 * hands each role suite, and record builders.
 */
import { expect } from 'vitest'
import type {
  AuthStateRecord,
  EventRecord,
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
  /**
   * Writes through a handle from `openAnother` wake `waitForConnectionChange` on this one (PostgreSQL's
   * LISTEN/NOTIFY). When false, only a handle's own writes wake its waiters (SQLite).
   */
  readonly wakesAcrossHandles?: boolean
}

/** What the index hands each role suite: the store of the current test, and more handles on its database. */
export interface StoreHarness {
  /** The current test's store (fresh for each test; migrated inside the index's "with the schema"). */
  readonly store: Store
  /** The factory's answer for the current test. */
  readonly subject: StoreUnderTest
  /** Another, independent handle on the same database (closed by the index), or undefined when impossible. */
  another(): Promise<Store | undefined>
}

export const T0 = 1_800_000_000_000
export const MINUTE = 60_000
export const HOUR = 60 * MINUTE

let serial = 0
export const unique = (prefix: string) => `${prefix}-${++serial}-${Math.random().toString(36).slice(2, 8)}`

export function authState(overrides: Partial<AuthStateRecord> = {}): AuthStateRecord {
  return {
    stateHash: unique('state'),
    flow: 'website',
    region: 'na',
    accountType: 'seller',
    tenantId: 'tenant-1',
    returnTo: '/done',
    browserBindingHash: unique('binding'),
    sellingPartnerId: null,
    connectionId: null,
    createdAt: T0,
    expiresAt: T0 + 10 * MINUTE,
    consumedAt: null,
    ...overrides,
  }
}

export function newConnection(overrides: Partial<NewConnection> = {}): NewConnection {
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
    accountFingerprint: 'v1:first',
    now: T0,
    ...overrides,
  }
}

export function reauthorization(overrides: Partial<Reauthorization> = {}): Reauthorization {
  return {
    accountType: 'vendor',
    // The connection's own tenant: a re-authorization never moves a connection (see the test below).
    tenantId: 'tenant-1',
    refreshTokenCiphertext: 'refresh-ct-new',
    accessTokenCiphertext: 'access-ct-new',
    accessTokenExpiresAt: T0 + 5 * HOUR,
    authorizedAt: T0 + 2 * HOUR,
    reauthorizeBy: T0 + 2 * HOUR + 365 * 24 * HOUR,
    accountFingerprint: null,
    now: T0 + 2 * HOUR,
    ...overrides,
  }
}

export function event(overrides: Partial<EventRecord> = {}): EventRecord {
  return {
    id: unique('evt'),
    type: 'connection.created',
    connectionId: null,
    data: { flow: 'website' },
    createdAt: T0,
    ...overrides,
  }
}

export function defined<T>(value: T | undefined): T {
  expect(value).toBeDefined()
  if (value === undefined) throw new Error('unreachable')
  return value
}

export const count = (values: readonly unknown[]) =>
  values.filter((v) => v !== undefined && v !== false).length
