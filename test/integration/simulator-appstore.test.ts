import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createSimulator,
  generateDevApp,
  type SimulatedApp,
  type Simulator,
  type SimulatorServer,
  simulatorUrls,
  startSimulatorServer,
} from '../../src/simulator/index.ts'

const SC = 'sellercentral-europe.amazon.com'
const published = generateDevApp({
  name: 'Appstore App',
  redirectUri: ['https://app.example.com/cb', 'https://app.example.com/cb2'],
  loginUri: 'https://app.example.com/amazon/login?src=appstore',
})
const draft = generateDevApp({
  name: 'Draft Appstore App',
  redirectUri: 'https://draft.example.com/cb',
  loginUri: 'https://draft.example.com/login',
  status: 'draft',
})

let sim: Simulator
let server: SimulatorServer
let urls: ReturnType<typeof simulatorUrls>

beforeAll(async () => {
  sim = createSimulator({ apps: [published, draft] })
  server = await startSimulatorServer(sim, { port: 0 })
  urls = simulatorUrls(server.url)
})
afterAll(async () => {
  await server.close()
  await sim.close()
})

/** A tiny browser: follows nothing, keeps the simulator cookie. */
class Browser {
  cookie = ''
  async get(url: string): Promise<Response> {
    const res = await fetch(url, { redirect: 'manual', headers: this.cookie ? { cookie: this.cookie } : {} })
    const set = res.headers.get('set-cookie')
    if (set) this.cookie = set.split(';')[0] ?? ''
    return res
  }
  async post(url: string, fields: Record<string, string>): Promise<Response> {
    return fetch(url, {
      method: 'POST',
      body: new URLSearchParams(fields),
      headers: { cookie: this.cookie },
      redirect: 'manual',
    })
  }
}

function hiddenFields(html: string): Record<string, string> {
  return Object.fromEntries(
    [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2]]),
  )
}

function decodeHref(html: string, text: string): string {
  const m = html.match(new RegExp(`href="([^"]+)">${text}<`))
  return (m?.[1] ?? '').replaceAll('&amp;', '&')
}

/** Detail page → Authorize now → consent → Confirm; returns the redirect to the Login URI. */
async function toLoginUri(browser: Browser, app: SimulatedApp, seller: string, beta = false): Promise<URL> {
  const detail = await browser.get(`${urls.appstore(SC, app.appId)}${beta ? '?version=beta' : ''}`)
  expect(detail.status).toBe(200)
  const authorizeHref = decodeHref(await detail.text(), 'Authorize now')
  const consent = await browser.get(authorizeHref)
  expect(consent.status).toBe(200)
  const html = await consent.text()
  expect(html).toContain('>Confirm<')
  const action = html.match(/<form method="post" action="([^"]+)"/)?.[1] ?? ''
  const res = await browser.post(action, {
    ...hiddenFields(html),
    selling_partner_id: seller,
    action: 'confirm',
  })
  expect(res.status).toBe(302)
  return new URL(res.headers.get('location') ?? '')
}

function callback(login: URL, params: Record<string, string>): string {
  const url = new URL(login.searchParams.get('amazon_callback_uri') ?? '')
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
  return url.toString()
}

function errorCodeOf(html: string): string | undefined {
  return html.match(/Error Code: <span class="code">([^<]+)<\/span>/)?.[1]
}

