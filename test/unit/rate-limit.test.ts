import { describe, expect, it } from 'vitest'
import {
  credentialKey,
  FailureLimiter,
  isBrowserEntryPoint,
  RateLimiter,
} from '../../src/server/rate-limit.ts'

function clock(start = 1_800_000_000_000) {
  let t = start
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms
    },
  }
}

describe('RateLimiter', () => {
  it('allows a burst, then one request per interval, and says how long to wait', () => {
    const c = clock()
    const limiter = new RateLimiter({ rule: { perSecond: 2, burst: 5 } }, { now: c.now })
    for (let i = 0; i < 5; i++) expect(limiter.take('a')).toBe(0)
    const wait = limiter.take('a')
    expect(wait).toBeGreaterThan(0)
    expect(wait).toBeLessThanOrEqual(500)
    c.advance(wait)
    expect(limiter.take('a')).toBe(0)
    expect(limiter.take('a')).toBeGreaterThan(0)
    // Refused requests spend nothing: after a full refill the whole burst is there again.
    c.advance(10_000)
    for (let i = 0; i < 5; i++) expect(limiter.take('a')).toBe(0)
    expect(limiter.take('a')).toBeGreaterThan(0)
  })

  it('keeps one bucket per key', () => {
    const c = clock()
    const limiter = new RateLimiter({ rule: { perSecond: 1, burst: 2 } }, { now: c.now })
    expect(limiter.take('a')).toBe(0)
    expect(limiter.take('a')).toBe(0)
    expect(limiter.take('a')).toBeGreaterThan(0)
    expect(limiter.take('b')).toBe(0)
    expect(limiter.take('b')).toBe(0)
  })

  it('is off at 0 per second', () => {
    const limiter = new RateLimiter({ rule: { perSecond: 0, burst: 1 } }, { now: clock().now })
    expect(limiter.enabled).toBe(false)
    for (let i = 0; i < 1000; i++) expect(limiter.take('a')).toBe(0)
    expect(limiter.size).toBe(0)
  })

  it('stays bounded under 100,000 distinct addresses, and a busy key stays limited through the flood', () => {
    const c = clock()
    const limiter = new RateLimiter({ rule: { perSecond: 1, burst: 3 }, maxKeys: 1000 }, { now: c.now })
    for (let i = 0; i < 3; i++) expect(limiter.take('attacker')).toBe(0)
    for (let i = 0; i < 100_000; i++) {
      limiter.take(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)
      // The busy key keeps being refused (and so stays young) while the flood goes on.
      if (i % 500 === 0) expect(limiter.take('attacker')).toBeGreaterThan(0)
    }
    expect(limiter.size).toBeLessThanOrEqual(1000)
  })
})

describe('FailureLimiter', () => {
  it('blocks after N failures in a window, for a period that doubles each time, up to a maximum', () => {
    const c = clock()
    const limiter = new FailureLimiter(
      { maxFailures: 3, windowMs: 60_000, baseBlockMs: 60_000, maxBlockMs: 240_000 },
      { now: c.now },
    )
    expect(limiter.recordFailure('a')).toBe(0)
    expect(limiter.recordFailure('a')).toBe(0)
    expect(limiter.blockedFor('a')).toBe(0)
    expect(limiter.recordFailure('a')).toBe(60_000)
    expect(limiter.blockedFor('a')).toBe(60_000)
    expect(limiter.blockedFor('b')).toBe(0)
    c.advance(60_000)
    expect(limiter.blockedFor('a')).toBe(0)
    for (let i = 0; i < 2; i++) limiter.recordFailure('a')
    expect(limiter.recordFailure('a')).toBe(120_000)
    c.advance(120_000)
    for (let i = 0; i < 2; i++) limiter.recordFailure('a')
    expect(limiter.recordFailure('a')).toBe(240_000)
    c.advance(240_000)
    for (let i = 0; i < 2; i++) limiter.recordFailure('a')
    expect(limiter.recordFailure('a')).toBe(240_000)
  })

  it('forgets failures spread over windows, and past blocks after a quiet hour', () => {
    const c = clock()
    const limiter = new FailureLimiter({ maxFailures: 3, baseBlockMs: 1000 }, { now: c.now })
    for (let i = 0; i < 10; i++) {
      expect(limiter.recordFailure('a')).toBe(0)
      expect(limiter.recordFailure('a')).toBe(0)
      c.advance(60_000)
    }
    for (let i = 0; i < 2; i++) limiter.recordFailure('a')
    expect(limiter.recordFailure('a')).toBe(1000)
    c.advance(2 * 60 * 60 * 1000)
    for (let i = 0; i < 2; i++) limiter.recordFailure('a')
    expect(limiter.recordFailure('a')).toBe(1000)
  })

  it('stays bounded under 100,000 distinct addresses', () => {
    const limiter = new FailureLimiter({ maxFailures: 3, maxKeys: 1000 }, { now: clock().now })
    for (let i = 0; i < 100_000; i++) limiter.recordFailure(`addr-${i}`)
    expect(limiter.size).toBeLessThanOrEqual(1000)
  })
})

describe('credentialKey and isBrowserEntryPoint', () => {
  it('hashes the presented credential, never keeps it, and ignores the scheme spelling', () => {
    const key = credentialKey('Bearer sekret-key-value')
    expect(key).not.toContain('sekret')
    expect(credentialKey('bearer   sekret-key-value')).toBe(key)
    expect(credentialKey('Bearer other')).not.toBe(key)
    expect(credentialKey(undefined)).toBeUndefined()
  })

  it('names the browser entry points and nothing else', () => {
    for (const path of [
      '/connect',
      '/connect/s/abc',
      '/console/connect',
      '/login',
      '/login-requests/lr_1',
      '/callback',
    ])
      expect(isBrowserEntryPoint(path), path).toBe(true)
    for (const path of ['/', '/healthz', '/v1/connections', '/connected', '/connections/con_1', '/loginx'])
      expect(isBrowserEntryPoint(path), path).toBe(false)
  })
})

describe('clocks that go back', () => {
  it('do not empty a bucket or stretch a block beyond the longest one', () => {
    const c = clock()
    const limiter = new RateLimiter({ rule: { perSecond: 1, burst: 2 } }, { now: c.now })
    c.advance(600_000)
    expect(limiter.take('a')).toBe(0)
    c.advance(-600_000)
    expect(limiter.take('a')).toBe(0)
    expect(limiter.take('a')).toBeGreaterThan(0)
    const failures = new FailureLimiter(
      { maxFailures: 1, baseBlockMs: 1000, maxBlockMs: 1000 },
      { now: c.now },
    )
    c.advance(600_000)
    failures.recordFailure('a')
    c.advance(-600_000)
    expect(failures.blockedFor('a')).toBeLessThanOrEqual(1000)
  })
})
