import { describe, expect, it } from 'vitest'
import { allCentralHosts, REGIONS, SPAPI_HOSTS } from '../../src/domain/regions.ts'
import { baseUrlOf, centralHostInfo, simulatorUrls, spapiHostInfo } from '../../src/simulator/routes.ts'
import { clientCredentials, parseTokenBody } from '../../src/simulator/token-request.ts'

describe('simulator token request parsing', () => {
  it('reads form bodies and keeps an unencoded | in tokens', () => {
    const params = parseTokenBody(
      'application/x-www-form-urlencoded;charset=UTF-8',
      'grant_type=refresh_token&refresh_token=Atzr|abc.def&client_id=id',
    )
    expect(params.get('refresh_token')).toBe('Atzr|abc.def')
    expect(params.get('grant_type')).toBe('refresh_token')
  })

  it('reads JSON bodies, keeping string fields only', () => {
    const params = parseTokenBody('application/json', JSON.stringify({ grant_type: 'x', n: 1, o: {} }))
    expect([...params.keys()]).toEqual(['grant_type'])
    expect(parseTokenBody('application/json', '{not json').size).toBe(0)
    expect(parseTokenBody('application/json', '[1]').size).toBe(0)
  })

  it('reads nothing from other content types', () => {
    expect(parseTokenBody('text/plain', 'grant_type=refresh_token').size).toBe(0)
    expect(parseTokenBody(undefined, 'grant_type=refresh_token').size).toBe(0)
  })

  it('takes client credentials from Basic auth (form-decoded) or the body', () => {
    const header = `Basic ${Buffer.from('my%3Aid:s%20ecret').toString('base64')}`
    expect(clientCredentials(new Map(), header)).toEqual({
      clientId: 'my:id',
      clientSecret: 's ecret',
      basic: true,
      conflict: false,
    })
    const body = new Map([
      ['client_id', 'a'],
      ['client_secret', 'b'],
    ])
    expect(clientCredentials(body, undefined)).toEqual({
      clientId: 'a',
      clientSecret: 'b',
      basic: false,
      conflict: false,
    })
    const basicAB = `Basic ${Buffer.from('a:b').toString('base64')}`
    expect(clientCredentials(body, basicAB).conflict).toBe(false)
    const basicAC = `Basic ${Buffer.from('a:c').toString('base64')}`
    expect(clientCredentials(body, basicAC).conflict).toBe(true)
    expect(clientCredentials(new Map(), 'Basic !!!').conflict).toBe(true)
    expect(clientCredentials(body, 'Bearer xyz').basic).toBe(false)
  })
})

describe('simulator routes', () => {
  it('knows every central host from regions.ts and every SP-API host', () => {
    for (const host of allCentralHosts()) expect(centralHostInfo(host)?.host).toBe(host)
    expect(centralHostInfo('sellercentral.example.com')).toBeUndefined()
    expect(centralHostInfo('vendorcentral.amazon.co.jp')).toEqual({
      host: 'vendorcentral.amazon.co.jp',
      region: 'fe',
      accountType: 'vendor',
    })
    for (const region of REGIONS) {
      expect(spapiHostInfo(SPAPI_HOSTS[region].production)).toMatchObject({ region, sandbox: false })
      expect(spapiHostInfo(SPAPI_HOSTS[region].sandbox)).toMatchObject({ region, sandbox: true })
    }
  })

  it('derives the simulator base from a request URL, with or without a mount prefix', () => {
    expect(baseUrlOf('http://127.0.0.1:9000/sellercentral.amazon.com/apps/authorize/consent?x=1', 4)).toBe(
      'http://127.0.0.1:9000',
    )
    expect(baseUrlOf('http://localhost:3000/__amazon/sellercentral.amazon.com/apps/manage', 3)).toBe(
      'http://localhost:3000/__amazon',
    )
  })

  it('builds absolute URLs from a base', () => {
    const urls = simulatorUrls('http://localhost:3000/__amazon/')
    expect(urls.token).toBe('http://localhost:3000/__amazon/auth/o2/token')
    expect(urls.consent('sellercentral.amazon.de')).toBe(
      'http://localhost:3000/__amazon/sellercentral.amazon.de/apps/authorize/consent',
    )
    expect(urls.spapi('sellingpartnerapi-fe.amazon.com')).toBe(
      'http://localhost:3000/__amazon/sellingpartnerapi-fe.amazon.com/sellers/v1/marketplaceParticipations',
    )
    expect(urls.control('self-authorize')).toBe('http://localhost:3000/__amazon/_control/self-authorize')
  })
})
