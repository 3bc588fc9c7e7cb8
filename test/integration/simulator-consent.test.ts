import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { allCentralHosts } from '../../src/domain/regions.ts'
import {
  createSimulator,
  generateDevApp,
  type SimulatedApp,
  type Simulator,
  type SimulatorServer,
  simulatorUrls,
  startSimulatorServer,
} from '../../src/simulator/index.ts'

const SC = 'sellercentral.amazon.com'
const VC = 'vendorcentral.amazon.de'

const published = generateDevApp({
  name: 'Published <b>App</b>',
  redirectUri: ['https://app.example.com/amazon/callback', 'https://app.example.com/other?tenant=1'],
  loginUri: 'https://app.example.com/amazon/login',
})
const draft = generateDevApp({
  name: 'Draft App',
  redirectUri: 'https://draft.example.com/cb',
  loginUri: 'https://draft.example.com/login',
  status: 'draft',
})
const hybrid = generateDevApp({
  name: 'Hybrid App',
  redirectUri: 'https://hybrid.example.com/cb',
  loginUri: 'https://hybrid.example.com/login',
  hybrid: true,
})

let sim: Simulator
let server: SimulatorServer
let urls: ReturnType<typeof simulatorUrls>

beforeAll(async () => {
  sim = createSimulator({ apps: [published, draft, hybrid] })
  server = await startSimulatorServer(sim, { port: 0 })
  urls = simulatorUrls(server.url)
})
afterAll(async () => {
  await server.close()
  await sim.close()
})

interface ConsentPage {
  status: number
  html: string
  headers: Headers
  cookie: string
  hidden: Record<string, string>
}

async function openConsent(url: string, cookie?: string): Promise<ConsentPage> {
  const res = await fetch(url, { redirect: 'manual', ...(cookie ? { headers: { cookie } } : {}) })
  const html = await res.text()
  const hidden: Record<string, string> = {}
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    hidden[m[1] ?? ''] = (m[2] ?? '').replaceAll('&amp;', '&').replaceAll('&quot;', '"')
  }
  const setCookie = res.headers.get('set-cookie')
  return {
    status: res.status,
    html,
    headers: res.headers,
    cookie: setCookie?.split(';')[0] ?? cookie ?? '',
    hidden,
  }
}

function consentUrl(app: SimulatedApp, extra: Record<string, string> = {}, host = SC, base?: string): string {
  const q = new URLSearchParams({ application_id: app.appId, ...extra })
  return `${base ? simulatorUrls(base).consent(host) : urls.consent(host)}?${q}`
}

async function submit(
  page: ConsentPage,
  action: 'confirm' | 'cancel',
  sellingPartnerId = 'A3FHEXAMPLEYWS',
  host = SC,
  base = server.url,
): Promise<Response> {
  const body = new URLSearchParams({ ...page.hidden, selling_partner_id: sellingPartnerId, action })
  return fetch(simulatorUrls(base).consent(host), {
    method: 'POST',
    body,
    headers: { cookie: page.cookie },
    redirect: 'manual',
  })
}

function errorCodeOf(html: string): string | undefined {
  return html.match(/Error Code: <span class="code">([^<]+)<\/span>/)?.[1]
}

