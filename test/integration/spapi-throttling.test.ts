/**
 * Throttling against the simulator's real usage-plan enforcement (Amazon's 429 QuotaExceeded, per app, seller
 * and operation), with the simulator's plan made tighter than the one sp-connect's table publishes, as Amazon's
 * dynamic plans do; and our own queue bound through the HTTP door.
 *
 * Time: the simulator and sp-connect read one clock (the stack's). The throttling test gives its client a
 * `sleep` that moves that clock instead of waiting, so minutes of plan time pass at once and the outcome does
 * not depend on the machine's load. That only holds for sequential calls (concurrent sleepers would each move
 * the one clock), so that test makes its calls one after the other. (The simulator's own `/_control/clock`
 * would move the simulator alone and leave sp-connect behind, so it is not used.)
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { defaultDeps } from '../../src/core/deps.ts'
import { SpApiClient } from '../../src/core/spapi/client.ts'
import { MemoryRateBucketStore } from '../../src/core/spapi/gcra.ts'
import { StoreCallLimiter } from '../../src/core/spapi/limiter.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { connectSeller } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const PARTICIPATIONS = '/sellers/v1/marketplaceParticipations'
const OPERATION = 'getMarketplaceParticipations'

let stack: Stack
let connectionId: string

beforeAll(async () => {
  // Two callers may wait per (connection, operation) on this instance; a third is refused at once.
  stack = await startStack({ env: { SP_CONNECT_SPAPI_MAX_WAITING: '2' } })
})

afterAll(async () => {
  await stack?.close()
})

beforeEach(async () => {
  connectionId = (await connectSeller(stack, new BrowserClient(), { tenantId: 'tenant-t' })).connectionId
})

async function control(path: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${stack.simulatorUrl}/_control/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  expect(response.status).toBe(200)
  return (await response.json()) as Record<string, unknown>
}

async function simulatorThrottled(): Promise<Record<string, number>> {
  const counters = (await control('counters')) as { spapi: { throttledByOperation: Record<string, number> } }
  return counters.spapi.throttledByOperation
}

describe('usage plans enforced by the simulator', () => {
  it('waits out a real 429, retries within the deadline, and learns the plan from x-amzn-RateLimit-Limit', async () => {
    // sp-connect's table: 0.016 rps, burst 15. The simulator now: 0.008 rps (one every 125 s), burst 2.
    await control('usage-plans', { operation: OPERATION, rate: 0.008, burst: 2 })
    await control('reset-counters', {})
    const buckets = new MemoryRateBucketStore()
    const deps = defaultDeps({
      now: stack.clock.now,
      logger: stack.logger,
      random: () => 0,
      // Moves the shared clock instead of waiting (sequential calls only, see the file comment).
      sleep: async (ms, signal) => {
        signal?.throwIfAborted()
        if (ms > 0) stack.clock.advance(ms)
      },
    })
    const client = new SpApiClient(
      {
        store: stack.runtime.store,
        tokens: stack.runtime.tokens,
        endpoints: {
          spapiUrlTemplate: stack.env['SP_CONNECT_SPAPI_URL_TEMPLATE'] ?? '',
          spapiSandbox: false,
        },
        limiter: new StoreCallLimiter({ buckets }, deps),
      },
      deps,
    )
    const call = async () => {
      const startedAt = stack.clock.now()
      const response = await client.call(connectionId, {
        method: 'GET',
        path: PARTICIPATIONS,
        timeoutMs: 600_000,
      })
      await response.text()
      return { status: response.status, waitedMs: stack.clock.now() - startedAt }
    }

    try {
      // Two calls use the simulator's burst; the third meets Amazon's 429, waits and is sent again.
      expect((await call()).status).toBe(200)
      expect((await call()).status).toBe(200)
      const third = await call()
      expect(third.status).toBe(200)
      expect(third.waitedMs).toBeGreaterThan(0)
      // One 429: the pause after it is one interval of the rate the simulator had reported on the 200s.
      expect(await simulatorThrottled()).toEqual({ [OPERATION]: 1 })
      const bucket = await buckets.get(`${connectionId}:${OPERATION}`)
      expect(bucket?.rate).toBe(0.008)

      // From now on sp-connect keeps to the simulator's rate: every call waits its turn, none is refused.
      await control('reset-counters', {})
      for (let i = 0; i < 5; i++) {
        const later = await call()
        expect(later.status).toBe(200)
        expect(later.waitedMs).toBeGreaterThanOrEqual(120_000)
      }
      expect(await simulatorThrottled()).toEqual({})
    } finally {
      await control('usage-plans', { operation: OPERATION, rate: 0.016, burst: 15 })
    }
  })
})

describe('the queue bound through the HTTP door', () => {
  it('answers 429 spapi_queue_full with Retry-After to callers beyond the queue, and lets the others through', async () => {
    // seller-wallet getAccount: 1 rps, burst 1 in the table, so callers after the first wait seconds for turns.
    // The simulator does not implement it and answers 404 NotFound, which passes through like any answer.
    const path = `/v1/connections/${connectionId}/spapi/finances/transfers/wallet/2024-03-01/accounts/A1`
    const responses = await Promise.all(
      Array.from({ length: 12 }, () =>
        fetch(`${stack.serviceUrl}${path}`, { headers: { authorization: `Bearer ${stack.apiKey}` } }),
      ),
    )
    const full: Response[] = []
    const through: Response[] = []
    for (const response of responses) (response.status === 429 ? full : through).push(response)
    for (const response of through) {
      expect(response.status).toBe(404)
      await response.body?.cancel()
    }
    expect(through.length).toBeGreaterThanOrEqual(1)
    expect(full.length).toBeGreaterThanOrEqual(1)
    for (const response of full) {
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      const body = (await response.json()) as { error: { code: string } }
      expect(body.error.code).toBe('spapi_queue_full')
    }
  })
})
