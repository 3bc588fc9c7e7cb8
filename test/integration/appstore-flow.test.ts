/**
 * The Appstore workflow and the yearly re-authorization: Amazon opens our Login URI with amazon_callback_uri,
 * amazon_state and selling_partner_id; we send the browser back to Amazon with our own state; Amazon then
 * calls the callback like the website workflow. A re-authorization replaces the refresh token in place.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openToken } from '../../src/core/tokens/sealed.ts'
import { BrowserClient, type Hop } from '../helpers/browser-client.ts'
import { snapshotDb } from '../helpers/db-snapshot.ts'
import { connectSeller, passLoginUri, randomSellingPartnerId } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const HOST = 'sellercentral.amazon.com'

/** From an Appstore-style consent page through Confirm to our Login URI; returns that (unfollowed) hop. */
async function confirmToLoginUri(
  client: BrowserClient,
  consent: Hop,
  sellingPartnerId: string,
): Promise<Hop> {
  const confirmed = await client.submitForm(
    consent,
    { name: 'action', value: 'confirm' },
    { selling_partner_id: sellingPartnerId },
  )
  expect(confirmed.status).toBe(302)
  return confirmed
}

describe.each([
  { name: 'published app', draft: false },
  { name: 'draft app (version=beta test flow)', draft: true },
])('Appstore workflow: $name', ({ draft }) => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({ draft })
  })
  afterAll(async () => {
    await stack?.close()
  })

  it('starts at Amazon, passes through the Login URI, and connects the seller', async () => {
    const client = new BrowserClient()
    const sellingPartnerId = randomSellingPartnerId()
    const detail = await client.get(
      `${stack.simulatorUrl}/${HOST}/apps/appstore/${stack.app.appId}${draft ? '?version=beta' : ''}`,
    )
    expect(detail.status).toBe(200)
    const consent = await client.clickLink(detail, 'Authorize now')
    const toLogin = await confirmToLoginUri(client, consent, sellingPartnerId)

    const login = new URL(toLogin.location ?? '')
    expect(`${login.origin}${login.pathname}`).toBe(`${stack.serviceUrl}/login`)
    expect(login.searchParams.get('selling_partner_id')).toBe(sellingPartnerId)
    expect(login.searchParams.get('amazon_state')).toBeTruthy()
    expect(login.searchParams.get('amazon_callback_uri')).toBe(
      `${stack.simulatorUrl}/${HOST}/apps/authorize/confirm/${stack.app.appId}`,
    )
    expect(login.searchParams.get('version')).toBe(draft ? 'beta' : null)

    // Nothing is linked before the app's signed-in user approved and confirmed in this browser.
    const back = await passLoginUri(stack, client, login.href, {
      tenantId: 'appstore-tenant',
      tenantName: 'Acme',
    })
    expect(await stack.runtime.store.findConnection(sellingPartnerId, 'na')).toBeUndefined()
    expect(back.status).toBe(303)
    const toAmazon = new URL(back.location ?? '')
    expect(`${toAmazon.origin}${toAmazon.pathname}`).toBe(login.searchParams.get('amazon_callback_uri'))
    expect(toAmazon.searchParams.get('amazon_state')).toBe(login.searchParams.get('amazon_state'))
    expect(toAmazon.searchParams.get('redirect_uri')).toBe(`${stack.serviceUrl}/callback`)
    expect(toAmazon.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(toAmazon.searchParams.get('version')).toBe(draft ? 'beta' : null)

    const landing = await client.follow(back)
    expect(landing.url).toBe(`${stack.serviceUrl}/connected`)
    const connection = await stack.runtime.store.findConnection(sellingPartnerId, 'na')
    expect(connection).toMatchObject({ status: 'active', accountType: 'seller', tenantId: 'appstore-tenant' })
    expect(connection?.accountFingerprint).toMatch(/^v1:/)
  })

  it('re-authorization from Manage Your Apps replaces the refresh token of the same connection', async () => {
    const sellingPartnerId = randomSellingPartnerId()
    const { connectionId } = await connectSeller(stack, new BrowserClient(), {
      sellingPartnerId,
      tenantId: 'owner',
    })
    const stored = await stack.runtime.store.getConnection(connectionId)
    const oldRefresh = openToken(
      stack.runtime.keyring,
      connectionId,
      'refresh_token',
      stored?.refreshTokenCiphertext ?? '',
    )
    // The seller had stopped working (say the year ran out) before re-authorizing.
    await stack.runtime.store.recordRefreshFailure(connectionId, stored?.version ?? 0, {
      error: 'lwa_invalid_grant',
      status: 'needs_reauthorization',
      now: Date.now(),
    })

    const client = new BrowserClient()
    // The simulated sign-in of Manage Your Apps is a GET form naming the selling partner.
    const manage = await client.get(
      `${stack.simulatorUrl}/${HOST}/apps/manage?selling_partner_id=${sellingPartnerId}`,
    )
    expect(manage.body).toContain(stack.app.name)
    const reauth = await client.follow(
      await client.clickLink(manage, 'Re-Authorize'),
      (url) => url.pathname === '/login',
    )
    const toLogin = reauth.location ? reauth : await confirmToLoginUri(client, reauth, sellingPartnerId)
    const loginUrl = new URL(toLogin.location ?? '', toLogin.url)
    expect(loginUrl.pathname).toBe('/login')
    const back = await passLoginUri(stack, client, loginUrl.href, { tenantId: 'owner' })
    const landing = await client.follow(back)
    expect(landing.url).toBe(`${stack.serviceUrl}/connected`)

    const after = await stack.runtime.store.getConnection(connectionId)
    expect(after).toMatchObject({ status: 'active', statusReason: null, tenantId: 'owner', failureCount: 0 })
    const newRefresh = openToken(
      stack.runtime.keyring,
      connectionId,
      'refresh_token',
      after?.refreshTokenCiphertext ?? '',
    )
    expect(newRefresh).not.toBe(oldRefresh)
    expect(
      (await stack.runtime.store.listConnections()).filter((c) => c.sellingPartnerId === sellingPartnerId),
    ).toHaveLength(1)
    const token = await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    expect(token.status).toBe(200)
  })

  it('refuses a Login URI call whose amazon_callback_uri is not Amazon, changing nothing', async () => {
    const before = snapshotDb(stack.dbPath)
    for (const callback of [
      'https://evil.example/apps/authorize/confirm/x',
      `${stack.serviceUrl}/apps/authorize/confirm/x`,
      '',
    ]) {
      const url = new URL(`${stack.serviceUrl}/login`)
      url.searchParams.set('amazon_callback_uri', callback)
      url.searchParams.set('amazon_state', 'amz')
      url.searchParams.set('selling_partner_id', randomSellingPartnerId())
      const hop = await new BrowserClient().get(url.href)
      expect(hop.status).toBe(400)
      expect(hop.location).toBeNull()
      expect(hop.body).toContain('amazon_callback_invalid')
      expect(hop.body).not.toContain('evil.example')
    }
    expect(snapshotDb(stack.dbPath)).toBe(before)
  })
})
