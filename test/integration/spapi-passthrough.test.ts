/**
 * The HTTP doors `ANY /v1/connections/:id/spapi/*` and `POST /v1/connections/:id/restricted-data-tokens`,
 * over real HTTP on loopback, with the recording proxy of test/helpers/spapi-upstream.ts in front of the
 * simulator. The simulator answers for real (Tokens API, Orders, usage plans); the proxy answers itself only
 * what the simulator cannot produce on demand: a multi-megabyte streamed body for an operation it does not
 * implement.
 */
import { request as httpRequest } from 'node:http'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { BrowserClient } from '../helpers/browser-client.ts'
import { connectSeller } from '../helpers/flows.ts'
import { type SpApiUpstream, startStackBehindUpstream } from '../helpers/spapi-upstream.ts'
import type { Stack } from '../helpers/stack.ts'

const PARTICIPATIONS = '/sellers/v1/marketplaceParticipations'

let upstream: SpApiUpstream
let stack: Stack
let connectionId: string

beforeAll(async () => {
  ;({ stack, upstream } = await startStackBehindUpstream())
})

afterAll(async () => {
  await stack?.close()
  await upstream?.close()
})

beforeEach(async () => {
  connectionId = (await connectSeller(stack, new BrowserClient(), { tenantId: 'tenant-a' })).connectionId
  upstream.seen.length = 0
  upstream.intercepts.length = 0
})

const NA_HOST = 'sellingpartnerapi-na.amazon.com'

/** Some order of the seller, listed straight from the simulator with the plain access token. */
async function anyOrderId(): Promise<string> {
  const token = await stack.runtime.tokens.getAccessToken(connectionId)
  const query = new URLSearchParams({
    MarketplaceIds: 'ATVPDKIKX0DER,A2EUQ1WTGCTBG2,A1AM78C64UM0Y8,A2Q3Y263D00KWC',
    CreatedAfter: new Date(stack.clock.now() - 10 * 86_400_000).toISOString(),
  })
  const response = await fetch(`${stack.simulatorUrl}/${NA_HOST}/orders/v0/orders?${query}`, {
    headers: { 'x-amz-access-token': token.accessToken },
  })
  const orders = ((await response.json()) as { payload: { Orders: { AmazonOrderId: string }[] } }).payload
    .Orders
  expect(orders.length).toBeGreaterThan(0)
  return orders[0]?.AmazonOrderId ?? ''
}

async function createKey(scopes: string[], tenants: string[]): Promise<string> {
  const created = await stack.api('POST', '/v1/api-keys', { name: 'k', scopes, tenants })
  expect(created.status).toBe(201)
  return String(created.json['key'])
}

function door(path: string, init: RequestInit & { key?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers)
  headers.set('authorization', `Bearer ${init.key ?? stack.apiKey}`)
  return fetch(`${stack.serviceUrl}/v1/connections/${connectionId}/spapi${path}`, { ...init, headers })
}

