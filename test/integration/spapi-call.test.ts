/**
 * The library's SP-API call path against the simulator on loopback, through a recording proxy
 * (test/helpers/spapi-upstream.ts) that forwards everything to the simulator and counts what was sent. The
 * simulator answers for real: Orders with PII only under a matching RDT, the Tokens API, usage plans with
 * Amazon's 429. The proxy answers itself only where the simulator cannot produce the case on demand: one 5xx
 * after the body was sent, a 429 with a Retry-After hint (the simulator sends none, as Amazon often does not).
 * Waits go through the real clock but are short (jitter is injected as 0 where a test waits).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { createOperator } from '../../src/core/access/operators.ts'
import { defaultDeps } from '../../src/core/deps.ts'
import { SpApiClient, type SpApiClientOptions } from '../../src/core/spapi/client.ts'
import { createMemoryLimiter } from '../../src/core/spapi/limiter.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'
import { BrowserClient, type Hop } from '../helpers/browser-client.ts'
import { connectSeller } from '../helpers/flows.ts'
import { answer, type SpApiUpstream, startStackBehindUpstream } from '../helpers/spapi-upstream.ts'
import { MemoryLogger, type Stack } from '../helpers/stack.ts'

const PARTICIPATIONS = '/sellers/v1/marketplaceParticipations'
const NA_HOST = 'sellingpartnerapi-na.amazon.com'

let upstream: SpApiUpstream
let stack: Stack
let connectionId: string
let sellingPartnerId: string

beforeAll(async () => {
  ;({ stack, upstream } = await startStackBehindUpstream())
})

afterAll(async () => {
  await stack?.close()
  await upstream?.close()
})

// A new seller per test: each starts with full usage-plan buckets (the limiter counts per connection).
beforeEach(async () => {
  const connected = await connectSeller(stack, new BrowserClient(), { tenantId: 'tenant-1' })
  connectionId = connected.connectionId
  sellingPartnerId = connected.sellingPartnerId
  upstream.seen.length = 0
  upstream.intercepts.length = 0
})

/** createReport: a POST that creates something, so it is not idempotent. */
const CREATE_REPORT = '/reports/2021-06-30/reports'
const REPORT_BODY = JSON.stringify({
  reportType: 'GET_MERCHANT_LISTINGS_ALL_DATA',
  marketplaceIds: ['ATVPDKIKX0DER'],
})

/**
 * A second client on the stack's store and token manager, pointed elsewhere, with its own limits: the seam a
 * deployment configures, used here for upstreams the simulator cannot be (silent, absent). No jitter.
 */
function clientFor(
  spapiUrlTemplate: string,
  options: Pick<
    SpApiClientOptions,
    'attemptTimeoutMs' | 'maxAttempts' | 'replayBufferBytes' | 'maxBufferedRequestBytes'
  >,
): { client: SpApiClient; logger: MemoryLogger } {
  const logger = new MemoryLogger()
  const deps = defaultDeps({ now: stack.clock.now, random: () => 0, logger })
  const client = new SpApiClient(
    {
      store: stack.runtime.store,
      tokens: stack.runtime.tokens,
      endpoints: { spapiUrlTemplate, spapiSandbox: false },
      limiter: createMemoryLimiter(deps),
      ...options,
    },
    deps,
  )
  return { client, logger }
}

