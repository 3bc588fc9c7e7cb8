/**
 * Rule 8 of issue 7, abuse limits, over real HTTP on loopback: browser entry points limited per client address
 * (X-Forwarded-For only with trusted proxy hops), /v1 per API key, and an address presenting bad credentials
 * refused for a growing period. The stack's clock drives the buckets, so nothing here waits.
 */
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { type Stack, type StackOptions, startStack } from '../helpers/stack.ts'

const stacks: Stack[] = []
afterEach(async () => {
  for (const stack of stacks.splice(0)) await stack.close()
})

async function stackWith(env: Record<string, string>, options: StackOptions = {}): Promise<Stack> {
  const stack = await startStack({ ...options, env: { ...options.env, ...env } })
  stacks.push(stack)
  return stack
}

const randomValue = () => randomBytes(32).toString('base64url')

/** Browser-style request, no redirects followed, body read. */
async function hit(
  stack: Stack,
  path: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; retryAfter: string | null; text: string }> {
  const response = await fetch(`${stack.serviceUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: init.headers ?? {},
    redirect: 'manual',
  })
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    text: await response.text(),
  }
}

async function api(
  stack: Stack,
  key: string,
  path = '/v1/connections',
): Promise<{ status: number; retryAfter: string | null; code: unknown }> {
  const response = await fetch(`${stack.serviceUrl}${path}`, { headers: { authorization: `Bearer ${key}` } })
  const text = await response.text()
  const body = text ? (JSON.parse(text) as { error?: { code?: unknown } }) : {}
  return { status: response.status, retryAfter: response.headers.get('retry-after'), code: body.error?.code }
}

const BROWSER_LIMIT = {
  SP_CONNECT_RATE_LIMIT_BROWSER_PER_SECOND: '1',
  SP_CONNECT_RATE_LIMIT_BROWSER_BURST: '3',
}

describe('browser entry points are limited per client address', () => {
  const routes: { path: () => string; method?: string }[] = [
    { path: () => `/connect/s/${randomValue()}` },
    { path: () => '/connect' },
    { path: () => '/console/connect', method: 'POST' },
    { path: () => `/login?amazon_callback_uri=x&amazon_state=${randomValue()}&selling_partner_id=A1` },
    { path: () => `/login-requests/${randomValue()}` },
    { path: () => `/callback?state=${randomValue()}&spapi_oauth_code=x&selling_partner_id=A1` },
  ]

  it('answers 429 with Retry-After on each route once the burst is spent, and recovers with time', async () => {
    const stack = await stackWith(BROWSER_LIMIT)
    for (const route of routes) {
      const method = route.method ?? 'GET'
      for (let i = 0; i < 3; i++) {
        const answer = await hit(stack, route.path(), { method })
        expect(answer.status, `${method} ${route.path()} #${i}`).not.toBe(429)
      }
      const refused = await hit(stack, route.path(), { method })
      expect(refused.status, `${method} ${route.path()}`).toBe(429)
      expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1)
      expect(refused.text).toContain('Too many requests')
      // Other pages are not limited.
      expect((await hit(stack, '/healthz')).status).toBe(200)
      // A full bucket again after a few seconds on the stack's clock.
      stack.clock.advance(10_000)
    }
  })

  it('ignores X-Forwarded-For with no trusted proxy hops: a client cannot choose its address', async () => {
    const stack = await stackWith(BROWSER_LIMIT)
    for (let i = 0; i < 3; i++) await hit(stack, `/connect/s/${randomValue()}`)
    const spoofed = await hit(stack, `/connect/s/${randomValue()}`, {
      headers: { 'x-forwarded-for': '198.51.100.77' },
    })
    expect(spoofed.status).toBe(429)
  })

  it('with one trusted hop, limits by the entry the proxy appended, not by what the client put before it', async () => {
    const stack = await stackWith({ ...BROWSER_LIMIT, SP_CONNECT_TRUSTED_PROXY_HOPS: '1' })
    const as = (client: string, spoof = '192.0.2.1') => ({
      headers: { 'x-forwarded-for': `${spoof}, ${client}` },
    })
    for (let i = 0; i < 3; i++)
      expect(
        (await hit(stack, `/connect/s/${randomValue()}`, as('203.0.113.7', `10.9.9.${i}`))).status,
      ).not.toBe(429)
    // The same client rotating the part of the header it controls is still the same client.
    expect((await hit(stack, `/connect/s/${randomValue()}`, as('203.0.113.7', '10.1.1.1'))).status).toBe(429)
    // Another client behind the same proxy has its own bucket.
    expect((await hit(stack, `/connect/s/${randomValue()}`, as('203.0.113.8'))).status).not.toBe(429)
  })
})

