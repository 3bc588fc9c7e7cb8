/**
 * sp-connect mounted under a path prefix (SP_CONNECT_BASE_PATH=/amazon, docs/decisions/0012-base-path.md):
 * both workflows run end to end against the simulator, and every Location, link, form action and cookie Path
 * the service hands a browser stays under the prefix; paths outside it are 404, and return_to tricks with the
 * prefix are refused.
 */
import { request as httpRequest } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, loadConfigFromEnv } from '../../src/config.ts'
import { createServerApp } from '../../src/server/app.ts'
import { BrowserClient, type Hop } from '../helpers/browser-client.ts'
import { answerConsent, connectSeller, passLoginUri, randomSellingPartnerId } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const PREFIX = '/amazon'

/** A browser that keeps every hop it made to the service, so each can be checked for the prefix. */
class RecordingClient extends BrowserClient {
  readonly hops: Hop[] = []
  override async get(url: string, init: { headers?: Record<string, string> } = {}): Promise<Hop> {
    const hop = await super.get(url, init)
    this.hops.push(hop)
    return hop
  }
  override async post(url: string, form: Record<string, string>): Promise<Hop> {
    const hop = await super.post(url, form)
    this.hops.push(hop)
    return hop
  }
}

/** Every URL a service response points a browser to, resolved; and every cookie Path it sets. */
function pointersOf(hop: Hop): { urls: URL[]; cookiePaths: string[] } {
  const urls: URL[] = []
  if (hop.location !== null) urls.push(new URL(hop.location, hop.url))
  if ((hop.headers.get('content-type') ?? '').startsWith('text/html')) {
    for (const match of hop.body.matchAll(/\b(?:href|action|src)="([^"]*)"/g))
      urls.push(new URL((match[1] ?? '').replaceAll('&amp;', '&'), hop.url))
  }
  const cookiePaths = hop.headers.getSetCookie().map((cookie) => /;\s*Path=([^;]*)/i.exec(cookie)?.[1] ?? '')
  return { urls, cookiePaths }
}

function expectUnderPrefix(stack: Stack, hops: readonly Hop[]): number {
  const origin = new URL(stack.serviceUrl).origin
  let checked = 0
  for (const hop of hops.filter((h) => h.url.startsWith(stack.serviceUrl))) {
    const { urls, cookiePaths } = pointersOf(hop)
    for (const url of urls.filter((u) => u.origin === origin)) {
      expect(
        url.pathname === PREFIX || url.pathname.startsWith(`${PREFIX}/`),
        `${url.href} from ${hop.url}`,
      ).toBe(true)
      checked++
    }
    for (const path of cookiePaths) {
      expect(path, `cookie path from ${hop.url}`).toBe(PREFIX)
      checked++
    }
  }
  return checked
}

/** A raw request, so the path reaches the server exactly as written (fetch would normalise dot segments). */
function rawGet(stack: Stack, path: string): Promise<number> {
  const { hostname, port } = new URL(stack.serviceUrl)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, path, method: 'GET' }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
}

