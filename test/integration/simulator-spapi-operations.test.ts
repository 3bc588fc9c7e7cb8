import { request as httpRequest } from 'node:http'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { SPAPI_HOSTS } from '../../src/domain/regions.ts'
import {
  createSimulator,
  generateDevApp,
  type Simulator,
  type SimulatorServer,
  simulatorUrls,
  startSimulatorServer,
} from '../../src/simulator/index.ts'
import { sellerParticipations } from '../../src/simulator/spapi.ts'

const app = generateDevApp({
  redirectUri: 'https://app.example.com/cb',
  loginUri: 'https://app.example.com/login',
})
const creds = { client_id: app.clientId, client_secret: app.clientSecrets[0]?.secret ?? '' }
const NA = SPAPI_HOSTS.na.production
const QUOTA = {
  errors: [
    { code: 'QuotaExceeded', message: 'You exceeded your quota for the requested resource.', details: '' },
  ],
}
const DENIED_NO_ACCESS = {
  errors: [{ code: 'Unauthorized', message: 'Access to requested resource is denied.', details: '' }],
}

// The simulator's own clock starts here, so the fake order history is the same on every run.
const START = Date.parse('2026-03-01T12:00:00Z')
let sim: Simulator
let server: SimulatorServer
let urls: ReturnType<typeof simulatorUrls>

beforeAll(async () => {
  sim = createSimulator({ apps: [app], now: () => START })
  server = await startSimulatorServer(sim, { port: 0 })
  urls = simulatorUrls(server.url)
})
afterAll(async () => {
  await server.close()
  await sim.close()
})

async function tokenFor(body: Record<string, string>): Promise<string> {
  const res = await fetch(urls.token, { method: 'POST', body: new URLSearchParams({ ...body, ...creds }) })
  return ((await res.json()) as { access_token: string }).access_token
}

function sellerToken(sellingPartnerId: string): Promise<string> {
  const rt = sim.selfAuthorize(app.appId, sellingPartnerId, 'na')
  return tokenFor({ grant_type: 'refresh_token', refresh_token: rt })
}

function grantlessToken(scope: string): Promise<string> {
  return tokenFor({ grant_type: 'client_credentials', scope })
}

interface Answer {
  status: number
  headers: Headers
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
  body: any
}

async function call(
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  host = NA,
): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (token !== undefined) headers['x-amz-access-token'] = token
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(urls.spapi(host, path), {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) }
}