describe('consent page errors (shown on the Amazon page, not redirected)', () => {
  it('unknown application_id → "Unable to find application"', async () => {
    const page = await openConsent(`${urls.consent(SC)}?application_id=amzn1.sp.solution.nope&state=s`)
    expect(page.status).toBe(400)
    expect(page.headers.get('location')).toBeNull()
    expect(page.html).toContain('Something went wrong')
    expect(page.html).toContain('Unable to find application')
    expect(page.html).toContain('App ID: <span class="code">amzn1.sp.solution.nope</span>')
  })

  it('the LWA client id used as application_id is not found either', async () => {
    const page = await openConsent(`${urls.consent(SC)}?application_id=${published.clientId}`)
    expect(page.html).toContain('Unable to find application')
  })

  it('missing application_id → "Unable to find application"', async () => {
    const page = await openConsent(urls.consent(SC))
    expect(page.html).toContain('Unable to find application')
  })

  it('draft app without version=beta → MD1000; with it → consent', async () => {
    const refused = await openConsent(consentUrl(draft, { state: 's' }))
    expect(errorCodeOf(refused.html)).toBe('MD1000')
    const ok = await openConsent(consentUrl(draft, { state: 's', version: 'beta' }))
    expect(ok.status).toBe(200)
    expect(ok.html).toContain('Confirm')
  })

  it('published app with version=beta is accepted (undocumented; simulator choice)', async () => {
    const page = await openConsent(consentUrl(published, { version: 'beta' }))
    expect(page.status).toBe(200)
  })

  it('redirect_uri not registered → MD5101, with a fragment → MD5110', async () => {
    const md5101 = await openConsent(consentUrl(published, { redirect_uri: 'https://evil.example.com/cb' }))
    expect(errorCodeOf(md5101.html)).toBe('MD5101')
    // Exact match: a trailing slash is a different URI.
    const slash = await openConsent(
      consentUrl(published, { redirect_uri: 'https://app.example.com/amazon/callback/' }),
    )
    expect(errorCodeOf(slash.html)).toBe('MD5101')
    const md5110 = await openConsent(
      consentUrl(published, { redirect_uri: 'https://app.example.com/amazon/callback#x' }),
    )
    expect(errorCodeOf(md5110.html)).toBe('MD5110')
  })

  it('escapes what it echoes', async () => {
    const page = await openConsent(
      `${urls.consent(SC)}?application_id=${encodeURIComponent('<script>x</script>')}`,
    )
    expect(page.html).not.toContain('<script>x')
    expect(page.html).toContain('&lt;script&gt;x&lt;/script&gt;')
  })

  it('unknown hosts answer 404', async () => {
    const res = await fetch(
      `${server.url}/sellercentral.example.com/apps/authorize/consent?application_id=${published.appId}`,
    )
    expect(res.status).toBe(404)
  })
})

