import { describe, expect, it } from 'vitest'
import { CircuitBreaker } from '../../src/core/tokens/circuit-breaker.ts'

describe('CircuitBreaker', () => {
  it('opens after the threshold of consecutive failures and lets one probe through after the open time', () => {
    let now = 0
    const breaker = new CircuitBreaker({ failureThreshold: 3, openMs: 1000 }, { now: () => now })
    for (let i = 0; i < 2; i++) breaker.recordFailure()
    expect(breaker.state).toBe('closed')
    breaker.recordFailure()
    expect(breaker.state).toBe('open')
    expect(breaker.tryPass()).toBe(false)
    expect(breaker.retryAfterMs()).toBe(1000)
    now = 1000
    expect(breaker.state).toBe('half_open')
    expect(breaker.tryPass()).toBe(true)
    expect(breaker.tryPass()).toBe(false) // one probe at a time
    breaker.recordFailure()
    expect(breaker.state).toBe('open') // a failed probe re-opens
    now = 2000
    expect(breaker.tryPass()).toBe(true)
    breaker.recordSuccess()
    expect(breaker.state).toBe('closed')
    expect(breaker.tryPass()).toBe(true)
  })

  it('opens at once on a fatal failure and ignores neutral outcomes', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 5, openMs: 1000 }, { now: () => 0 })
    breaker.recordFailure()
    breaker.recordNeutral()
    breaker.recordFailure()
    expect(breaker.state).toBe('closed')
    breaker.recordFailure(true)
    expect(breaker.state).toBe('open')
  })

  it('a success resets the failure count', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 2 }, { now: () => 0 })
    breaker.recordFailure()
    breaker.recordSuccess()
    breaker.recordFailure()
    expect(breaker.state).toBe('closed')
  })
})