async function control(endpoint: 'usage-plans' | 'counters' | 'reset-counters', body?: object) {
  const res = await fetch(urls.control(endpoint), {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

async function rdt(token: string, restrictedResources: unknown[]): Promise<Answer> {
  return call(token, 'POST', '/tokens/2021-03-01/restrictedDataToken', { restrictedResources })
}

const ordersQuery = (extra = '') =>
  `/orders/v0/orders?MarketplaceIds=ATVPDKIKX0DER&CreatedAfter=2026-01-01T00:00:00Z${extra}`

describe('usage plans', () => {
  beforeEach(async () => {
    await control('reset-counters', {})
  })

  it("answers 429 QuotaExceeded past the plan, per seller, and refills on the simulator's clock", async () => {
    const set = await control('usage-plans', { operation: 'getMarketplaceParticipations', rate: 1, burst: 2 })
    expect(set.status).toBe(200)
    expect(set.body['operation']).toBe('getMarketplaceParticipations')
    const a = await sellerToken('APLANSELLER01')
    const b = await sellerToken('APLANSELLER02')
    const path = '/sellers/v1/marketplaceParticipations'
    const first = await call(a, 'GET', path)
    expect(first.status).toBe(200)
    expect(first.headers.get('x-amzn-ratelimit-limit')).toBe('1')
    expect((await call(a, 'GET', path)).status).toBe(200)
    const over = await call(a, 'GET', path)
    expect(over.status).toBe(429)
    expect(over.body).toEqual(QUOTA)
    expect(over.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/)
    expect(over.headers.has('x-amzn-ratelimit-limit')).toBe(false)
    // Another seller of the same app has its own bucket.
    expect((await call(b, 'GET', path)).status).toBe(200)
    sim.advanceClock(1000)
    expect((await call(a, 'GET', path)).status).toBe(200)
    expect((await call(a, 'GET', path)).status).toBe(429)

    const counters = await control('counters')
    expect(counters.body['spapi']).toEqual({ throttledByOperation: { getMarketplaceParticipations: 2 } })
    expect(counters.body['total']).toEqual(expect.any(Number))
    const listed = await control('usage-plans')
    expect(listed.body).toEqual({ overrides: { getMarketplaceParticipations: { rate: 1, burst: 2 } } })
  })

  it('refuses unknown operations and bad plans', async () => {
    expect((await control('usage-plans', { operation: 'noSuchOperation', rate: 1, burst: 1 })).status).toBe(
      400,
    )
    // getOrders is ambiguous (Orders and Vendor Direct Fulfillment); the table name is not.
    expect((await control('usage-plans', { operation: 'getOrders', rate: 1, burst: 1 })).status).toBe(400)
    expect((await control('usage-plans', { operation: 'getOrderItems', rate: 0, burst: 1 })).status).toBe(400)
    expect((await control('usage-plans', { operation: 'getOrderItems', rate: 1, burst: 0.5 })).status).toBe(
      400,
    )
    const ok = await control('usage-plans', { operation: 'orders.v0.getOrders', rate: 100, burst: 100 })
    expect(ok.status).toBe(200)
  })
})

describe('Restricted Data Tokens and Orders', () => {
  it('requires CreatedAfter or LastUpdatedAfter and MarketplaceIds, like Amazon', async () => {
    const token = await sellerToken('AORDERSELLER01')
    const missing = await call(token, 'GET', '/orders/v0/orders?MarketplaceIds=ATVPDKIKX0DER')
    expect(missing.status).toBe(400)
    expect(missing.body.errors[0].code).toBe('InvalidInput')
    expect(missing.headers.get('x-amzn-ratelimit-limit')).toBeTruthy()
    const both = await call(token, 'GET', `${ordersQuery()}&LastUpdatedAfter=2026-01-01T00:00:00Z`)
    expect(both.status).toBe(400)
    expect((await call(token, 'GET', '/orders/v0/orders?CreatedAfter=2026-01-01T00:00:00Z')).status).toBe(400)
    expect((await call(token, 'GET', ordersQuery('&MaxResultsPerPage=101'))).status).toBe(400)
  })

  it('lists deterministic orders per seller, page by page, without PII for an LWA token', async () => {
    const seller = 'AORDERSELLER02'
    const token = await sellerToken(seller)
    const marketplaces = sellerParticipations(seller, 'na').map((p) => p.marketplace.id)
    const query = `/orders/v0/orders?MarketplaceIds=${marketplaces.join(',')}&CreatedAfter=2026-02-01T00:00:00Z`
    const ids: string[] = []
    let next: string | undefined
    let pages = 0
    do {
      const page = await call(
        token,
        'GET',
        next === undefined
          ? `${query}&MaxResultsPerPage=40`
          : `${query}&NextToken=${encodeURIComponent(next)}`,
      )
      expect(page.status).toBe(200)
      for (const order of page.body.payload.Orders) {
        ids.push(order.AmazonOrderId)
        expect(order.AmazonOrderId).toMatch(/^\d{3}-\d{7}-\d{7}$/)
        expect(marketplaces).toContain(order.MarketplaceId)
        expect(order.BuyerInfo).toBeUndefined()
        if (order.ShippingAddress) {
          expect(order.ShippingAddress.Name).toBeUndefined()
          expect(order.ShippingAddress.AddressLine1).toBeUndefined()
          expect(order.ShippingAddress.PostalCode).toBeTruthy()
        }
      }
      next = page.body.payload.NextToken
      pages += 1
    } while (next !== undefined && pages < 10)
    // About 28 days × 4 slots × 3/5: more than one page of 40.
    expect(pages).toBeGreaterThan(1)
    expect(new Set(ids).size).toBe(ids.length)
    // The same seller gets the same history again; another seller a different one.
    const again = await call(token, 'GET', `${query}&MaxResultsPerPage=5`)
    expect(again.body.payload.Orders.map((o: { AmazonOrderId: string }) => o.AmazonOrderId)).toEqual(
      ids.slice(0, 5),
    )
    const other = await call(await sellerToken('AORDERSELLER03'), 'GET', ordersQuery('&MaxResultsPerPage=5'))
    expect(other.body.payload.Orders.map((o: { AmazonOrderId: string }) => o.AmazonOrderId)).not.toEqual(
      ids.slice(0, 5),
    )

    const orderId = ids[0] ?? ''
    const one = await call(token, 'GET', `/orders/v0/orders/${orderId}`)
    expect(one.status).toBe(200)
    expect(one.body.payload.AmazonOrderId).toBe(orderId)
    const items = await call(token, 'GET', `/orders/v0/orders/${orderId}/orderItems`)
    expect(items.body.payload.OrderItems.length).toBeGreaterThan(0)
    const buyer = await call(token, 'GET', `/orders/v0/orders/${orderId}/buyerInfo`)
    expect(buyer.body.payload).toEqual({ AmazonOrderId: orderId })
    const address = await call(token, 'GET', `/orders/v0/orders/${orderId}/address`)
    expect(address.body.payload.ShippingAddress.Name).toBeUndefined()
    // Another seller's token cannot see this seller's order.
    const stranger = await sellerToken('AORDERSELLER04')
    expect((await call(stranger, 'GET', `/orders/v0/orders/${orderId}`)).status).toBe(404)
  })

  it('issues RDTs that open only the resources and data elements they name', async () => {
    const seller = 'AORDERSELLER05'
    const token = await sellerToken(seller)
    const list = await call(token, 'GET', ordersQuery('&MaxResultsPerPage=3'))
    const [first, second] = list.body.payload.Orders.map((o: { AmazonOrderId: string }) => o.AmazonOrderId)

    const created = await rdt(token, [
      { method: 'GET', path: '/orders/v0/orders', dataElements: ['buyerInfo', 'shippingAddress'] },
      { method: 'GET', path: `/orders/v0/orders/${first}/address` },
      { method: 'GET', path: '/orders/v0/orders/{orderId}/buyerInfo' },
    ])
    expect(created.status).toBe(200)
    expect(created.body.expiresIn).toBe(3600)
    expect(created.headers.get('x-amzn-ratelimit-limit')).toBe('1')
    const token2 = created.body.restrictedDataToken as string
    expect(token2.startsWith('Atz.sprdt|')).toBe(true)

    const withPii = await call(token2, 'GET', ordersQuery('&MaxResultsPerPage=3'))
    expect(withPii.status).toBe(200)
    const order = withPii.body.payload.Orders[0]
    expect(order.BuyerInfo.BuyerEmail).toMatch(/@marketplace\.amazon\.com$/)
    expect(order.BuyerInfo.BuyerName).toBeTruthy()
    expect(
      (await call(token2, 'GET', `/orders/v0/orders/${first}/address`)).body.payload.ShippingAddress.Name,
    ).toBeTruthy()
    // `{orderId}` opens every order; a concrete id only that one.
    expect(
      (await call(token2, 'GET', `/orders/v0/orders/${second}/buyerInfo`)).body.payload.BuyerName,
    ).toBeTruthy()
    const otherAddress = await call(token2, 'GET', `/orders/v0/orders/${second}/address`)
    expect(otherAddress.status).toBe(403)
    expect(otherAddress.body).toEqual(DENIED_NO_ACCESS)
    // Not a resource of the RDT, and not a restricted operation at all.
    expect((await call(token2, 'GET', `/orders/v0/orders/${first}`)).status).toBe(403)
    expect((await call(token2, 'GET', '/sellers/v1/marketplaceParticipations')).status).toBe(403)

    // An RDT without dataElements opens getOrders but shows no PII.
    const plain = await rdt(token, [{ method: 'GET', path: '/orders/v0/orders' }])
    const noPii = await call(plain.body.restrictedDataToken, 'GET', ordersQuery('&MaxResultsPerPage=3'))
    expect(noPii.body.payload.Orders[0].BuyerInfo).toBeUndefined()

    // RDTs expire after an hour on the simulator clock, and die with the authorization.
    sim.advanceClock(3600_000)
    expect((await call(token2, 'GET', ordersQuery())).status).toBe(403)
  })

  it('validates RDT requests like the Tokens API', async () => {
    const token = await sellerToken('AORDERSELLER06')
    const one = { method: 'GET', path: '/orders/v0/orders' }
    expect((await rdt(token, [])).status).toBe(400)
    expect(
      (
        await rdt(
          token,
          Array.from({ length: 51 }, () => one),
        )
      ).status,
    ).toBe(400)
    expect(
      (
        await rdt(
          token,
          Array.from({ length: 50 }, () => one),
        )
      ).status,
    ).toBe(200)
    expect((await rdt(token, [{ method: 'PATCH', path: '/orders/v0/orders' }])).status).toBe(400)
    expect(
      (await rdt(token, [{ method: 'GET', path: '/sellers/v1/marketplaceParticipations' }])).status,
    ).toBe(400)
    expect((await rdt(token, [{ ...one, dataElements: ['creditCard'] }])).status).toBe(400)
    const address = {
      method: 'GET',
      path: '/orders/v0/orders/{orderId}/address',
      dataElements: ['buyerInfo'],
    }
    expect((await rdt(token, [address])).status).toBe(400)
    const bad = await call(token, 'POST', '/tokens/2021-03-01/restrictedDataToken', 'not json')
    expect(bad.status).toBe(400)
    expect(bad.body.errors[0].code).toBe('InvalidInput')
    const grantless = await grantlessToken('sellingpartnerapi::notifications')
    expect((await rdt(grantless, [one])).status).toBe(403)
  })
})

describe('Sellers getAccount', () => {
  it("answers the seller's account, the same every time", async () => {
    const token = await sellerToken('AACCOUNTSELLER1')
    const first = await call(token, 'GET', '/sellers/v1/account')
    expect(first.status).toBe(200)
    expect(first.body.payload.sellingPlan).toMatch(/^(PROFESSIONAL|INDIVIDUAL)$/)
    expect(first.body.payload.marketplaceParticipationList.length).toBeGreaterThan(0)
    expect((await call(token, 'GET', '/sellers/v1/account')).body).toEqual(first.body)
  })
})

describe('Notifications destinations (grantless)', () => {
  it('creates, lists, gets and deletes destinations with a notifications-scoped grantless token', async () => {
    const token = await grantlessToken('sellingpartnerapi::notifications')
    const arn = 'arn:aws:sqs:us-east-1:123456789012:sp-notifications'
    const created = await call(token, 'POST', '/notifications/v1/destinations', {
      name: 'queue',
      resourceSpecification: { sqs: { arn } },
    })
    expect(created.status).toBe(200)
    const id = created.body.payload.destinationId as string
    expect(created.body.payload).toEqual({ destinationId: id, name: 'queue', resource: { sqs: { arn } } })
    const again = await call(token, 'POST', '/notifications/v1/destinations', {
      name: 'queue',
      resourceSpecification: { sqs: { arn } },
    })
    expect(again.status).toBe(409)
    expect((await call(token, 'GET', '/notifications/v1/destinations')).body.payload).toEqual([
      created.body.payload,
    ])
    expect((await call(token, 'GET', `/notifications/v1/destinations/${id}`)).body.payload).toEqual(
      created.body.payload,
    )
    expect((await call(token, 'DELETE', `/notifications/v1/destinations/${id}`)).status).toBe(200)
    expect((await call(token, 'GET', `/notifications/v1/destinations/${id}`)).status).toBe(404)
    const invalid = await call(token, 'POST', '/notifications/v1/destinations', {
      name: 'x',
      resourceSpecification: { sqs: { arn: 'not-an-arn' } },
    })
    expect(invalid.status).toBe(400)
  })

  it('refuses seller tokens and grantless tokens of another scope', async () => {
    const seller = await sellerToken('ADESTSELLER01')
    expect((await call(seller, 'GET', '/notifications/v1/destinations')).body).toEqual(DENIED_NO_ACCESS)
    const rotation = await grantlessToken('sellingpartnerapi::client_credential:rotation')
    expect((await call(rotation, 'GET', '/notifications/v1/destinations')).status).toBe(403)
  })
})

describe('sandbox hosts', () => {
  it("answer the models' static sandbox responses, and 400 for unmatched input", async () => {
    const token = await sellerToken('ASANDBOXSELLER1')
    const sandbox = SPAPI_HOSTS.na.sandbox
    const ok = await call(
      token,
      'GET',
      '/orders/v0/orders?CreatedAfter=TEST_CASE_200&MarketplaceIds=ATVPDKIKX0DER',
      undefined,
      sandbox,
    )
    expect(ok.status).toBe(200)
    expect(ok.body.payload.Orders[0].AmazonOrderId).toBe('902-1845936-5435065')
    const error = await call(token, 'GET', '/orders/v0/orders?CreatedAfter=TEST_CASE_400', undefined, sandbox)
    expect(error.status).toBe(400)
    const order = await call(token, 'GET', '/orders/v0/orders/TEST_CASE_200', undefined, sandbox)
    expect(order.status).toBe(200)
    const unmatched = await call(token, 'GET', '/orders/v0/orders/123-1234567-1234567', undefined, sandbox)
    expect(unmatched.status).toBe(400)
    expect(unmatched.body.errors[0].message).toBe('Could not match input arguments')
  })
})

/** A request to the real server whose Host header names an Amazon host, as the HTTPS server and proxy send it. */
function viaHost(
  host: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body = '',
) {
  const { hostname, port } = new URL(server.url)
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest({ hostname, port, method, path, headers: { ...headers, host } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('routing by Host header', () => {
  it('serves SP-API and LWA requests sent to the Amazon host names, beside the path-prefix layout', async () => {
    const rt = sim.selfAuthorize(app.appId, 'AHOSTSELLER01', 'na')
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, ...creds }).toString()
    const tokenRes = await viaHost(
      'api.amazon.com',
      'POST',
      '/auth/o2/token',
      {
        'content-type': 'application/x-www-form-urlencoded',
      },
      form,
    )
    expect(tokenRes.status).toBe(200)
    const token = (JSON.parse(tokenRes.body) as { access_token: string }).access_token

    const res = await viaHost(`${NA}:443`, 'GET', '/sellers/v1/marketplaceParticipations', {
      'x-amz-access-token': token,
    })
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body).payload).toEqual(sellerParticipations('AHOSTSELLER01', 'na'))
    // The path-prefix layout still works under an Amazon host name, and unknown paths are Amazon's 404.
    const prefixed = await viaHost(NA, 'GET', `/${NA}/sellers/v1/marketplaceParticipations`, {
      'x-amz-access-token': token,
    })
    expect(prefixed.status).toBe(200)
    expect((await viaHost(NA, 'GET', '/nothing/here')).status).toBe(404)
    // A host the simulator does not serve keeps the path layout.
    expect((await viaHost('example.com', 'GET', '/sellers/v1/marketplaceParticipations')).status).toBe(404)
  })

  it('hands fetch-style requests with an Amazon URL to the same routes', async () => {
    const token = await sellerToken('AHOSTSELLER02')
    const res = await sim.app.fetch(
      new Request(`https://${SPAPI_HOSTS.na.sandbox}/sellers/v1/account`, {
        headers: { 'x-amz-access-token': token },
      }),
    )
    expect(res.status).toBe(200)
    expect(((await res.json()) as { payload: { storeName?: string } }).payload).toMatchObject({
      sellingPlan: 'PROFESSIONAL',
    })
  })
})
