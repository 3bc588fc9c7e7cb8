import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MARKETPLACES, SPAPI_HOSTS } from '../../src/domain/regions.ts'
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
interface Participation {
  marketplace: { id: string; [key: string]: string }
  participation: { isParticipating: boolean; hasSuspendedListings: boolean }
}
interface SpapiBody {
  payload?: Participation[]
  errors?: unknown[]
}
const MISSING = 'Access token is missing in the request header.'
const INVALID = 'The access token you provided is revoked, malformed or invalid.'
const EXPIRED = 'The access token you provided has expired.'

let sim: Simulator
let server: SimulatorServer
let urls: ReturnType<typeof simulatorUrls>

beforeAll(async () => {
  sim = createSimulator({ apps: [app] })
  server = await startSimulatorServer(sim, { port: 0 })
  urls = simulatorUrls(server.url)
})
afterAll(async () => {
  await server.close()
  await sim.close()
})

async function accessToken(sellingPartnerId: string, region: 'na' | 'eu' | 'fe' = 'na'): Promise<string> {
  const rt = sim.selfAuthorize(app.appId, sellingPartnerId, region)
  const res = await fetch(urls.token, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, ...creds }),
  })
  return ((await res.json()) as { access_token: string }).access_token
}

async function participations(token: string | undefined, host = NA, extra: Record<string, string> = {}) {
  const headers: Record<string, string> = { ...extra }
  if (token !== undefined) headers['x-amz-access-token'] = token
  const res = await fetch(urls.spapi(host), { headers })
  return { status: res.status, headers: res.headers, body: (await res.json()) as SpapiBody }
}

function expectDenied(r: Awaited<ReturnType<typeof participations>>, details: string) {
  expect(r.status).toBe(403)
  expect(r.body).toEqual({
    errors: [{ code: 'Unauthorized', message: 'Access to requested resource is denied.', details }],
  })
  expect(r.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/)
  expect(r.headers.has('x-amzn-ratelimit-limit')).toBe(false)
}