describe('Selling Partner Appstore workflow', () => {
  it('runs end to end: Authorize now → Login URI → amazon_callback_uri → redirect URI with a code', async () => {
    const browser = new Browser()
    const login = await toLoginUri(browser, published, 'AAPPSTORESELL1')
    expect(`${login.origin}${login.pathname}`).toBe('https://app.example.com/amazon/login')
    expect(login.searchParams.get('src')).toBe('appstore')
    expect(login.searchParams.get('amazon_callback_uri')).toBe(urls.confirm(SC, published.appId))
    expect(login.searchParams.get('amazon_state')?.length).toBeGreaterThan(20)
    expect(login.searchParams.get('selling_partner_id')).toBe('AAPPSTORESELL1')
    expect(login.searchParams.has('version')).toBe(false)

    const amazonState = login.searchParams.get('amazon_state') ?? ''
    const done = await browser.get(
      callback(login, {
        amazon_state: amazonState,
        state: 'my-state',
        redirect_uri: 'https://app.example.com/cb2',
      }),
    )
    expect(done.status).toBe(302)
    const location = new URL(done.headers.get('location') ?? '')
    expect(`${location.origin}${location.pathname}`).toBe('https://app.example.com/cb2')
    expect(location.searchParams.get('state')).toBe('my-state')
    expect(location.searchParams.get('selling_partner_id')).toBe('AAPPSTORESELL1')
    const code = location.searchParams.get('spapi_oauth_code') ?? ''

    const token = await fetch(urls.token, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: 'https://app.example.com/cb2',
        client_id: published.clientId,
        client_secret: published.clientSecrets[0]?.secret ?? '',
      }),
    })
    expect(token.status).toBe(200)
    // amazon_state is single use.
    const again = await browser.get(callback(login, { amazon_state: amazonState, state: 'x' }))
    expect(errorCodeOf(await again.text())).toBe('INVALID_AMAZON_STATE')
  })

  it('defaults to the first redirect URI', async () => {
    const browser = new Browser()
    const login = await toLoginUri(browser, published, 'AAPPSTORESELL2')
    const done = await browser.get(
      callback(login, { amazon_state: login.searchParams.get('amazon_state') ?? '' }),
    )
    expect(new URL(done.headers.get('location') ?? '').pathname).toBe('/cb')
  })

  it('checks amazon_state: unknown, expired after 10 minutes, or for another app', async () => {
    const browser = new Browser()
    const unknown = await browser.get(`${urls.confirm(SC, published.appId)}?amazon_state=forged&state=s`)
    expect(errorCodeOf(await unknown.text())).toBe('INVALID_AMAZON_STATE')

    const login = await toLoginUri(browser, published, 'AAPPSTORESELL3')
    const amazonState = login.searchParams.get('amazon_state') ?? ''
    const otherApp = new URL(urls.confirm(SC, draft.appId))
    otherApp.search = new URLSearchParams({ amazon_state: amazonState, version: 'beta' }).toString()
    expect(errorCodeOf(await (await browser.get(otherApp.toString())).text())).toBe('INVALID_AMAZON_STATE')

    sim.advanceClock(10 * 60_000 + 1)
    const expired = await browser.get(callback(login, { amazon_state: amazonState }))
    expect(errorCodeOf(await expired.text())).toBe('INVALID_AMAZON_STATE')
  })

  it('applies the redirect_uri rules at the confirm step', async () => {
    const browser = new Browser()
    const login = await toLoginUri(browser, published, 'AAPPSTORESELL4')
    const amazonState = login.searchParams.get('amazon_state') ?? ''
    const md5101 = await browser.get(
      callback(login, { amazon_state: amazonState, redirect_uri: 'https://evil.example.com/' }),
    )
    expect(md5101.headers.get('location')).toBeNull()
    expect(errorCodeOf(await md5101.text())).toBe('MD5101')
    const md5110 = await browser.get(
      callback(login, { amazon_state: amazonState, redirect_uri: 'https://app.example.com/cb#f' }),
    )
    expect(errorCodeOf(await md5110.text())).toBe('MD5110')
    // A refused attempt does not use up amazon_state.
    expect((await browser.get(callback(login, { amazon_state: amazonState }))).status).toBe(302)
  })

  it('draft apps: test flow with version=beta on the Login URI, MD1000 without it at confirm', async () => {
    const browser = new Browser()
    const refused = await browser.get(urls.appstore(SC, draft.appId))
    expect(errorCodeOf(await refused.text())).toBe('MD1000')

    const login = await toLoginUri(browser, draft, 'ADRAFTSELLER01', true)
    expect(login.searchParams.get('version')).toBe('beta')
    const amazonState = login.searchParams.get('amazon_state') ?? ''
    const noBeta = await browser.get(callback(login, { amazon_state: amazonState }))
    expect(errorCodeOf(await noBeta.text())).toBe('MD1000')
    const ok = await browser.get(callback(login, { amazon_state: amazonState, version: 'beta', state: 's' }))
    expect(ok.status).toBe(302)
    expect(new URL(ok.headers.get('location') ?? '').origin).toBe('https://draft.example.com')
  })

  it('Cancel returns to the app detail page', async () => {
    const browser = new Browser()
    const detail = await browser.get(urls.appstore(SC, published.appId))
    const consent = await browser.get(decodeHref(await detail.text(), 'Authorize now'))
    const html = await consent.text()
    const action = html.match(/<form method="post" action="([^"]+)"/)?.[1] ?? ''
    const res = await browser.post(action, { ...hiddenFields(html), action: 'cancel' })
    expect(res.status).toBe(302)
    expect(res.headers.get('location')).toBe(urls.appstore(SC, published.appId))
  })

  it('the Appstore is for sellers: no detail page on Vendor Central', async () => {
    const res = await fetch(urls.appstore('vendorcentral.amazon.co.uk', published.appId))
    expect(res.status).toBe(404)
  })
})

