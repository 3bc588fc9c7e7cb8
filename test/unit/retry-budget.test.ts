import { describe, expect, it } from 'vitest'
import { defaultDeps } from '../../src/core/deps.ts'
import { LwaClient } from '../../src/core/lwa/client.ts'
import { RetryBudget } from '../../src/core/lwa/retry-budget.ts'

describe('RetryBudget', () => {
  it('defaults (issue 8): 2 retries saved up at most, 0.1 earned per request, one per 20 s', () => {
    let now = 0
    const budget = new RetryBudget({}, { now: () => now })
    expect(budget.available).toBe(2)
    expect(budget.tryRetry()).toBe(true)
    expect(budget.tryRetry()).toBe(true)
    expect(budget.tryRetry()).toBe(false)
    for (let i = 0; i < 9; i++) budget.recordRequest()
    expect(budget.tryRetry()).toBe(false) // 0.9 earned by 9 requests
    budget.recordRequest()
    expect(budget.tryRetry()).toBe(true) // the tenth request earned a whole retry
    now += 19_000
    expect(budget.tryRetry()).toBe(false)
    now += 1_000
    expect(budget.tryRetry()).toBe(true) // 20 s earn one retry without traffic
    now += 3_600_000
    expect(budget.available).toBe(2)
  })

  it('earns a fraction per request, spends one per retry, and refills slowly with time', () => {
    let now = 0
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 1, max: 2 }, { now: () => now })
    expect(budget.tryRetry()).toBe(true)
    expect(budget.tryRetry()).toBe(true)
    expect(budget.tryRetry()).toBe(false)
    budget.recordRequest()
    expect(budget.tryRetry()).toBe(false) // half a retry earned
    budget.recordRequest()
    expect(budget.tryRetry()).toBe(true)
    now += 1500
    expect(budget.available).toBeCloseTo(1.5)
    now += 60_000
    expect(budget.available).toBe(2) // capped
  })

  it('stops an LWA client retrying once the shared budget is spent', async () => {
    let calls = 0
    const failing: typeof fetch = async () => {
      calls++
      return Response.json({ error: 'server_error', error_description: 'boom' }, { status: 500 })
    }
    const deps = defaultDeps({ fetch: failing, sleep: async () => {}, now: () => 0 })
    const lwa = new LwaClient(
      {
        tokenUrl: 'https://lwa.test/auth/o2/token',
        credentials: () => ({
          clientId: 'amzn1.application-oa2-client.x',
          clientSecret: 'secret-secret-secret',
        }),
        retry: { maxAttempts: 3 },
        retryBudget: new RetryBudget({ ratio: 0, minPerSecond: 0, max: 3 }, { now: () => 0 }),
      },
      deps,
    )
    await expect(lwa.refresh('Atzr|one')).rejects.toMatchObject({ code: 'lwa_server_error' })
    expect(calls).toBe(3) // two retries spent
    await expect(lwa.refresh('Atzr|two')).rejects.toMatchObject({ code: 'lwa_server_error' })
    expect(calls).toBe(5) // one retry left
    await expect(lwa.refresh('Atzr|three')).rejects.toMatchObject({ code: 'lwa_server_error' })
    expect(calls).toBe(6) // budget spent: no retry at all
  })
})