/** An HTTP server that reads each request and never answers it. */
async function startSilentServer(): Promise<{ url: string; requests(): number; close(): Promise<void> }> {
  let requests = 0
  const server = createServer((req) => {
    requests++
    req.resume()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** A loopback port nothing listens on (taken, then given back). */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

const RDT_PATH = '/tokens/2021-03-01/restrictedDataToken'
const NA_MARKETPLACES = ['ATVPDKIKX0DER', 'A2EUQ1WTGCTBG2', 'A1AM78C64UM0Y8', 'A2Q3Y263D00KWC']

interface OrderJson {
  AmazonOrderId: string
  OrderStatus: string
  BuyerInfo?: { BuyerEmail?: string }
  ShippingAddress?: { AddressLine1?: string; City?: string }
}

/** Orders of the last ten days up to two days ago: shipped or canceled, so they carry a shipping address. */
function ordersQuery(): Record<string, string | string[]> {
  const now = stack.clock.now()
  return {
    MarketplaceIds: NA_MARKETPLACES.join(','),
    CreatedAfter: new Date(now - 10 * 86_400_000).toISOString(),
    CreatedBefore: new Date(now - 2 * 86_400_000).toISOString(),
  }
}

/**
 * A shipped order of the seller, listed straight from the simulator with the plain access token (no RDT, no
 * proxy): which also shows that without an RDT the simulator leaves the personal data out.
 */
async function shippedOrderId(): Promise<string> {
  const token = await stack.runtime.tokens.getAccessToken(connectionId)
  const query = new URLSearchParams(ordersQuery() as Record<string, string>)
  const response = await fetch(`${stack.simulatorUrl}/${NA_HOST}/orders/v0/orders?${query}`, {
    headers: { 'x-amz-access-token': token.accessToken },
  })
  expect(response.status).toBe(200)
  const orders = ((await response.json()) as { payload: { Orders: OrderJson[] } }).payload.Orders
  const shipped = orders.filter((o) => o.OrderStatus === 'Shipped')
  expect(shipped.length).toBeGreaterThan(0)
  for (const o of orders) {
    expect(o.BuyerInfo).toBeUndefined()
    expect(o.ShippingAddress?.AddressLine1).toBeUndefined()
  }
  return shipped[0]?.AmazonOrderId ?? ''
}

/** Ids of the seller's recent orders, listed straight from the simulator. */
async function orderIds(): Promise<string[]> {
  const token = await stack.runtime.tokens.getAccessToken(connectionId)
  const query = new URLSearchParams(ordersQuery() as Record<string, string>)
  const response = await fetch(`${stack.simulatorUrl}/${NA_HOST}/orders/v0/orders?${query}`, {
    headers: { 'x-amz-access-token': token.accessToken },
  })
  expect(response.status).toBe(200)
  return ((await response.json()) as { payload: { Orders: OrderJson[] } }).payload.Orders.map(
    (o) => o.AmazonOrderId,
  )
}

/** The resources an RDT names: the simulator's RDTs carry them in their payload (src/simulator/spapi/rdt.ts). */
function rdtResources(rdt: string): { m: string; p: string; d?: string[] }[] {
  const payload = rdt.replace(/^Atz\.sprdt\|/, '').split('.')[0] ?? ''
  return (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { res: [] }).res
}

async function control(path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${stack.simulatorUrl}/_control/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  expect(response.status).toBe(200)
  return (await response.json()) as Record<string, unknown>
}

const setSimulatorPlan = (operation: string, plan: { rate: number; burst: number }) =>
  control('usage-plans', { operation, ...plan })
const resetSimulatorCounters = () => control('reset-counters', {})

async function simulatorThrottled(): Promise<Record<string, number>> {
  const counters = (await (await fetch(`${stack.simulatorUrl}/_control/counters`)).json()) as {
    spapi: { throttledByOperation: Record<string, number> }
  }
  return counters.spapi.throttledByOperation
}

let operators = 0

/** A new operator, signed in to the console in a browser of its own. */
async function consoleOperator(): Promise<BrowserClient> {
  const email = `op${++operators}@example.com`
  const password = 'correct horse battery staple'
  await createOperator(stack.runtime.store, stack.runtime.deps, stack.runtime.events, { email, password })
  const client = new BrowserClient()
  const page = await client.get(`${stack.serviceUrl}/console/sign-in`)
  const signedIn = await client.post(`${stack.serviceUrl}/console/sign-in`, {
    csrf: csrfOf(page),
    email,
    password,
  })
  expect(signedIn.status).toBe(303)
  return client
}

function csrfOf(page: Hop): string {
  const token = page.body.match(/name="csrf" value="([^"]+)"/)?.[1]
  if (!token) throw new Error(`no csrf token on ${page.url}`)
  return token
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isSpConnectError(error) ? error.code : error).toBe(code)
}

describe('SpApiClient.call', () => {
  it('refuses a path that is no SP-API operation before fetching a token or sending anything', async () => {
    const before = stack.simulator.counters().total
    stack.runtime.tokens.forget(connectionId)
    await expectCode(
      stack.runtime.spapi.call(connectionId, { method: 'GET', path: '/not/an/operation' }),
      'spapi_operation_unknown',
    )
    await expectCode(
      stack.runtime.spapi.call(connectionId, { method: 'DELETE', path: PARTICIPATIONS }),
      'spapi_operation_unknown',
    )
    await expectCode(
      stack.runtime.spapi.call(connectionId, { method: 'GET', path: 'https://evil.example/x' }),
      'invalid_request',
    )
    await expectCode(
      stack.runtime.spapi.call(connectionId, { method: 'GET', path: '/sellers/v1/%2e%2e/x' }),
      'invalid_request',
    )
    expect(upstream.seen).toHaveLength(0)
    expect(stack.simulator.counters().total).toBe(before)
  })

  it('calls the regional endpoint with the token and a conforming User-Agent, never the caller’s credentials', async () => {
    const response = await stack.runtime.spapi.call(connectionId, {
      method: 'GET',
      path: PARTICIPATIONS,
      headers: {
        authorization: 'Bearer caller-secret',
        cookie: 'session=caller-secret',
        'x-amz-access-token': 'caller-token',
        'x-forwarded-for': '10.0.0.1',
        'proxy-authorization': 'Basic x',
        accept: 'application/json',
        'accept-language': 'de-DE',
      },
    })
    expect(response.status).toBe(200)
    expect(response.requestId).toBeTruthy()
    expect(response.headers.get('x-amzn-ratelimit-limit')).toBeTruthy()
    const body = JSON.parse(await response.text()) as { payload: unknown[] }
    expect(body.payload.length).toBeGreaterThan(0)
    expect(upstream.seen).toHaveLength(1)
    const sent = upstream.seen[0]
    expect(sent?.url).toBe(`/${NA_HOST}${PARTICIPATIONS}`)
    expect(sent?.headers['authorization']).toBeUndefined()
    expect(sent?.headers['cookie']).toBeUndefined()
    expect(sent?.headers['x-forwarded-for']).toBeUndefined()
    expect(sent?.headers['proxy-authorization']).toBeUndefined()
    expect(sent?.headers['x-amz-access-token']).not.toBe('caller-token')
    expect(sent?.headers['x-amz-access-token']).toMatch(/^Atza\|/)
    expect(sent?.headers['accept-language']).toBe('de-DE')
    const ua = String(sent?.headers['user-agent'])
    expect(ua.length).toBeLessThanOrEqual(500)
    expect(ua).toMatch(/^sp-connect\/\d+\.\d+\.\d+ \(Language=TypeScript(; [A-Za-z]+=[^;)]+)*\)$/)
  })

  it('waits after Amazon’s 429 and succeeds within the deadline', async () => {
    let throttled = 0
    upstream.intercepts.push(async (seen, req, res) => {
      if (throttled++ > 0) return false
      await answer(
        seen,
        req,
        res,
        429,
        {
          errors: [{ code: 'QuotaExceeded', message: 'You exceeded your quota for the requested resource.' }],
        },
        // The plan's own interval (60 s for this operation) would pass the deadline: Amazon's hint is shorter.
        { 'retry-after': '1' },
      )
      return true
    })
    const response = await stack.runtime.spapi.call(connectionId, {
      method: 'GET',
      path: PARTICIPATIONS,
      timeoutMs: 20_000,
    })
    expect(response.status).toBe(200)
    await response.text()
    expect(upstream.seen).toHaveLength(2)
  })

  it('gives up with spapi_throttled when Amazon keeps throttling past the deadline', async () => {
    upstream.intercepts.push(async (seen, req, res) => {
      await answer(
        seen,
        req,
        res,
        429,
        { errors: [{ code: 'QuotaExceeded', message: 'quota' }] },
        { 'retry-after': '30' },
      )
      return true
    })
    const error = await stack.runtime.spapi
      .call(connectionId, { method: 'GET', path: PARTICIPATIONS, deadline: stack.clock.now() + 2_000 })
      .catch((e: unknown) => e)
    expect(isSpConnectError(error) && error.code).toBe('spapi_throttled')
    expect(isSpConnectError(error) && error.retryAfterSeconds).toBeGreaterThanOrEqual(1)
    expect(upstream.seen).toHaveLength(1)
  })

  it('retries a 5xx on GET, but never a non-idempotent POST', async () => {
    let failed = 0
    upstream.intercepts.push(async (seen, req, res) => {
      if (failed++ > 0) return false
      await answer(seen, req, res, 503, { errors: [{ code: 'ServiceUnavailable', message: 'x' }] })
      return true
    })
    const ok = await stack.runtime.spapi.call(connectionId, { method: 'GET', path: PARTICIPATIONS })
    expect(ok.status).toBe(200)
    await ok.text()
    expect(upstream.seen).toHaveLength(2)

    upstream.seen.length = 0
    upstream.intercepts.length = 0
    upstream.intercepts.push(async (seen, req, res) => {
      await answer(seen, req, res, 500, { errors: [{ code: 'InternalFailure', message: 'x' }] })
      return true
    })
    // createReport: a POST that creates something, so a 500 after sending is final.
    const post = await stack.runtime.spapi.call(connectionId, {
      method: 'POST',
      path: CREATE_REPORT,
      body: REPORT_BODY,
    })
    expect(post.status).toBe(500)
    await post.text()
    expect(upstream.seen).toHaveLength(1)
    expect(upstream.seen[0]?.bytes).toBeGreaterThan(0)
  })

  it('retries a 5xx on PUT and DELETE, resending the body', async () => {
    // The simulator implements no Listings operation, so the proxy plays both answers.
    const listing = '/listings/2021-08-01/items/SELLER1/SKU-1?marketplaceIds=ATVPDKIKX0DER'
    let answered = 0
    upstream.intercepts.push(async (seen, req, res) => {
      const status = answered++ % 2 === 0 ? 503 : 200
      await answer(seen, req, res, status, status === 200 ? { status: 'ACCEPTED' } : { errors: [] })
      return true
    })
    const put = await stack.runtime.spapi.call(connectionId, {
      method: 'PUT',
      path: listing,
      body: JSON.stringify({ productType: 'PRODUCT', attributes: {} }),
    })
    expect(put.status).toBe(200)
    await put.text()
    expect(upstream.seen.map((s) => s.method)).toEqual(['PUT', 'PUT'])
    for (const sent of upstream.seen) expect(sent.bytes).toBeGreaterThan(0)

    upstream.seen.length = 0
    const del = await stack.runtime.spapi.call(connectionId, { method: 'DELETE', path: listing })
    expect(del.status).toBe(200)
    await del.text()
    expect(upstream.seen.map((s) => s.method)).toEqual(['DELETE', 'DELETE'])
  })

  it('does not retry a POST whose connection dropped after it was sent', async () => {
    // A reset in the middle of an exchange: the simulator cannot be made to do that.
    upstream.intercepts.push(async (seen, req) => {
      for await (const chunk of req) seen.bytes += (chunk as Buffer).length
      req.socket.destroy()
      return true
    })
    await expectCode(
      stack.runtime.spapi.call(connectionId, { method: 'POST', path: CREATE_REPORT, body: REPORT_BODY }),
      'spapi_unreachable',
    )
    expect(upstream.seen).toHaveLength(1)
    expect(upstream.seen[0]?.bytes).toBeGreaterThan(0)
  })

  it('times out an attempt that gets no answer: a GET is tried again, a POST is not', async () => {
    const silent = await startSilentServer()
    try {
      const { client } = clientFor(`${silent.url}/{host}`, { attemptTimeoutMs: 300, maxAttempts: 2 })
      await expectCode(client.call(connectionId, { method: 'GET', path: PARTICIPATIONS }), 'spapi_timeout')
      expect(silent.requests()).toBe(2)
      await expectCode(
        client.call(connectionId, { method: 'POST', path: CREATE_REPORT, body: REPORT_BODY }),
        'spapi_timeout',
      )
      expect(silent.requests()).toBe(3)
    } finally {
      await silent.close()
    }
  })

  it('retries even a POST when no connection could be opened, since nothing was sent', async () => {
    const port = await closedPort()
    const { client, logger } = clientFor(`http://127.0.0.1:${port}/{host}`, { maxAttempts: 3 })
    await expectCode(
      client.call(connectionId, { method: 'POST', path: CREATE_REPORT, body: REPORT_BODY }),
      'spapi_unreachable',
    )
    const retries = logger.lines.filter((line) => line.includes('spapi retry after failure'))
    expect(retries).toHaveLength(2)
    expect(logger.text()).not.toMatch(/Atza\|/)
  })

  it('refreshes once and retries when SP-API says the token expired', async () => {
    await fetch(`${stack.simulatorUrl}/_control/expire-tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sellingPartnerId }),
    })
    const before = stack.simulator.counters().byGrant.refresh_token
    const response = await stack.runtime.spapi.call(connectionId, { method: 'GET', path: PARTICIPATIONS })
    expect(response.status).toBe(200)
    await response.text()
    expect(upstream.seen).toHaveLength(2)
    expect(stack.simulator.counters().byGrant.refresh_token).toBe(before + 1)
  })

  it('obtains one RDT for concurrent restricted calls, caches it, and sends it instead of the access token', async () => {
    const orderId = await shippedOrderId()
    const orderPath = `/orders/v0/orders/${orderId}`
    // The simulator itself proves single-flight: under this plan a second RDT request for the seller would be
    // answered 429 (and counted), and a retry could never succeed within the deadline.
    await setSimulatorPlan('createRestrictedDataToken', { rate: 0.001, burst: 1 })
    await resetSimulatorCounters()
    try {
      const calls = await Promise.all(
        Array.from({ length: 5 }, () =>
          stack.runtime.spapi.call(connectionId, { method: 'GET', path: orderPath }),
        ),
      )
      for (const response of calls) {
        expect(response.status).toBe(200)
        const order = JSON.parse(await response.text()) as { payload: OrderJson }
        expect(order.payload.BuyerInfo?.BuyerEmail).toMatch(/@marketplace\.amazon\.com$/)
        expect(order.payload.ShippingAddress?.AddressLine1).toBeTruthy()
      }
      const again = await stack.runtime.spapi.call(connectionId, { method: 'GET', path: orderPath })
      expect(again.status).toBe(200)
      await again.body?.cancel()
      expect(await simulatorThrottled()).toEqual({})
    } finally {
      await setSimulatorPlan('createRestrictedDataToken', { rate: 1, burst: 10 })
    }
    const rdtRequests = upstream.seen.filter((s) => s.url.endsWith(RDT_PATH))
    expect(rdtRequests).toHaveLength(1)
    expect(rdtRequests[0]?.headers['x-amz-access-token']).toMatch(/^Atza\|/)
    const orderCalls = upstream.seen.filter((s) => s.url.endsWith(orderPath))
    expect(orderCalls).toHaveLength(6)
    const rdt = String(orderCalls[0]?.headers['x-amz-access-token'])
    expect(rdt).toMatch(/^Atz\.sprdt\|/)
    for (const call of orderCalls) expect(call.headers['x-amz-access-token']).toBe(rdt)
    expect(stack.logger.text()).not.toContain('Atz.sprdt|')
  })

  it('asks one RDT for the operation’s template path, and it serves every order id', async () => {
    const ids = (await orderIds()).slice(0, 6)
    expect(ids.length).toBeGreaterThanOrEqual(3)
    // Under this plan a second RDT request for the seller would be answered 429 and counted.
    await setSimulatorPlan('createRestrictedDataToken', { rate: 0.001, burst: 1 })
    await resetSimulatorCounters()
    try {
      for (const id of ids) {
        const response = await stack.runtime.spapi.call(connectionId, {
          method: 'GET',
          path: `/orders/v0/orders/${id}`,
        })
        expect(response.status).toBe(200)
        const order = (JSON.parse(await response.text()) as { payload: OrderJson }).payload
        expect(order.AmazonOrderId).toBe(id)
        expect(order.BuyerInfo?.BuyerEmail).toMatch(/@marketplace\.amazon\.com$/)
      }
      expect(await simulatorThrottled()).toEqual({})
    } finally {
      await setSimulatorPlan('createRestrictedDataToken', { rate: 1, burst: 10 })
    }
    expect(upstream.seen.filter((s) => s.url.endsWith(RDT_PATH))).toHaveLength(1)
    const orderCalls = upstream.seen.filter((s) => /\/orders\/v0\/orders\/[^/?]+$/.test(s.url))
    expect(orderCalls).toHaveLength(ids.length)
    const rdt = String(orderCalls[0]?.headers['x-amz-access-token'])
    for (const call of orderCalls) expect(call.headers['x-amz-access-token']).toBe(rdt)
    expect(rdtResources(rdt)).toEqual([
      {
        m: 'GET',
        p: '/orders/v0/orders/{orderId}',
        d: ['buyerInfo', 'buyerTaxInformation', 'shippingAddress'],
      },
    ])
  })

  it('asks the RDT for the data elements given, and the simulator shows only those', async () => {
    const orderId = await shippedOrderId()
    const addressOnly = await stack.runtime.spapi.call(connectionId, {
      method: 'GET',
      path: `/orders/v0/orders/${orderId}`,
      dataElements: ['shippingAddress'],
    })
    const order = (JSON.parse(await addressOnly.text()) as { payload: OrderJson }).payload
    expect(order.ShippingAddress?.AddressLine1).toBeTruthy()
    expect(order.BuyerInfo).toBeUndefined()

    // getOrders, restricted too: buyer info on every order, the street address on none.
    const listed = await stack.runtime.spapi.call(connectionId, {
      method: 'GET',
      path: '/orders/v0/orders',
      query: ordersQuery(),
      dataElements: ['buyerInfo'],
    })
    expect(listed.status).toBe(200)
    const orders = (JSON.parse(await listed.text()) as { payload: { Orders: OrderJson[] } }).payload.Orders
    expect(orders.length).toBeGreaterThan(0)
    for (const o of orders) {
      expect(o.BuyerInfo?.BuyerEmail).toBeTruthy()
      expect(o.ShippingAddress?.AddressLine1).toBeUndefined()
    }
    // Two resource sets, two RDTs.
    expect(upstream.seen.filter((s) => s.url.endsWith(RDT_PATH))).toHaveLength(2)
    await expectCode(
      stack.runtime.spapi.call(connectionId, {
        method: 'GET',
        path: '/orders/v0/orders',
        query: ordersQuery(),
        dataElements: ['ssn'],
      }),
      'invalid_request',
    )
  })

  it('forgets the cached RDTs of a disconnected connection', async () => {
    const orderId = await shippedOrderId()
    const path = `/orders/v0/orders/${orderId}`
    await (await stack.runtime.spapi.call(connectionId, { method: 'GET', path })).text()
    expect((await stack.api('DELETE', `/v1/connections/${connectionId}`)).status).toBe(200)
    await expectCode(
      stack.runtime.spapi.call(connectionId, { method: 'GET', path }),
      'connection_disconnected',
    )
    // The seller comes back: the connection is the same, its RDT is not.
    const back = await connectSeller(stack, new BrowserClient(), { tenantId: 'tenant-1', sellingPartnerId })
    expect(back.connectionId).toBe(connectionId)
    const response = await stack.runtime.spapi.call(connectionId, { method: 'GET', path })
    expect(response.status).toBe(200)
    await response.text()
    expect(upstream.seen.filter((s) => s.url.endsWith(RDT_PATH))).toHaveLength(2)
  })

  it('forgets the cached RDTs when an operator disconnects in the console', async () => {
    const orderId = await shippedOrderId()
    const path = `/orders/v0/orders/${orderId}`
    await (await stack.runtime.spapi.call(connectionId, { method: 'GET', path })).text()
    const client = await consoleOperator()
    const detail = await client.get(`${stack.serviceUrl}/connections/${connectionId}`)
    const disconnected = await client.post(
      `${stack.serviceUrl}/console/connections/${connectionId}/disconnect`,
      { csrf: csrfOf(detail) },
    )
    expect(disconnected.status).toBe(303)
    const back = await connectSeller(stack, new BrowserClient(), { tenantId: 'tenant-1', sellingPartnerId })
    expect(back.connectionId).toBe(connectionId)
    const response = await stack.runtime.spapi.call(connectionId, { method: 'GET', path })
    expect(response.status).toBe(200)
    await response.text()
    expect(upstream.seen.filter((s) => s.url.endsWith(RDT_PATH))).toHaveLength(2)
  })
})

describe('request bodies held in memory', () => {
  const CHUNK = 64 * 1024

  /**
   * A body of `total` 64 KiB chunks that holds back its last chunk until `finish()` (or fails there when
   * `fail` is set). Nothing is pulled before someone reads it (highWaterMark 0), so `pulls()` shows whether it
   * was read at all.
   */
  function heldBody(total: number, fail = false) {
    let pulls = 0
    let sent = 0
    let finish = () => {}
    const finished = new Promise<void>((resolve) => {
      finish = resolve
    })
    const stream = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          pulls++
          if (sent === total - 1) {
            if (fail) return controller.error(new Error('caller went away'))
            await finished
          }
          if (sent++ < total) controller.enqueue(new Uint8Array(CHUNK).fill(120))
          else controller.close()
        },
      },
      { highWaterMark: 0 },
    )
    return { stream, pulls: () => pulls, finish }
  }

  /** Amazon's answer to createReport, given once the whole body arrived (a body this size the simulator refuses). */
  function acceptReports(): void {
    upstream.intercepts.push(async (seen, req, res) => {
      try {
        await answer(seen, req, res, 202, { reportId: 'R1' })
      } catch {
        // The caller aborted mid-body.
      }
      return true
    })
  }

  const post = (client: SpApiClient, body: ReadableStream<Uint8Array> | string, signal?: AbortSignal) =>
    client.call(connectionId, { method: 'POST', path: CREATE_REPORT, body, ...(signal ? { signal } : {}) })

  it('refuses streamed calls past the budget before reading them, and gives the bytes back when calls end', async () => {
    acceptReports()
    // Room for one body of three chunks (the replay buffer of two, and the chunk that showed it was longer).
    const { client } = clientFor(`${upstream.url}/{host}`, {
      replayBufferBytes: 2 * CHUNK,
      maxBufferedRequestBytes: 3 * CHUNK,
    })
    const first = heldBody(6)
    const firstCall = post(client, first.stream)
    await vi.waitFor(() => expect(first.pulls()).toBe(6), { timeout: 20_000, interval: 10 })
    expect(client.bufferedRequestBytes).toBe(3 * CHUNK)

    const others = [heldBody(6), heldBody(6), heldBody(6)]
    const refused = await Promise.all(
      others.map((other) => post(client, other.stream).catch((e: unknown) => e)),
    )
    for (const error of refused) {
      expect(isSpConnectError(error) && error.code).toBe('spapi_queue_full')
      expect(isSpConnectError(error) && error.retryAfterSeconds).toBeGreaterThanOrEqual(1)
    }
    for (const other of others) expect(other.pulls()).toBe(0)
    // A string body is the caller's memory already: the budget does not hold it back.
    const plain = await post(client, REPORT_BODY)
    expect(plain.status).toBe(202)
    await plain.text()

    first.finish()
    const response = await firstCall
    expect(response.status).toBe(202)
    await response.text()
    expect(client.bufferedRequestBytes).toBe(0)
    expect(upstream.seen.map((s) => s.bytes)).toEqual([6 * CHUNK, Buffer.byteLength(REPORT_BODY)])

    // The room is back: a short stream fits, and holds only its own bytes while it is sent.
    const short = await post(client, new Blob(['{"reportType":"X"}']).stream())
    expect(short.status).toBe(202)
    await short.text()
    expect(client.bufferedRequestBytes).toBe(0)
  })

  it('gives the bytes back when a body fails to arrive or the caller aborts', async () => {
    acceptReports()
    const { client } = clientFor(`${upstream.url}/{host}`, {
      replayBufferBytes: 2 * CHUNK,
      maxBufferedRequestBytes: 3 * CHUNK,
    })
    // Fails while being buffered: nothing reaches Amazon.
    const broken = heldBody(2, true)
    await expect(post(client, broken.stream)).rejects.toThrow('caller went away')
    expect(client.bufferedRequestBytes).toBe(0)
    expect(upstream.seen).toHaveLength(0)

    // Aborted while its body is on the way.
    const held = heldBody(6)
    const controller = new AbortController()
    const call = post(client, held.stream, controller.signal).catch((e: unknown) => e)
    await vi.waitFor(() => expect(held.pulls()).toBe(6), { timeout: 20_000, interval: 10 })
    expect(client.bufferedRequestBytes).toBe(3 * CHUNK)
    controller.abort(new Error('caller aborted'))
    expect(await call).toBeInstanceOf(Error)
    expect(client.bufferedRequestBytes).toBe(0)
    held.finish()
  })
})