describe('website authorization workflow', () => {
  it('serves the consent page on every Seller and Vendor Central host', async () => {
    for (const host of allCentralHosts()) {
      const page = await openConsent(consentUrl(published, {}, host))
      expect(page.status, host).toBe(200)
      expect(page.html).toContain('<button type="submit" name="action" value="confirm">Confirm</button>')
      expect(page.html).toMatch(/>Cancel<\/button>/)
    }
  })

  it('shows sign-in, app name (escaped), data access text and secure headers', async () => {
    const page = await openConsent(consentUrl(published, { state: 'st' }))
    expect(page.html).toContain('Published &lt;b&gt;App&lt;/b&gt;')
    expect(page.html).toMatch(/name="selling_partner_id" value="A[0-9A-Z]{12,13}"/)
    expect(page.html).toContain('Data access')
    expect(page.html).not.toContain(published.clientSecrets[0]?.secret ?? '???')
    const csp = page.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).toContain("form-action 'self' https://app.example.com")
    expect(page.headers.get('referrer-policy')).toBe('no-referrer')
    expect(page.headers.get('cache-control')).toBe('no-store')
    expect(page.html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[^"]*\.(css|js)/)
    const css = await fetch(`${server.url}/_static/simulator.css`)
    expect(css.headers.get('content-type')).toContain('text/css')
  })

  it('Confirm → 302 to the first redirect URI with state, selling_partner_id and spapi_oauth_code', async () => {
    const page = await openConsent(consentUrl(published, { state: 'a b&c=d' }))
    const res = await submit(page, 'confirm', 'A3FHEXAMPLEYWS')
    expect(res.status).toBe(302)
    expect(res.headers.get('referrer-policy')).toBe('no-referrer')
    const location = new URL(res.headers.get('location') ?? '')
    expect(`${location.origin}${location.pathname}`).toBe('https://app.example.com/amazon/callback')
    expect(location.searchParams.get('state')).toBe('a b&c=d')
    expect(location.searchParams.get('selling_partner_id')).toBe('A3FHEXAMPLEYWS')
    expect(location.searchParams.get('spapi_oauth_code')).toMatch(/^S[A-Za-z0-9]{21}$/)
    expect(location.searchParams.has('mws_auth_token')).toBe(false)
  })

  it('uses the requested registered redirect URI, keeping its own query', async () => {
    const page = await openConsent(
      consentUrl(published, { redirect_uri: 'https://app.example.com/other?tenant=1' }),
    )
    const res = await submit(page, 'confirm')
    const location = new URL(res.headers.get('location') ?? '')
    expect(location.pathname).toBe('/other')
    expect(location.searchParams.get('tenant')).toBe('1')
    // No state given → none sent.
    expect(location.searchParams.has('state')).toBe(false)
    expect(location.searchParams.has('spapi_oauth_code')).toBe(true)
  })

  it('adds mws_auth_token for hybrid apps on Seller Central only', async () => {
    const seller = await submit(await openConsent(consentUrl(hybrid, { state: 's' })), 'confirm')
    expect(new URL(seller.headers.get('location') ?? '').searchParams.get('mws_auth_token')).toMatch(
      /^amzn\.mws\./,
    )
    const vendorPage = await openConsent(consentUrl(hybrid, { state: 's' }, VC))
    const vendor = await submit(vendorPage, 'confirm', 'A3FHEXAMPLEYWS', VC)
    expect(new URL(vendor.headers.get('location') ?? '').searchParams.has('mws_auth_token')).toBe(false)
  })

  it('Cancel → redirect with error=access_denied and state, no code (simulator choice)', async () => {
    const page = await openConsent(consentUrl(published, { state: 'xyz' }))
    const res = await submit(page, 'cancel')
    expect(res.status).toBe(302)
    const location = new URL(res.headers.get('location') ?? '')
    expect(location.searchParams.get('error')).toBe('access_denied')
    expect(location.searchParams.get('state')).toBe('xyz')
    expect(location.searchParams.has('spapi_oauth_code')).toBe(false)
  })

  it('refuses a POST without the simulator CSRF cookie or token', async () => {
    const page = await openConsent(consentUrl(published, { state: 'xyz' }))
    const noCookie = await submit(
      { ...page, cookie: 'amzn_sim_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
      'confirm',
    )
    expect(noCookie.status).toBe(403)
    expect(noCookie.headers.get('location')).toBeNull()
    const forged = await submit({ ...page, hidden: { ...page.hidden, sim_csrf: 'forged' } }, 'confirm')
    expect(forged.status).toBe(403)
  })

  it('re-checks tampered hidden fields on POST', async () => {
    const page = await openConsent(consentUrl(published, { state: 'xyz' }))
    const res = await submit(
      { ...page, hidden: { ...page.hidden, redirect_uri: 'https://evil.example.com/' } },
      'confirm',
    )
    expect(res.status).toBe(400)
    expect(errorCodeOf(await res.text())).toBe('MD5101')
  })

  it('asks again for an unusable selling partner id', async () => {
    const page = await openConsent(consentUrl(published, { state: 'xyz' }))
    const res = await submit(page, 'confirm', '<bad id>')
    expect(res.status).toBe(400)
    expect(await res.text()).toContain('Enter a selling partner id')
  })
})

describe('mounted under a prefix', () => {
  it('builds links and form actions from the request URL', async () => {
    const mountedSim = createSimulator({ apps: [published] })
    const parent = new Hono()
    parent.get('/', (c) => c.text('parent'))
    parent.route('/__amazon', mountedSim.app)
    const { url, close } = await new Promise<{ url: string; close: () => Promise<void> }>((resolve) => {
      const s = serve({ fetch: parent.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
        resolve({
          url: `http://127.0.0.1:${info.port}`,
          close: () =>
            new Promise((done) => {
              s.close(() => done())
              if ('closeAllConnections' in s) s.closeAllConnections()
            }),
        }),
      )
    })
    try {
      const base = `${url}/__amazon`
      const page = await openConsent(consentUrl(published, { state: 's' }, SC, base))
      expect(page.html).toContain(`action="${base}/${SC}/apps/authorize/consent"`)
      expect(page.html).toContain(`href="${base}/_static/simulator.css"`)
      expect(page.cookie).not.toBe('')
      const res = await submit(page, 'confirm', 'A3FHEXAMPLEYWS', SC, base)
      expect(res.status).toBe(302)
      const token = await fetch(`${base}/auth/o2/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: new URL(res.headers.get('location') ?? '').searchParams.get('spapi_oauth_code') ?? '',
          client_id: published.clientId,
          client_secret: published.clientSecrets[0]?.secret ?? '',
        }),
      })
      expect(token.status).toBe(200)
    } finally {
      await close()
    }
  })
})