/** A raw request target, as fetch would normalise dot segments away before sending. */
function rawGet(target: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL(stack.serviceUrl)
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: target,
        headers: { ...headers, authorization: `Bearer ${stack.apiKey}` },
      },
      (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe('ANY /v1/connections/:id/spapi/*', () => {
  it('logs a refused call by its route, never the SP-API path with its seller data', async () => {
    const sku = 'SKU-SECRET-LOOKING-4711'
    const response = await door(`/not-an-operation/${sku}`)
    expect(response.status).toBe(400)
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
      'spapi_operation_unknown',
    )
    expect(stack.logger.text()).toContain('/v1/connections/:id/spapi/*')
    expect(stack.logger.text()).not.toContain(sku)
  })

  it('passes the call through with Amazon’s request id and rate limit, and never the API key', async () => {
    const response = await door(PARTICIPATIONS, { headers: { cookie: 'a=b', 'x-amz-access-token': 'mine' } })
    expect(response.status).toBe(200)
    expect(response.headers.get('x-amzn-requestid')).toBeTruthy()
    expect(response.headers.get('x-amzn-ratelimit-limit')).toBeTruthy()
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(((await response.json()) as { payload: unknown[] }).payload.length).toBeGreaterThan(0)
    const sent = upstream.seen[0]
    expect(sent?.headers['authorization']).toBeUndefined()
    expect(sent?.headers['cookie']).toBeUndefined()
    expect(sent?.headers['x-amz-access-token']).toMatch(/^Atza\|/)
    expect(stack.logger.text()).not.toContain(String(sent?.headers['x-amz-access-token']))
  })

  it('answers 404 to another tenant’s key (audited) and 403 to a key without the tokens scope', async () => {
    const other = await createKey(['read', 'tokens'], ['tenant-b'])
    const hidden = await door(PARTICIPATIONS, { key: other })
    expect(hidden.status).toBe(404)
    expect(((await hidden.json()) as { error: { code: string } }).error.code).toBe('connection_not_found')
    const events = await stack.runtime.store.listEvents({ connectionId, limit: 50 })
    expect(events.some((e) => e.type === 'access.denied')).toBe(true)
    const readOnly = await createKey(['read'], ['tenant-a'])
    expect((await door(PARTICIPATIONS, { key: readOnly })).status).toBe(403)
    expect(upstream.seen).toHaveLength(0)
  })

  it('refuses tampered paths and unknown operations without calling Amazon', async () => {
    const base = `/v1/connections/${connectionId}/spapi`
    expect(await rawGet(`${base}/sellers/v1/../v1/marketplaceParticipations`)).toBe(400)
    expect(await rawGet(`${base}/sellers/v1/%2e%2e/x`)).toBe(400)
    expect(await rawGet(`${base}/orders/v0/orders/%2F..%2F..%2Fx`)).toBe(400)
    // `..;` is `..` to Java servers and some proxies; `;` starts a path parameter. Plain or encoded, none leave.
    expect(await rawGet(`${base}/orders/v0/orders/..;`)).toBe(400)
    expect(await rawGet(`${base}/orders/v0/orders/..;x/orderItems`)).toBe(400)
    expect(await rawGet(`${base}/orders/v0/orders/%2e%2e%3b`)).toBe(400)
    expect(await rawGet(`${base}/orders/v0/orders/...`)).toBe(400)
    expect(await rawGet(`${base}/orders/v0/orders/123;jsessionid=x`)).toBe(400)
    expect(await rawGet(`${base}//evil.example/x`)).toBeGreaterThanOrEqual(400)
    const unknown = await door('/no/such/operation')
    expect(unknown.status).toBe(400)
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('spapi_operation_unknown')
    expect(upstream.seen).toHaveLength(0)
  })

  it('refuses header values that could inject lines', async () => {
    // Clients refuse CR/LF themselves; obs-text (bytes above 0x7f) passes HTTP parsing and is refused by the allow-list.
    const path = `/v1/connections/${connectionId}/spapi${PARTICIPATIONS}`
    expect(await rawGet(path, { 'accept-language': 'de\u00ff\u00e9' })).toBe(400)
    expect(await rawGet(path, { 'content-type': `application/json; ${'x'.repeat(2000)}` })).toBe(400)
    expect(upstream.seen).toHaveLength(0)
  })

  it('streams a large request body to Amazon and a large response back', async () => {
    const size = 3 * 1024 * 1024
    upstream.intercepts.push(async (seen, req, res) => {
      for await (const chunk of req) seen.bytes += (chunk as Buffer).length
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-amzn-RequestId': 'big' })
      const block = Buffer.alloc(64 * 1024, 97)
      for (let sent = 0; sent < size; sent += block.length) res.write(block)
      res.end()
      return true
    })
    // putListingsItem: an idempotent PUT with a JSON body, here a large one streamed in chunks.
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024))
    let left = 48
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (left-- > 0) controller.enqueue(chunk)
        else controller.close()
      },
    })
    const response = await door('/listings/2021-08-01/items/SELLER1/SKU%2F1?marketplaceIds=ATVPDKIKX0DER', {
      method: 'PUT',
      body,
      headers: { 'content-type': 'application/json' },
      duplex: 'half',
    } as RequestInit)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-amzn-requestid')).toBe('big')
    expect((await response.arrayBuffer()).byteLength).toBe(size)
    expect(upstream.seen[0]?.bytes).toBe(48 * 64 * 1024)
    expect(upstream.seen[0]?.url).toContain('/SKU%2F1?marketplaceIds=ATVPDKIKX0DER')
  })

  it('answers our own 429 with Retry-After and spapi_throttled after Amazon’s 429 leaves no turn in time', async () => {
    // The simulator's plan for the operation, tighter than the table's (0.016 rps, burst 15): one call, then one
    // every 1000 s.
    const plan = (body: object) =>
      fetch(`${stack.simulatorUrl}/_control/usage-plans`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ operation: 'getMarketplaceParticipations', ...body }),
      })
    expect((await plan({ rate: 0.001, burst: 1 })).status).toBe(200)
    try {
      const first = await door(PARTICIPATIONS)
      expect(first.status).toBe(200)
      await first.body?.cancel()
      // Amazon's 429 backs the bucket off by one interval of the rate it reported, far past the 30 s deadline.
      const response = await door(PARTICIPATIONS)
      expect(response.status).toBe(429)
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('spapi_throttled')
      expect(upstream.seen).toHaveLength(2)
    } finally {
      await plan({ rate: 0.016, burst: 15 })
    }
  })
})

