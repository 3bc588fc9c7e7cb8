import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LwaError } from '../../src/core/lwa/errors.ts'
import {
  backoffDelay,
  parseRetryAfter,
  resolveRetryPolicy,
  retryDelay,
  withRetries,
} from '../../src/core/lwa/retry.ts'
import { DEFAULT_RETRY_POLICY } from '../../src/core/lwa/types.ts'

const NOW = Date.UTC(2026, 4, 17, 10, 30, 0) // Sun, 17 May 2026 10:30:00 GMT

describe('parseRetryAfter()', () => {
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('0', NOW)).toBe(0)
    expect(parseRetryAfter('120', NOW)).toBe(120_000)
    expect(parseRetryAfter(' 5 ', NOW)).toBe(5000)
    expect(parseRetryAfter('0007', NOW)).toBe(7000)
  })

  it('reads the three HTTP-date formats relative to now', () => {
    expect(parseRetryAfter('Sun, 17 May 2026 10:30:10 GMT', NOW)).toBe(10_000)
    expect(parseRetryAfter('Sunday, 17-May-26 10:30:10 GMT', NOW)).toBe(10_000)
    expect(parseRetryAfter('Sun May 17 10:30:10 2026', NOW)).toBe(10_000)
    expect(parseRetryAfter('Mon Jun  1 10:30:00 2026', NOW)).toBe(15 * 86_400_000)
  })

  it('gives 0 for a date in the past', () => {
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', NOW)).toBe(0)
  })

  it('puts two-digit years more than 50 years ahead in the previous century', () => {
    expect(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(0)
    expect(parseRetryAfter('Friday, 01-Jan-27 00:00:00 GMT', NOW)).toBe(Date.UTC(2027, 0, 1) - NOW)
  })

  it('rejects everything else, so normal backoff applies', () => {
    for (const value of [
      null,
      '',
      ' ',
      '-1',
      '1.5',
      '+5',
      '5s',
      '0x10',
      '1e3',
      'soon',
      'Infinity',
      'NaN',
      '2026-05-17T10:30:10Z',
      'Sun, 17 May 2026 10:30:10 UTC',
      'Sun, 17 May 2026 10:30:10',
      'Sun, 31 Feb 2026 10:30:10 GMT',
      'Sun, 17 May 2026 24:00:00 GMT',
      'Sun, 17 Mai 2026 10:30:10 GMT',
      'sun, 17 may 2026 10:30:10 gmt',
      '17 May 2026',
    ]) {
      expect(parseRetryAfter(value, NOW), String(value)).toBeUndefined()
    }
  })

  it('caps absurdly long delays at a finite value', () => {
    expect(parseRetryAfter('9'.repeat(400), NOW)).toBe(Number.MAX_SAFE_INTEGER)
  })

  it('property: any input gives undefined or a finite integer of at least 0', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(...'0123456789 ,:-GMTSunMay') })),
        fc.integer({ min: 0, max: 8.64e15 }),
        (value, now) => {
          const result = parseRetryAfter(value, now)
          if (result !== undefined) {
            expect(Number.isSafeInteger(result)).toBe(true)
            expect(result).toBeGreaterThanOrEqual(0)
          }
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('property: delay-seconds round-trip', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), (seconds) => {
        expect(parseRetryAfter(String(seconds), NOW)).toBe(seconds * 1000)
      }),
    )
  })

  it('property: any IMF-fixdate gives its distance from now, or 0 in the past', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date(Date.UTC(1970, 0, 1)),
          max: new Date(Date.UTC(9999, 11, 31)),
          noInvalidDate: true,
        }),
        fc.integer({ min: 0, max: Date.UTC(9999, 0, 1) }),
        (date, now) => {
          const whole = Math.floor(date.getTime() / 1000) * 1000
          expect(parseRetryAfter(date.toUTCString(), now)).toBe(Math.max(0, whole - now))
        },
      ),
    )
  })
})

describe('backoffDelay()', () => {
  const policy = { baseDelayMs: 200, maxDelayMs: 5000 }

  it('is full jitter under an exponential, capped ceiling', () => {
    const almostOne = 1 - Number.EPSILON
    expect([0, 1, 2, 3, 4, 5, 10, 2000].map((retry) => backoffDelay(retry, policy, () => almostOne))).toEqual(
      [199, 399, 799, 1599, 3199, 4999, 4999, 4999],
    )
    expect(backoffDelay(3, policy, () => 0)).toBe(0)
    expect(backoffDelay(1, policy, () => 0.5)).toBe(200)
  })

  it('keeps a misbehaving random() inside [0, ceiling)', () => {
    for (const value of [-1, 1, 7, Number.NaN, Number.POSITIVE_INFINITY]) {
      const delay = backoffDelay(2, policy, () => value)
      expect(delay).toBeGreaterThanOrEqual(0)
      expect(delay).toBeLessThan(800)
    }
  })

  it('property: always an integer in [0, min(max, base * 2^retry))', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 100 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.nat({ max: 10_000 }),
        fc.nat({ max: 100_000 }),
        (retry, r, base, max) => {
          const delay = backoffDelay(retry, { baseDelayMs: base, maxDelayMs: max }, () => r)
          expect(Number.isInteger(delay)).toBe(true)
          expect(delay).toBeGreaterThanOrEqual(0)
          expect(delay).toBeLessThanOrEqual(Math.max(0, Math.min(max, base * 2 ** retry)))
        },
      ),
    )
  })
})