describe('sp-connect under a base path', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({ basePath: PREFIX })
  })
  afterAll(async () => {
    await stack?.close()
  })

  it('runs the website workflow with every redirect, link and cookie under the prefix', async () => {
    const client = new RecordingClient()
    const { callbackUrl, landing } = await connectSeller(stack, client, { tenantId: 'acme' })
    expect(new URL(callbackUrl).pathname).toBe(`${PREFIX}/callback`)
    const start = client.hops[0]
    expect(new URL(start?.url ?? '').pathname).toMatch(/^\/amazon\/connect\/s\//)
    const binding = start?.headers.getSetCookie().find((c) => c.startsWith('__Secure-sp-connect-binding='))
    expect(binding).toMatch(/; Path=\/amazon(;|$)/)
    expect(binding).toMatch(/; Secure/)
    expect(landing.location).toBe(`${PREFIX}/connected`)
    const page = await client.follow(landing)
    expect(page.status).toBe(200)
    const stylesheet = /href="([^"]*sp-connect\.css)"/.exec(page.body)?.[1]
    expect(stylesheet).toBe(`${PREFIX}/assets/sp-connect.css`)
    expect((await client.get(new URL(stylesheet ?? '', page.url).href)).status).toBe(200)
    expect(expectUnderPrefix(stack, client.hops)).toBeGreaterThanOrEqual(3)
  })

  it('runs the Login-URI workflow from the Appstore with every hop under the prefix', async () => {
    const client = new RecordingClient()
    const host = 'sellercentral.amazon.com'
    const detail = await client.get(`${stack.simulatorUrl}/${host}/apps/appstore/${stack.app.appId}`)
    const consent = await client.clickLink(detail, 'Authorize now')
    const sellingPartnerId = randomSellingPartnerId()
    const toLogin = await client.submitForm(
      consent,
      { name: 'action', value: 'confirm' },
      { selling_partner_id: sellingPartnerId },
    )
    const login = new URL(toLogin.location ?? '')
    expect(`${login.origin}${login.pathname}`).toBe(`${stack.serviceUrl}/login`)
    const back = await passLoginUri(stack, client, login.href, { tenantId: 'appstore-tenant' })
    const confirmation = client.hops.find((hop) => hop.url.includes('/login/continue/') && hop.status === 200)
    expect(new URL(confirmation?.url ?? '').pathname).toMatch(/^\/amazon\/login\/continue\//)
    expect(confirmation?.body).toMatch(/action="\/amazon\/login\/continue\//)
    expect(new URL(back.location ?? '').searchParams.get('redirect_uri')).toBe(`${stack.serviceUrl}/callback`)
    const landing = await client.follow(back)
    expect(landing.url).toBe(`${stack.serviceUrl}/connected`)
    expect(await stack.runtime.store.findConnection(sellingPartnerId, 'na')).toMatchObject({
      tenantId: 'appstore-tenant',
      status: 'active',
    })
    expect(expectUnderPrefix(stack, client.hops)).toBeGreaterThanOrEqual(4)
  })

  it('keeps the operator console under the prefix: sign-in redirect, form actions, cookie path', async () => {
    const client = new RecordingClient()
    const home = await client.get(`${stack.serviceUrl}/`)
    expect(home.location).toBe(`${PREFIX}/console/sign-in`)
    const signIn = await client.follow(home)
    expect(signIn.status).toBe(200)
    expect(signIn.body).toContain(`action="${PREFIX}/console/sign-in"`)
    const pre = signIn.headers.getSetCookie().find((c) => c.startsWith('__Secure-sp-connect-console-pre='))
    expect(pre).toMatch(/; Path=\/amazon(;|$)/)
    expect(expectUnderPrefix(stack, client.hops)).toBeGreaterThanOrEqual(3)
  })

  it('answers under the prefix only: everything else is 404, however the path is spelled', async () => {
    expect(await rawGet(stack, `${PREFIX}/healthz`)).toBe(200)
    expect(await rawGet(stack, PREFIX)).toBe(303)
    for (const path of [
      '/healthz',
      '/connected',
      '/callback',
      '/v1/connections',
      '/amazonX/healthz',
      '/amazon../healthz',
      `${PREFIX}/../healthz`,
      `${PREFIX}/%2e%2e/healthz`,
      `${PREFIX}/%2E%2E/v1/connections`,
      '/amazon%2Fhealthz',
      '/AMAZON/healthz',
    ]) {
      expect(await rawGet(stack, path), path).toBe(404)
    }
    const api = await fetch(`${new URL(stack.serviceUrl).origin}/v1/connections`, {
      headers: { authorization: `Bearer ${stack.apiKey}` },
    })
    expect(api.status).toBe(404)
    expect((await stack.api('GET', '/v1/connections')).status).toBe(200)
  })

  it('resolves return_to under the prefix and refuses paths that only look like it', async () => {
    const origin = new URL(stack.serviceUrl).origin
    const create = (returnTo: string) =>
      stack.api('POST', '/v1/connect-sessions', { tenant_id: 'acme', region: 'na', return_to: returnTo })
    for (const refused of [
      '/amazonX/done',
      '/amazon../done',
      '/amazon/../done',
      '/amazon/%2e%2e/done',
      '/amazon/%2E%2E/%2E%2E/done',
      '../done',
      '/done',
      `${origin}/done`,
      `${origin}/amazonX`,
      '/amazon%2Fdone',
      '//evil.example/amazon/done',
      '/amazon\\..\\done',
    ]) {
      const answer = await create(refused)
      expect(answer.status, refused).toBe(400)
    }
    for (const allowed of ['/amazon/connected', 'connected', `${origin}/amazon/x?y=1`, '/amazon']) {
      expect((await create(allowed)).status, allowed).toBe(201)
    }
    // The stored value is the resolved URL: a relative one lands under the prefix.
    const client = new RecordingClient()
    const created = await create('done')
    const start = await client.get(String(created.json['url']))
    const consent = await client.get(start.location ?? '')
    const callbackUrl = await answerConsent(client, consent, { sellingPartnerId: randomSellingPartnerId() })
    const landing = new URL((await client.get(callbackUrl)).location ?? '')
    expect(`${landing.origin}${landing.pathname}`).toBe(`${origin}${PREFIX}/done`)
    expect(landing.searchParams.get('connection_id')).toBeTruthy()
  })
})