describe('POST /v1/connections/:id/restricted-data-tokens', () => {
  const post = (body: unknown) =>
    stack.api('POST', `/v1/connections/${connectionId}/restricted-data-tokens`, body)

  it('validates the body and caps it at 50 resources', async () => {
    const resource = { method: 'GET', path: '/orders/v0/orders/{orderId}', dataElements: ['buyerInfo'] }
    expect((await post({ restrictedResources: [] })).status).toBe(400)
    expect((await post({ restrictedResources: Array(51).fill(resource) })).status).toBe(400)
    expect((await post({ restrictedResources: [{ ...resource, method: 'PATCH' }] })).status).toBe(400)
    expect((await post({ restrictedResources: [{ ...resource, dataElements: ['ssn'] }] })).status).toBe(400)
    expect((await post({ restrictedResources: [{ ...resource, path: '/orders/../x' }] })).status).toBe(400)
    for (const path of [
      '/orders/v0/orders/..;',
      '/orders/v0/orders/%2e%2e%3B',
      '/orders/v0/orders/..%00',
      '/orders/v0/orders/1;x',
      '/orders/v0/orders/%2F..%2Fx',
      '/orders/v0/orders/{orderId',
    ])
      expect((await post({ restrictedResources: [{ ...resource, path }] })).status).toBe(400)
    expect((await post({ restrictedResources: [resource], extra: 1 })).status).toBe(400)
    expect(upstream.seen).toHaveLength(0)
  })

  it('returns an RDT the simulator accepts on the named path only, audits it as an RDT, and never logs it', async () => {
    const orderId = await anyOrderId()
    const resources = [
      { method: 'GET', path: `/orders/v0/orders/${orderId}`, dataElements: ['buyerInfo'] },
      ...Array.from({ length: 49 }, (_, i) => ({ method: 'GET', path: `/orders/v0/orders/${i}/address` })),
    ]
    const issued = await post({ restrictedResources: resources })
    expect(issued.status).toBe(200)
    const rdt = String(issued.json['restricted_data_token'])
    expect(rdt).toMatch(/^Atz\.sprdt\|/)
    expect(issued.json['expires_in']).toBeGreaterThan(3500)
    expect(
      upstream.seen.filter((s) => s.url.endsWith('/tokens/2021-03-01/restrictedDataToken')),
    ).toHaveLength(1)

    // The caller uses it on its own, straight at the simulator: accepted where it was asked for, with the PII.
    const sim = (path: string) =>
      fetch(`${stack.simulatorUrl}/${NA_HOST}${path}`, { headers: { 'x-amz-access-token': rdt } })
    const order = await sim(`/orders/v0/orders/${orderId}`)
    expect(order.status).toBe(200)
    const payload = ((await order.json()) as { payload: { BuyerInfo?: { BuyerEmail?: string } } }).payload
    expect(payload.BuyerInfo?.BuyerEmail).toBeTruthy()
    // Refused on a path it does not name, restricted or not.
    expect((await sim(`/orders/v0/orders/${orderId}/buyerInfo`)).status).toBe(403)
    expect((await sim(PARTICIPATIONS)).status).toBe(403)

    const events = await stack.runtime.store.listEvents({ connectionId, limit: 50 })
    const audited = events.filter((e) => e.type === 'token.issued')
    expect(audited).toHaveLength(1)
    expect(audited[0]?.data).toMatchObject({ kind: 'restricted_data_token' })
    expect(stack.logger.text()).not.toContain(rdt)
    expect(JSON.stringify(events)).not.toContain(rdt)
  })
})