describe('retryDelay()', () => {
  const policy = resolveRetryPolicy({ maxAttempts: 3 })
  const half = () => 0.5

  it('backs off until the budget is spent', () => {
    const error = new LwaError('lwa_server_error')
    expect(retryDelay(error, 1, policy, half)).toBe(100)
    expect(retryDelay(error, 2, policy, half)).toBe(200)
    expect(retryDelay(error, 3, policy, half)).toBeUndefined()
  })

  it('uses Retry-After as a floor, and stops when it is longer than the cap', () => {
    expect(retryDelay(new LwaError('lwa_throttled', { retryAfterMs: 2000 }), 1, policy, half)).toBe(2000)
    expect(retryDelay(new LwaError('lwa_throttled', { retryAfterMs: 0 }), 1, policy, half)).toBe(100)
    expect(retryDelay(new LwaError('lwa_throttled', { retryAfterMs: 30_000 }), 1, policy, half)).toBe(30_000)
    expect(
      retryDelay(new LwaError('lwa_throttled', { retryAfterMs: 30_001 }), 1, policy, half),
    ).toBeUndefined()
  })
})

describe('resolveRetryPolicy()', () => {
  it('fills in the defaults', () => {
    expect(resolveRetryPolicy()).toEqual(DEFAULT_RETRY_POLICY)
    expect(resolveRetryPolicy({ maxAttempts: 5 })).toEqual({ ...DEFAULT_RETRY_POLICY, maxAttempts: 5 })
  })

  it('refuses nonsense', () => {
    for (const bad of [
      { maxAttempts: 0 },
      { maxAttempts: 1.5 },
      { baseDelayMs: -1 },
      { maxDelayMs: Number.NaN },
      { maxRetryAfterMs: Number.POSITIVE_INFINITY },
    ]) {
      expect(() => resolveRetryPolicy(bad)).toThrow(TypeError)
    }
  })
})

describe('withRetries()', () => {
  const policy = resolveRetryPolicy({ maxAttempts: 4 })
  const retryable = new LwaError('lwa_server_error')

  function harness() {
    const sleeps: number[] = []
    return {
      sleeps,
      sleep: async (ms: number, signal?: AbortSignal) => {
        signal?.throwIfAborted()
        sleeps.push(ms)
      },
    }
  }

  it('retries until success', async () => {
    const { sleeps, sleep } = harness()
    let calls = 0
    const result = await withRetries(
      async (attempt) => {
        calls++
        if (attempt < 3) throw retryable
        return 'ok'
      },
      { policy, sleep, random: () => 0.5, mayRetry: () => true },
    )
    expect(result).toBe('ok')
    expect(calls).toBe(3)
    expect(sleeps).toEqual([100, 200])
  })

  it('stops at maxAttempts and rethrows the last failure', async () => {
    const { sleeps, sleep } = harness()
    const attempts: number[] = []
    const failure = await withRetries(
      async (attempt) => {
        attempts.push(attempt)
        throw new LwaError('lwa_server_error', { detail: `attempt ${attempt}` })
      },
      { policy, sleep, random: () => 0, mayRetry: () => true },
    ).catch((e: unknown) => e)
    expect(attempts).toEqual([1, 2, 3, 4])
    expect(sleeps).toHaveLength(3)
    expect(failure).toBeInstanceOf(LwaError)
    expect((failure as LwaError).detail).toBe('attempt 4')
  })

  it('does not retry what mayRetry refuses', async () => {
    const { sleeps, sleep } = harness()
    let calls = 0
    await expect(
      withRetries(
        async () => {
          calls++
          throw retryable
        },
        { policy, sleep, random: () => 0, mayRetry: () => false },
      ),
    ).rejects.toBe(retryable)
    expect(calls).toBe(1)
    expect(sleeps).toEqual([])
  })

  it('stops with the abort reason when the signal aborts during the wait', async () => {
    const controller = new AbortController()
    const reason = new Error('caller gave up')
    let calls = 0
    await expect(
      withRetries(
        async () => {
          calls++
          throw retryable
        },
        {
          policy,
          random: () => 0,
          signal: controller.signal,
          mayRetry: () => true,
          sleep: (_ms, signal) => {
            controller.abort(reason)
            return Promise.reject(signal?.reason)
          },
        },
      ),
    ).rejects.toBe(reason)
    expect(calls).toBe(1)
  })

  it('does not start when the signal is already aborted', async () => {
    const reason = new Error('gone')
    let calls = 0
    await expect(
      withRetries(
        async () => {
          calls++
          return 1
        },
        {
          policy,
          sleep: async () => {},
          random: () => 0,
          signal: AbortSignal.abort(reason),
          mayRetry: () => true,
        },
      ),
    ).rejects.toBe(reason)
    expect(calls).toBe(0)
  })
})
