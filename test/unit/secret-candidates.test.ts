import { describe, expect, it } from 'vitest'
import { orderSecrets } from '../../src/core/secrets/client-secrets.ts'

const NOW = Date.UTC(2026, 5, 1)
const DAY = 24 * 3600_000

type Entry = { id: string; secret: string; state: 'active' | 'retired'; expiresAt: number | null }
const entry = (id: string, overrides: Partial<Entry> = {}): Entry => ({
  id,
  secret: `secret-${id}`,
  state: 'active',
  expiresAt: null,
  ...overrides,
})
const ids = (entries: readonly Entry[]) => entries.map((e) => e.id)

describe('orderSecrets (the order client secrets are tried in)', () => {
  it('keeps the given order: stored newest first, the configured secret last', () => {
    const list = [
      entry('new', { expiresAt: NOW + 180 * DAY }),
      entry('old', { expiresAt: NOW + 7 * DAY }),
      entry('configured'),
    ]
    expect(ids(orderSecrets(list, new Set(), NOW))).toEqual(['new', 'old', 'configured'])
  })

  it('drops expired and retired secrets, but never the configured one (its expiry is unknown)', () => {
    const list = [
      entry('new', { expiresAt: NOW + DAY }),
      entry('just-expired', { expiresAt: NOW }),
      entry('long-expired', { expiresAt: NOW - 30 * DAY }),
      entry('retired', { state: 'retired' }),
      entry('configured'),
    ]
    expect(ids(orderSecrets(list, new Set(), NOW))).toEqual(['new', 'configured'])
    expect(ids(orderSecrets(list, new Set(), NOW + 2 * DAY))).toEqual(['configured'])
  })

  it('tries each secret once, at its first (newest) place', () => {
    const list = [
      entry('stored', { secret: 'same' }),
      entry('older'),
      entry('configured', { secret: 'same' }),
    ]
    expect(ids(orderSecrets(list, new Set(), NOW))).toEqual(['stored', 'older'])
  })

  it('moves secrets LWA refused to the back, keeping their relative order', () => {
    const list = [entry('a'), entry('b'), entry('c'), entry('configured')]
    expect(ids(orderSecrets(list, new Set(['secret-a']), NOW))).toEqual(['b', 'c', 'configured', 'a'])
    expect(ids(orderSecrets(list, new Set(['secret-a', 'secret-c']), NOW))).toEqual([
      'b',
      'configured',
      'a',
      'c',
    ])
    // All refused: still all there, so a request can still be made (and the error is LWA's)
    const all = new Set(list.map((e) => e.secret))
    expect(ids(orderSecrets(list, all, NOW))).toEqual(['a', 'b', 'c', 'configured'])
  })
})
