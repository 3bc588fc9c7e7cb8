import { describe, expect, it } from 'vitest'
import { chooseFault, faultLatency, validateFaults } from '../../src/simulator/faults.ts'

/** mulberry32: a tiny seeded PRNG so fault choices are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('simulator fault selection', () => {
  it('never faults without configuration', () => {
    const random = seeded(1)
    for (let i = 0; i < 100; i++) expect(chooseFault({}, 'refresh_token', 0, random)).toBeUndefined()
  })

  it('is reproducible with the same seed', () => {
    const faults = { errorRate: 0.3, throttleRate: 0.2, retryAfterSeconds: 7 }
    const run = (seed: number) => {
      const random = seeded(seed)
      return Array.from({ length: 200 }, () => chooseFault(faults, 'refresh_token', 0, random))
    }
    expect(run(42)).toEqual(run(42))
    expect(run(42)).not.toEqual(run(43))
  })

  it('picks throttles, 500s and 503s in roughly the configured shares', () => {
    const random = seeded(2024)
    const faults = { errorRate: 0.5, throttleRate: 0.25, retryAfterSeconds: 3 }
    const tally = { throttle: 0, 500: 0, 503: 0, none: 0 }
    for (let i = 0; i < 10_000; i++) {
      const f = chooseFault(faults, 'authorization_code', 0, random)
      if (!f) tally.none++
      else if (f.kind === 'throttle') {
        expect(f.retryAfterSeconds).toBe(3)
        tally.throttle++
      } else tally[f.status]++
    }
    // throttle 25%; of the remaining 75%, half error: 37.5%, split evenly between 500 and 503.
    expect(tally.throttle / 10_000).toBeCloseTo(0.25, 1)
    expect((tally[500] + tally[503]) / 10_000).toBeCloseTo(0.375, 1)
    expect(tally[500]).toBeGreaterThan(1500)
    expect(tally[503]).toBeGreaterThan(1500)
    expect(tally.none / 10_000).toBeCloseTo(0.375, 1)
  })

  it('answers every call with an outage until outageUntil, then resumes', () => {
    const random = seeded(3)
    expect(chooseFault({ outageUntil: 1000 }, 'refresh_token', 999, random)).toEqual({
      kind: 'outage',
      status: 503,
    })
    expect(chooseFault({ outageUntil: 1000 }, 'refresh_token', 1000, random)).toBeUndefined()
  })

  it('limits faults to the listed grants', () => {
    const random = seeded(4)
    const faults = { errorRate: 1, grants: ['client_credentials' as const], latencyMs: 50 }
    expect(chooseFault(faults, 'refresh_token', 0, random)).toBeUndefined()
    expect(chooseFault(faults, 'other', 0, random)).toBeUndefined()
    expect(chooseFault(faults, 'client_credentials', 0, random)?.kind).toBe('error')
    expect(faultLatency(faults, 'refresh_token')).toBe(0)
    expect(faultLatency(faults, 'client_credentials')).toBe(50)
  })

  it('validates fault settings', () => {
    expect(() => validateFaults({ errorRate: 1.5 })).toThrow(RangeError)
    expect(() => validateFaults({ throttleRate: -0.1 })).toThrow(RangeError)
    expect(() => validateFaults({ latencyMs: Number.NaN })).toThrow(RangeError)
    expect(() => validateFaults({ outageUntil: Number.POSITIVE_INFINITY })).toThrow(RangeError)
    expect(validateFaults({ errorRate: 0.1, grants: ['refresh_token'] })).toEqual({
      errorRate: 0.1,
      grants: ['refresh_token'],
    })
  })
})