describe('base path configuration', () => {
  const env = {
    SP_CONNECT_PUBLIC_URL: 'https://app.example.com',
    SP_CONNECT_APP_ID: 'amzn1.sp.solution.test-app',
    SP_CONNECT_LWA_CLIENT_ID: 'amzn1.application-oa2-client.abc123',
    SP_CONNECT_LWA_CLIENT_SECRET: 'a-long-enough-client-secret',
    DATABASE_URL: '/tmp/unused.db',
    SP_CONNECT_ENCRYPTION_KEYS: `k1:${Buffer.from('0123456789abcdefghijklmnopqrstuv').toString('base64')}`,
    SP_CONNECT_API_KEYS: 'backend:abcdefghijklmnopqrstuvwxyz0123456789',
  }

  it('derives the redirect URI from the origin and the base path', () => {
    const config = loadConfigFromEnv({ ...env, SP_CONNECT_BASE_PATH: '/amazon/sp-connect' })
    expect(config.basePath).toBe('/amazon/sp-connect')
    expect(config.redirectUri).toBe('https://app.example.com/amazon/sp-connect/callback')
    expect(loadConfigFromEnv(env).basePath).toBe('')
  })

  it.each([
    'amazon',
    '/amazon/',
    '/',
    '/a/../b',
    '/a/./b',
    '/..',
    '/a//b',
    '/a b',
    '/%2e%2e',
    '/a?b',
    '/a#b',
    '/a\\b',
  ])('refuses SP_CONNECT_BASE_PATH=%j', (basePath) => {
    expect(() => loadConfigFromEnv({ ...env, SP_CONNECT_BASE_PATH: basePath })).toThrow(ConfigError)
  })

  it('checks configurations built in code when the server app is made', async () => {
    const stack = await startStack()
    try {
      const withConfig = (change: object) => () =>
        createServerApp({ ...stack.runtime, config: { ...stack.runtime.config, ...change } })
      expect(withConfig({ publicUrl: 'https://app.example.com/amazon' })).toThrow(ConfigError)
      expect(withConfig({ publicUrl: 'https://app.example.com/' })).toThrow(ConfigError)
      expect(withConfig({ basePath: '/amazon/' })).toThrow(ConfigError)
      expect(withConfig({ basePath: '/amazon/..' })).toThrow(ConfigError)
      expect(withConfig({ basePath: '/amazon' })).not.toThrow()
    } finally {
      await stack.close()
    }
  })

  it('refuses a public URL with a path, naming SP_CONNECT_BASE_PATH', () => {
    expect(() =>
      loadConfigFromEnv({ ...env, SP_CONNECT_PUBLIC_URL: 'https://app.example.com/amazon' }),
    ).toThrow(/SP_CONNECT_BASE_PATH/)
  })
})