describe('Manage Your Apps', () => {
  it('asks for a simulated sign-in first', async () => {
    const res = await fetch(urls.manageApps(SC))
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('name="selling_partner_id"')
  })

  it('lists authorized apps; Re-Authorize runs the Login URI flow and yields a new grant', async () => {
    const seller = 'AMANAGESELLER1'
    const oldToken = sim.selfAuthorize(published.appId, seller, 'eu')
    const browser = new Browser()
    const list = await browser.get(`${urls.manageApps(SC)}?selling_partner_id=${seller}`)
    const html = await list.text()
    expect(html).toContain('Appstore App')
    expect(html).toContain('Active')
    const reauth = decodeHref(html, 'Re-Authorize')
    expect(reauth).toContain(`selling_partner_id=${seller}`)

    const consent = await browser.get(reauth)
    const consentHtml = await consent.text()
    expect(consentHtml).toContain('Re-authorize Appstore App')
    expect(consentHtml).toContain(`value="${seller}"`)
    const action = consentHtml.match(/<form method="post" action="([^"]+)"/)?.[1] ?? ''
    const toLogin = await browser.post(action, {
      ...hiddenFields(consentHtml),
      selling_partner_id: seller,
      action: 'confirm',
    })
    const login = new URL(toLogin.headers.get('location') ?? '')
    expect(login.searchParams.get('selling_partner_id')).toBe(seller)
    const done = await browser.get(
      callback(login, { amazon_state: login.searchParams.get('amazon_state') ?? '', state: 'r' }),
    )
    const code = new URL(done.headers.get('location') ?? '').searchParams.get('spapi_oauth_code') ?? ''
    const creds = { client_id: published.clientId, client_secret: published.clientSecrets[0]?.secret ?? '' }
    const exchanged = await fetch(urls.token, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'authorization_code', code, ...creds }),
    })
    const newToken = ((await exchanged.json()) as { refresh_token: string }).refresh_token
    expect(newToken).not.toBe(oldToken)
    // Re-authorizing does not invalidate the earlier grant (simulator choice).
    const refresh = (rt: string) =>
      fetch(urls.token, {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, ...creds }),
      })
    expect((await refresh(oldToken)).status).toBe(200)
    expect((await refresh(newToken)).status).toBe(200)
  })

  it('Remove app revokes the authorization', async () => {
    const seller = 'AMANAGESELLER2'
    const rt = sim.selfAuthorize(published.appId, seller, 'eu')
    const browser = new Browser()
    const html = await (await browser.get(`${urls.manageApps(SC)}?selling_partner_id=${seller}`)).text()
    const form = html.match(/<form method="post" action="([^"]+)">([\s\S]*?)<\/form>/)
    const removed = await browser.post(form?.[1] ?? '', hiddenFields(form?.[2] ?? ''))
    expect(removed.status).toBe(302)
    const after = await (await browser.get(removed.headers.get('location') ?? '')).text()
    expect(after).toContain('Removed')
    const creds = { client_id: published.clientId, client_secret: published.clientSecrets[0]?.secret ?? '' }
    const refresh = await fetch(urls.token, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, ...creds }),
    })
    expect(refresh.status).toBe(400)
  })
})