describe('SP-API getMarketplaceParticipations', () => {
  it('lists the marketplaces of the token region, with the SP-API headers', async () => {
    const r = await participations(await accessToken('ASPAPISELLER01', 'na'))
    expect(r.status).toBe(200)
    expect(r.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/)
    expect(r.headers.get('x-amzn-ratelimit-limit')).toBe('0.016')
    const payload = r.body.payload ?? []
    expect(payload).toEqual(sellerParticipations('ASPAPISELLER01', 'na'))
    const regionIds = MARKETPLACES.filter((m) => m.region === 'na').map((m) => m.id)
    expect(payload.length).toBeGreaterThan(0)
    for (const p of payload) expect(regionIds).toContain(p.marketplace.id)
    const us = sellerParticipations('ASPAPISELLER01', 'na').find((p) => p.marketplace.id === 'ATVPDKIKX0DER')
    if (us) {
      expect(us).toMatchObject({
        marketplace: {
          countryCode: 'US',
          name: 'Amazon.com',
          defaultCurrencyCode: 'USD',
          domainName: 'www.amazon.com',
        },
        participation: { isParticipating: true, hasSuspendedListings: false },
      })
    }
  })

  it('answers each seller with its own participations and store name, the same every time', async () => {
    const sellers = ['ASELLERFPA01', 'ASELLERFPA02', 'ASELLERFPA03', 'ASELLERFPA04']
    const answers = []
    for (const seller of sellers) {
      const first = await participations(await accessToken(seller, 'eu'), SPAPI_HOSTS.eu.production)
      const again = await participations(await accessToken(seller, 'eu'), SPAPI_HOSTS.eu.production)
      expect(again.body).toEqual(first.body)
      answers.push(JSON.stringify(first.body.payload))
    }
    // Store names differ per seller, so no two answers are the same.
    expect(new Set(answers).size).toBe(sellers.length)
  })

  it('works on every production and sandbox host of the region', async () => {
    const eu = await accessToken('ASPAPISELLER02', 'eu')
    expect((await participations(eu, SPAPI_HOSTS.eu.production)).status).toBe(200)
    expect((await participations(eu, SPAPI_HOSTS.eu.sandbox)).status).toBe(200)
    const fe = await accessToken('ASPAPISELLER02', 'fe')
    expect((await participations(fe, SPAPI_HOSTS.fe.production)).body.payload).toEqual(
      sellerParticipations('ASPAPISELLER02', 'fe'),
    )
    // Sandbox hosts answer the model's static sandbox response, whoever the seller is.
    const r = await participations(fe, SPAPI_HOSTS.fe.sandbox)
    expect(r.status).toBe(200)
    expect(r.body.payload?.[0]?.marketplace.id).toBe('ATVPDKIKX0DER')
    expect(r.headers.get('x-amzn-ratelimit-limit')).toBe('0.016')
  })

  it('ignores SigV4 headers', async () => {
    const r = await participations(await accessToken('ASPAPISELLER03'), NA, {
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00',
      'x-amz-date': '20240101T000000Z',
    })
    expect(r.status).toBe(200)
  })

  it('403 when the access token is missing', async () => {
    expectDenied(await participations(undefined), MISSING)
    expectDenied(await participations(''), MISSING)
  })

  it('403 for malformed or forged tokens', async () => {
    expectDenied(await participations('Atza|not-a-token'), INVALID)
    const real = await accessToken('ASPAPISELLER04')
    expectDenied(await participations(`${real.slice(0, -2)}xx`), INVALID)
    const rt = sim.selfAuthorize(app.appId, 'ASPAPISELLER04', 'na')
    expectDenied(await participations(rt), INVALID)
  })

  it('403 for a revoked authorization', async () => {
    const token = await accessToken('ASPAPISELLER05')
    sim.revoke('ASPAPISELLER05')
    expectDenied(await participations(token), INVALID)
  })

  it('403 with empty details for another region or a grantless token', async () => {
    expectDenied(await participations(await accessToken('ASPAPISELLER06', 'eu'), NA), '')
    const res = await fetch(urls.token, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        scope: 'sellingpartnerapi::notifications',
        ...creds,
      }),
    })
    const grantless = ((await res.json()) as { access_token: string }).access_token
    expectDenied(await participations(grantless), '')
  })

  it('403 "expired" after an hour on the simulator clock', async () => {
    const token = await accessToken('ASPAPISELLER07')
    sim.advanceClock(3599_000)
    expect((await participations(token)).status).toBe(200)
    sim.advanceClock(1_000)
    expectDenied(await participations(token), EXPIRED)
  })

  it('403 "expired" after expireAccessTokens, for one seller or everyone; new tokens work', async () => {
    const a = await accessToken('ASPAPISELLER08')
    const b = await accessToken('ASPAPISELLER09')
    sim.expireAccessTokens('ASPAPISELLER08')
    expectDenied(await participations(a), EXPIRED)
    expect((await participations(b)).status).toBe(200)
    sim.expireAccessTokens()
    expectDenied(await participations(b), EXPIRED)
    expect((await participations(await accessToken('ASPAPISELLER08'))).status).toBe(200)
  })

  it('404 with a request id for paths that are no SP-API operation', async () => {
    for (const path of ['/orders/v0/nothing', '/orders/v0/orders/', '/orders/v0/orders/%2e%2e/x']) {
      const res = await fetch(urls.spapi(NA, path), { headers: { 'x-amz-access-token': 'Atza|x' } })
      expect(res.status, path).toBe(404)
      expect(res.headers.get('x-amzn-requestid')).toBeTruthy()
      // No operation, so no usage plan to report.
      expect(res.headers.get('x-amzn-ratelimit-limit')).toBeNull()
      expect(await res.json()).toEqual({ errors: [{ code: 'NotFound', message: 'Resource not found.' }] })
    }
  })
})
