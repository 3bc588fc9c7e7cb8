import { describe, expect, it } from 'vitest'
import {
  buildAppstoreRedirect,
  buildConsentUrl,
  centralOrigins,
  parseAmazonCallbackUri,
} from '../../src/core/authorization/consent-url.ts'
import { ACCOUNT_TYPES, centralHost, MARKETPLACES } from '../../src/domain/regions.ts'

const base = {
  appId: 'amzn1.sp.solution.11111111-2222-3333-4444-555555555555',
  state: 'S'.repeat(43),
  draftApp: false,
  centralUrlTemplate: 'https://{host}',
}

describe('buildConsentUrl', () => {
  for (const mp of MARKETPLACES) {
    for (const type of ACCOUNT_TYPES) {
      const host = centralHost(mp, type)
      it(`${mp.country} ${type}: ${host ?? 'no documented host'}`, () => {
        const build = () =>
          buildConsentUrl({ ...base, region: mp.region, accountType: type, marketplace: mp.country })
        if (host === null) {
          expect(build).toThrow(expect.objectContaining({ code: 'invalid_request' }))
          return
        }
        const url = build()
        expect(url.origin).toBe(`https://${host}`)
        expect(url.pathname).toBe('/apps/authorize/consent')
        expect([...url.searchParams.keys()]).toEqual(['application_id', 'state'])
        expect(url.searchParams.get('application_id')).toBe(base.appId)
        expect(url.searchParams.get('state')).toBe(base.state)
        // The marketplace id names the same host.
        expect(
          buildConsentUrl({ ...base, region: mp.region, accountType: type, marketplace: mp.id }).href,
        ).toBe(url.href)
      })
    }
  }

  it('adds version=beta only for a Draft app and redirect_uri only when given', () => {
    const url = buildConsentUrl({
      ...base,
      draftApp: true,
      region: 'na',
      accountType: 'seller',
      redirectUri: 'https://app.example.com/callback?x=1',
    })
    expect(url.searchParams.get('version')).toBe('beta')
    expect(url.searchParams.get('redirect_uri')).toBe('https://app.example.com/callback?x=1')
  })

  it('uses the region default host and refuses a marketplace from another region', () => {
    expect(buildConsentUrl({ ...base, region: 'eu', accountType: 'seller' }).host).toBe(
      'sellercentral-europe.amazon.com',
    )
    expect(buildConsentUrl({ ...base, region: 'fe', accountType: 'vendor' }).host).toBe(
      'vendorcentral.amazon.co.jp',
    )
    expect(() =>
      buildConsentUrl({ ...base, region: 'na', accountType: 'seller', marketplace: 'DE' }),
    ).toThrow(expect.objectContaining({ code: 'invalid_request' }))
  })

  it('follows the central URL template (simulators, proxies)', () => {
    const url = buildConsentUrl({
      ...base,
      centralUrlTemplate: 'http://127.0.0.1:9000/{host}',
      region: 'na',
      accountType: 'seller',
    })
    expect(
      url.href.startsWith('http://127.0.0.1:9000/sellercentral.amazon.com/apps/authorize/consent?'),
    ).toBe(true)
  })
})

describe('Appstore redirect', () => {
  const template = 'https://{host}'

  it('accepts Amazon confirm URLs and builds the return with our state', () => {
    const callback = parseAmazonCallbackUri(
      `https://sellercentral.amazon.com/apps/authorize/confirm/${base.appId}`,
      template,
    )
    const url = buildAppstoreRedirect({
      amazonCallbackUri: callback,
      amazonState: 'amz-state',
      state: base.state,
      redirectUri: 'https://app.example.com/callback',
      draftApp: true,
    })
    expect(url.origin).toBe('https://sellercentral.amazon.com')
    expect(Object.fromEntries(url.searchParams)).toEqual({
      redirect_uri: 'https://app.example.com/callback',
      amazon_state: 'amz-state',
      state: base.state,
      version: 'beta',
    })
    expect(
      parseAmazonCallbackUri(`https://amazon.com/apps/authorize/confirm/${base.appId}`, template).host,
    ).toBe('amazon.com')
  })

  it.each([
    'https://evil.example.com/apps/authorize/confirm/x',
    'https://sellercentral.amazon.com.evil.example/apps/authorize/confirm/x',
    'https://sellercentral.amazon.com@evil.example/apps/authorize/confirm/x',
    'https://user:pw@sellercentral.amazon.com/apps/authorize/confirm/x',
    'http://sellercentral.amazon.com/apps/authorize/confirm/x',
    'https://sellercentral.amazon.com/somewhere/else',
    'https://sellercentral.amazon.com/apps/authorize/confirm/x#frag',
    'javascript:alert(1)',
    'not a url',
  ])('refuses %s', (value) => {
    expect(() => parseAmazonCallbackUri(value, template)).toThrow(
      expect.objectContaining({ code: 'amazon_callback_invalid' }),
    )
  })

  it('lists every Central origin for the CSP', () => {
    const origins = centralOrigins(template)
    expect(origins).toContain('https://sellercentral.amazon.com')
    expect(origins).toContain('https://vendorcentral.amazon.co.jp')
    expect(centralOrigins('http://localhost:3000/__amazon/{host}')).toEqual(['http://localhost:3000'])
  })
})
