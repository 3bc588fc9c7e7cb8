import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BrowserClient } from '../helpers/browser-client.ts'
import { answerConsent, connectSeller, openConsentPage, randomSellingPartnerId } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

describe('website authorization workflow over real HTTP', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack()
  })
  afterAll(async () => {
    await stack?.close()
  })

  it('connects a seller: consent URL, browser-bound state, code exchange, encrypted storage, clean landing URL', async () => {
    const client = new BrowserClient()
    const before = stack.simulator.counters()
    const consent = await openConsentPage(stack, client, { tenantId: 'acme' })
    const consentUrl = new URL(consent.url)
    expect(consentUrl.pathname).toBe('/sellercentral.amazon.com/apps/authorize/consent')
    expect(consentUrl.searchParams.get('application_id')).toBe(stack.app.appId)
    expect(consentUrl.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(consentUrl.searchParams.has('version')).toBe(false)
    expect(consent.body).toContain('Confirm')

    const serviceHost = new URL(stack.serviceUrl).host
    expect(client.cookie(serviceHost, '__Host-sp-connect-binding')).toMatch(/^[A-Za-z0-9_-]{43}$/)

    const sellingPartnerId = randomSellingPartnerId()
    const callbackUrl = await answerConsent(client, consent, { sellingPartnerId })
    const callback = new URL(callbackUrl)
    expect(callback.origin + callback.pathname).toBe(`${stack.serviceUrl}/callback`)
    expect(callback.searchParams.get('state')).toBe(consentUrl.searchParams.get('state'))
    expect(callback.searchParams.get('selling_partner_id')).toBe(sellingPartnerId)
    expect(callback.searchParams.get('spapi_oauth_code')).toBeTruthy()

    const landing = await client.get(callbackUrl)
    expect(landing.status).toBe(303)
    expect(landing.location).toBe('/connected')
    expect(landing.headers.get('referrer-policy')).toBe('no-referrer')
    expect(landing.headers.get('cache-control')).toBe('no-store')

    const after = stack.simulator.counters()
    expect(after.byGrant.authorization_code - before.byGrant.authorization_code).toBe(1)

    const listed = await stack.api('GET', '/v1/connections?tenant_id=acme')
    const [connection] = listed.json['data'] as Record<string, unknown>[]
    expect(connection).toMatchObject({
      selling_partner_id: sellingPartnerId,
      region: 'na',
      account_type: 'seller',
      tenant_id: 'acme',
      status: 'active',
    })
    const authorizedAt = Date.parse(String(connection?.['authorized_at']))
    const reauthorizeBy = Date.parse(String(connection?.['reauthorize_by']))
    expect(reauthorizeBy - authorizedAt).toBe(365 * 24 * 3600 * 1000)
    expect(JSON.stringify(listed.json)).not.toMatch(/Atz[ar]\|/)
  })

  it('hands out the access token, which works against the simulated SP-API', async () => {
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    const before = stack.simulator.counters()
    const token = await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    expect(token.status).toBe(200)
    expect(token.json['access_token']).toMatch(/^Atza\|/)
    expect(token.json['token_type']).toBe('bearer')
    expect(Date.parse(String(token.json['expires_at']))).toBeGreaterThan(Date.now() + 55 * 60 * 1000)
    // Served from the exchange's token: no refresh call.
    expect(stack.simulator.counters().total).toBe(before.total)

    const response = await fetch(
      `${stack.simulatorUrl}/sellingpartnerapi-na.amazon.com/sellers/v1/marketplaceParticipations`,
      {
        headers: { 'x-amz-access-token': String(token.json['access_token']) },
      },
    )
    expect(response.status).toBe(200)
    const body = (await response.json()) as { payload: { marketplace: { id: string } }[] }
    expect(body.payload.length).toBeGreaterThan(0)
    for (const p of body.payload)
      expect(['A2EUQ1WTGCTBG2', 'ATVPDKIKX0DER', 'A1AM78C64UM0Y8', 'A2Q3Y263D00KWC']).toContain(
        p.marketplace.id,
      )

    const call = await stack.runtime.spapi.call(connectionId, {
      method: 'GET',
      path: '/sellers/v1/marketplaceParticipations',
    })
    expect(call.status).toBe(200)
  })

  it('connects sellers and vendors in every region, each on its own Central host', async () => {
    const hosts = {
      na: { seller: 'sellercentral.amazon.com', vendor: 'vendorcentral.amazon.com' },
      eu: { seller: 'sellercentral-europe.amazon.com', vendor: 'vendorcentral.amazon.co.uk' },
      fe: { seller: 'sellercentral.amazon.co.jp', vendor: 'vendorcentral.amazon.co.jp' },
    } as const
    for (const region of ['na', 'eu', 'fe'] as const) {
      for (const accountType of ['seller', 'vendor'] as const) {
        const client = new BrowserClient()
        const consent = await openConsentPage(stack, client, {
          region,
          accountType,
          tenantId: `t-${region}-${accountType}`,
        })
        expect(new URL(consent.url).pathname.split('/')[1]).toBe(hosts[region][accountType])
        const callbackUrl = await answerConsent(client, consent, {
          sellingPartnerId: randomSellingPartnerId(),
        })
        expect((await client.get(callbackUrl)).status).toBe(303)
        const listed = await stack.api('GET', `/v1/connections?tenant_id=t-${region}-${accountType}`)
        expect(listed.json['data']).toEqual([
          expect.objectContaining({ region, account_type: accountType, status: 'active' }),
        ])
      }
    }
  })

  it('the same seller authorizing again re-authorizes the same connection', async () => {
    const sellingPartnerId = randomSellingPartnerId()
    const first = await connectSeller(stack, new BrowserClient(), { sellingPartnerId, tenantId: 'again' })
    const before = await stack.runtime.store.getConnection(first.connectionId)
    const second = await connectSeller(stack, new BrowserClient(), { sellingPartnerId, tenantId: 'again' })
    expect(second.connectionId).toBe(first.connectionId)
    const after = await stack.runtime.store.getConnection(first.connectionId)
    expect(after?.refreshTokenCiphertext).not.toBe(before?.refreshTokenCiphertext)
    const events = await stack.api('GET', `/v1/connections/${first.connectionId}/events`)
    expect((events.json['data'] as { type: string }[]).map((e) => e.type).sort()).toEqual([
      'connection.created',
      'connection.reauthorized',
    ])
  })
})
