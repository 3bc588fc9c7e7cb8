/**
 * The RDT cache's bounds. The Tokens API is replaced by a counting issuer here: filling a cache of thousands of
 * entries through the simulator would take thousands of RDT requests under its 1 rps plan. The end-to-end path
 * (one RDT for every order id) is in test/integration/spapi-call.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { defaultDeps } from '../../src/core/deps.ts'
import {
  type IssueRestrictedDataToken,
  RestrictedDataTokens,
  type RestrictedResource,
} from '../../src/core/spapi/restricted-data-tokens.ts'

function counted(): { issue: IssueRestrictedDataToken; issued: () => number } {
  let issued = 0
  return {
    issue: async () => ({ restrictedDataToken: `Atz.sprdt|${++issued}`, expiresIn: 3600 }),
    issued: () => issued,
  }
}

/** One resource set with a path of about `length` characters. */
function resources(i: number, length = 100): RestrictedResource[] {
  return [{ method: 'GET', path: `/orders/v0/orders/${String(i).padStart(length, '0')}` }]
}

const deadline = Date.now() + 60_000

describe('RestrictedDataTokens', () => {
  it('caps the cache by the characters of its keys and tokens as well as by entries', async () => {
    const { issue, issued } = counted()
    const cache = new RestrictedDataTokens({ issue, maxEntries: 1000, maxBytes: 10_000 }, defaultDeps())
    for (let i = 0; i < 200; i++) await cache.get('c1', resources(i, 2000), { deadline })
    expect(issued()).toBe(200)
    const { entries, bytes } = cache.size
    expect(bytes).toBeLessThanOrEqual(10_000)
    expect(entries).toBeGreaterThan(0)
    expect(entries).toBeLessThan(10)
    // The newest set is still cached, the oldest went first.
    await cache.get('c1', resources(199, 2000), { deadline })
    expect(issued()).toBe(200)
    await cache.get('c1', resources(0, 2000), { deadline })
    expect(issued()).toBe(201)

    const byEntries = new RestrictedDataTokens({ issue: counted().issue, maxEntries: 5 }, defaultDeps())
    for (let i = 0; i < 20; i++) await byEntries.get('c1', resources(i), { deadline })
    expect(byEntries.size.entries).toBeLessThanOrEqual(5)
  })

  it('keeps its count right through invalidate and forget, and does not keep a set larger than the cache', async () => {
    const cache = new RestrictedDataTokens({ issue: counted().issue, maxBytes: 5_000 }, defaultDeps())
    await cache.get('c1', resources(1), { deadline })
    await cache.get('c2', resources(2), { deadline })
    cache.invalidate('c1', resources(1))
    cache.forget('c2')
    expect(cache.size).toEqual({ entries: 0, bytes: 0 })
    const huge = Array.from({ length: 50 }, (_, i) => resources(i, 200)[0] as RestrictedResource)
    const token = await cache.get('c1', huge, { deadline })
    expect(token.restrictedDataToken).toMatch(/^Atz\.sprdt\|/)
    expect(cache.size).toEqual({ entries: 0, bytes: 0 })
  })
})