describe('the client address comes from the socket', () => {
  it('counts a request without X-Forwarded-For as its socket address (127.0.0.1), even with a trusted hop', async () => {
    const stack = await stackWith({ ...BROWSER_LIMIT, SP_CONNECT_TRUSTED_PROXY_HOPS: '1' })
    for (let i = 0; i < 3; i++) await hit(stack, `/connect/s/${randomValue()}`)
    // Same bucket as the proxy-less requests above only if the server read the real socket address.
    const named = await hit(stack, `/connect/s/${randomValue()}`, {
      headers: { 'x-forwarded-for': '127.0.0.1' },
    })
    expect(named.status).toBe(429)
    expect(
      (await hit(stack, `/connect/s/${randomValue()}`, { headers: { 'x-forwarded-for': '::1' } })).status,
    ).not.toBe(429)
  })
})

describe('/v1 is limited per API key', () => {
  it('answers 429 rate_limited with Retry-After to one key and keeps serving another', async () => {
    const [first, second] = [randomValue(), randomValue()]
    const stack = await stackWith({
      SP_CONNECT_RATE_LIMIT_API_PER_SECOND: '1',
      SP_CONNECT_RATE_LIMIT_API_BURST: '5',
      SP_CONNECT_API_KEYS: `backend:${first},other:${second}`,
    })
    for (let i = 0; i < 5; i++) expect((await api(stack, first)).status).toBe(200)
    const refused = await api(stack, first)
    expect(refused).toMatchObject({ status: 429, code: 'rate_limited' })
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1)
    // The other key has a bucket of its own.
    for (let i = 0; i < 5; i++) expect((await api(stack, second)).status).toBe(200)
    stack.clock.advance(2_000)
    expect((await api(stack, first)).status).toBe(200)
  })
})

describe('repeated bad credentials from one address are slowed down', () => {
  it('refuses the address for a growing period after N failures, but not a key that works', async () => {
    const stack = await stackWith({ SP_CONNECT_RATE_LIMIT_AUTH_FAILURES: '5' })
    // The app's backend works from the same address (a NAT, say) before the guessing starts.
    expect((await api(stack, stack.apiKey)).status).toBe(200)
    for (let i = 0; i < 5; i++) expect((await api(stack, randomValue())).status).toBe(401)
    const blocked = await api(stack, randomValue())
    expect(blocked).toMatchObject({ status: 429, code: 'rate_limited' })
    expect(Number(blocked.retryAfter)).toBeGreaterThanOrEqual(50)
    expect((await fetch(`${stack.serviceUrl}/v1/connections`)).status).toBe(429)
    // The backend's key keeps working during the block.
    expect((await api(stack, stack.apiKey)).status).toBe(200)

    // First block: a minute. Then guessing resumes and earns a longer one.
    stack.clock.advance(61_000)
    for (let i = 0; i < 5; i++) expect((await api(stack, randomValue())).status).toBe(401)
    expect((await api(stack, randomValue())).status).toBe(429)
    stack.clock.advance(61_000)
    expect((await api(stack, randomValue())).status).toBe(429)
    stack.clock.advance(60_000)
    expect((await api(stack, randomValue())).status).toBe(401)
  })

  it('is off at 0', async () => {
    const stack = await stackWith({ SP_CONNECT_RATE_LIMIT_AUTH_FAILURES: '0' })
    for (let i = 0; i < 30; i++) expect((await api(stack, randomValue())).status).toBe(401)
  })
})
