import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
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
const DAY = 24 * 3600_000
const app = generateDevApp({
  name: 'Token App',
  redirectUri: ['https://app.example.com/cb', 'https://app.example.com/cb2'],
  loginUri: 'https://app.example.com/login',
})
const other = generateDevApp({
  redirectUri: 'https://other.example.com/cb',
  loginUri: 'https://other.example.com/login',
})
const SECRET = app.clientSecrets[0]?.secret ?? ''

let sim: Simulator
let server: SimulatorServer
let urls: ReturnType<typeof simulatorUrls>

beforeAll(async () => {
  sim = createSimulator({ apps: [app, other] })
  server = await startSimulatorServer(sim, { port: 0 })
  urls = simulatorUrls(server.url)
})
afterAll(async () => {
  await server.close()
  await sim.close()
})
beforeEach(() => sim.setFaults({}))

/** Runs the website flow over HTTP and returns the code from the redirect. */
async function authorize(
  target: SimulatedApp = app,
  sellingPartnerId = 'A3FHEXAMPLEYWS',
  redirectUri?: string,
): Promise<string> {
  const q = new URLSearchParams({ application_id: target.appId, state: 'st' })
  if (redirectUri) q.set('redirect_uri', redirectUri)
  const page = await fetch(`${urls.consent(SC)}?${q}`)
  const html = await page.text()
  const cookie = page.headers.get('set-cookie')?.split(';')[0] ?? ''
  const hidden = Object.fromEntries(
    [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2]]),
  )
  const res = await fetch(urls.consent(SC), {
    method: 'POST',
    body: new URLSearchParams({ ...hidden, selling_partner_id: sellingPartnerId, action: 'confirm' }),
    headers: { cookie },
    redirect: 'manual',
  })
  return new URL(res.headers.get('location') ?? '').searchParams.get('spapi_oauth_code') ?? ''
}

type Fields = Record<string, string>
interface TokenBody {
  access_token?: string
  refresh_token?: string
  token_type?: string
  expires_in?: number
  error?: string
  error_description?: string
  error_index?: string
  request_id?: string
}
type Encoding = 'form' | 'json' | 'basic'

async function token(
  fields: Fields,
  encoding: Encoding = 'form',
): Promise<{ status: number; body: TokenBody; headers: Headers }> {
  let res: Response
  if (encoding === 'json') {
    res = await fetch(urls.token, {
      method: 'POST',
      body: JSON.stringify(fields),
      headers: { 'content-type': 'application/json' },
    })
  } else if (encoding === 'basic') {
    const { client_id, client_secret, ...rest } = fields
    const basic = Buffer.from(
      `${encodeURIComponent(client_id ?? '')}:${encodeURIComponent(client_secret ?? '')}`,
    ).toString('base64')
    res = await fetch(urls.token, {
      method: 'POST',
      body: new URLSearchParams(rest),
      headers: { authorization: `Basic ${basic}` },
    })
  } else {
    res = await fetch(urls.token, { method: 'POST', body: new URLSearchParams(fields) })
  }
  return { status: res.status, body: (await res.json()) as TokenBody, headers: res.headers }
}

const creds = { client_id: app.clientId, client_secret: SECRET }

function expectError(
  r: Awaited<ReturnType<typeof token>>,
  status: number,
  error: string,
  description?: string,
) {
  expect(r.status).toBe(status)
  expect(Object.keys(r.body).sort()).toEqual(['error', 'error_description', 'error_index', 'request_id'])
  expect(r.body.error).toBe(error)
  if (description !== undefined) expect(r.body.error_description).toBe(description)
  expect(r.body.request_id).toMatch(/^[0-9a-f-]{36}$/)
  expect((r.body.error_index ?? '').length).toBeGreaterThan(20)
  expect(r.headers.get('content-type')).toBe('application/json;charset=UTF-8')
  expect(r.headers.get('cache-control')).toBe('no-store')
}

const CODE_TEXT = 'The request has an invalid grant parameter : code'
const REFRESH_TEXT =
  "The request has an invalid grant parameter : refresh_token. User may have revoked or didn't grant the permission."

describe('authorization_code grant', () => {
  for (const encoding of ['form', 'json', 'basic'] as const) {
    it(`exchanges a code (${encoding})`, async () => {
      const code = await authorize()
      const r = await token(
        { grant_type: 'authorization_code', code, redirect_uri: 'https://app.example.com/cb', ...creds },
        encoding,
      )
      expect(r.status).toBe(200)
      expect(Object.keys(r.body).sort()).toEqual([
        'access_token',
        'expires_in',
        'refresh_token',
        'token_type',
      ])
      expect(r.body.access_token).toMatch(/^Atza\|/)
      expect(r.body.refresh_token).toMatch(/^Atzr\|/)
      expect(r.body.token_type).toBe('bearer')
      expect(r.body.expires_in).toBe(3600)
      expect(Buffer.byteLength(r.body.refresh_token ?? '')).toBeLessThanOrEqual(2048)
      expect(r.headers.get('content-type')).toBe('application/json;charset=UTF-8')
      expect(r.headers.get('cache-control')).toBe('no-store')
      expect(r.headers.get('pragma')).toBe('no-cache')
    })
  }

  it('accepts a code without redirect_uri (the docs example omits it)', async () => {
    const r = await token({ grant_type: 'authorization_code', code: await authorize(), ...creds })
    expect(r.status).toBe(200)
  })

  it('is single use', async () => {
    const code = await authorize()
    expect((await token({ grant_type: 'authorization_code', code, ...creds })).status).toBe(200)
    expectError(
      await token({ grant_type: 'authorization_code', code, ...creds }),
      400,
      'invalid_grant',
      CODE_TEXT,
    )
  })

  it('expires after 5 minutes', async () => {
    const fresh = await authorize()
    const stale = await authorize()
    sim.advanceClock(4 * 60_000 + 59_000)
    expect((await token({ grant_type: 'authorization_code', code: fresh, ...creds })).status).toBe(200)
    sim.advanceClock(2_000)
    expectError(
      await token({ grant_type: 'authorization_code', code: stale, ...creds }),
      400,
      'invalid_grant',
      CODE_TEXT,
    )
  })

  it('is bound to the client and the redirect URI it was issued for', async () => {
    const code = await authorize(app, 'A3FHEXAMPLEYWS', 'https://app.example.com/cb2')
    const otherCreds = { client_id: other.clientId, client_secret: other.clientSecrets[0]?.secret ?? '' }
    expectError(
      await token({ grant_type: 'authorization_code', code, ...otherCreds }),
      400,
      'invalid_grant',
      CODE_TEXT,
    )
    expectError(
      await token({
        grant_type: 'authorization_code',
        code,
        redirect_uri: 'https://app.example.com/cb',
        ...creds,
      }),
      400,
      'invalid_grant',
    )
    const ok = await token({
      grant_type: 'authorization_code',
      code,
      redirect_uri: 'https://app.example.com/cb2',
      ...creds,
    })
    expect(ok.status).toBe(200)
  })

  it('requires the code', async () => {
    expectError(
      await token({ grant_type: 'authorization_code', ...creds }),
      400,
      'invalid_request',
      'The request has an invalid parameter : code',
    )
    expectError(
      await token({ grant_type: 'authorization_code', code: 'SnotARealCode', ...creds }),
      400,
      'invalid_grant',
      CODE_TEXT,
    )
  })
})

describe('refresh_token grant', () => {
  async function refreshToken(sellingPartnerId = 'A3FHEXAMPLEYWS'): Promise<string> {
    const r = await token({
      grant_type: 'authorization_code',
      code: await authorize(app, sellingPartnerId),
      ...creds,
    })
    return r.body.refresh_token ?? ''
  }

  for (const encoding of ['form', 'json', 'basic'] as const) {
    it(`refreshes and echoes the refresh token unchanged (${encoding})`, async () => {
      const rt = await refreshToken()
      const r = await token({ grant_type: 'refresh_token', refresh_token: rt, ...creds }, encoding)
      expect(r.status).toBe(200)
      expect(r.body.refresh_token).toBe(rt)
      expect(r.body.access_token).toMatch(/^Atza\|/)
      expect(r.body.expires_in).toBe(3600)
    })
  }

  it('tolerates an unencoded | in a form body (the JS SDK does not encode)', async () => {
    const rt = await refreshToken()
    const body = `grant_type=refresh_token&refresh_token=${rt}&client_id=${app.clientId}&client_secret=${SECRET}`
    const res = await fetch(urls.token, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' },
    })
    expect(res.status).toBe(200)
  })

  it('must not include scope', async () => {
    const rt = await refreshToken()
    expectError(
      await token({
        grant_type: 'refresh_token',
        refresh_token: rt,
        scope: 'sellingpartnerapi::notifications',
        ...creds,
      }),
      400,
      'invalid_request',
      'The request has an invalid parameter : scope',
    )
  })

  it('refuses malformed, tampered and other-client tokens', async () => {
    const rt = await refreshToken()
    expectError(
      await token({ grant_type: 'refresh_token', refresh_token: 'Atzr|junk', ...creds }),
      400,
      'invalid_grant',
      REFRESH_TEXT,
    )
    expectError(
      await token({ grant_type: 'refresh_token', refresh_token: `${rt}x`, ...creds }),
      400,
      'invalid_grant',
      REFRESH_TEXT,
    )
    const otherCreds = { client_id: other.clientId, client_secret: other.clientSecrets[0]?.secret ?? '' }
    expectError(
      await token({ grant_type: 'refresh_token', refresh_token: rt, ...otherCreds }),
      400,
      'invalid_grant',
      REFRESH_TEXT,
    )
  })

  it('refuses refresh after revocation, and accepts a later re-authorization', async () => {
    const seller = 'AREVOKEDSELLER1'
    const before = await refreshToken(seller)
    sim.revoke(seller, app.appId)
    expectError(
      await token({ grant_type: 'refresh_token', refresh_token: before, ...creds }),
      400,
      'invalid_grant',
      REFRESH_TEXT,
    )
    const after = await refreshToken(seller)
    expect((await token({ grant_type: 'refresh_token', refresh_token: after, ...creds })).status).toBe(200)
  })

  it('refuses a code exchanged after its grant was revoked', async () => {
    const seller = 'AREVOKEDBEFORE1'
    const code = await authorize(app, seller)
    sim.revoke(seller)
    expectError(
      await token({ grant_type: 'authorization_code', code, ...creds }),
      400,
      'invalid_grant',
      CODE_TEXT,
    )
  })

  it('keeps working while another app is revoked for the same seller', async () => {
    const seller = 'ATWOAPPSELLER1'
    const rt = await refreshToken(seller)
    sim.selfAuthorize(other.appId, seller, 'na')
    sim.revoke(seller, other.appId)
    expect((await token({ grant_type: 'refresh_token', refresh_token: rt, ...creds })).status).toBe(200)
  })

  it('expires 365 days after the authorization', async () => {
    const rt = await refreshToken('AYEAROLDSELLER1')
    sim.advanceClock(365 * DAY - 60_000)
    expect((await token({ grant_type: 'refresh_token', refresh_token: rt, ...creds })).status).toBe(200)
    sim.advanceClock(2 * 60_000)
    expectError(
      await token({ grant_type: 'refresh_token', refresh_token: rt, ...creds }),
      400,
      'invalid_grant',
      REFRESH_TEXT,
    )
  })

  it('accepts self-authorization refresh tokens', async () => {
    const rt = sim.selfAuthorize(app.appId, 'ASELFAUTHSELLER', 'eu')
    const r = await token({ grant_type: 'refresh_token', refresh_token: rt, ...creds })
    expect(r.status).toBe(200)
    expect(r.body.refresh_token).toBe(rt)
  })

  it('requires refresh_token', async () => {
    expectError(
      await token({ grant_type: 'refresh_token', ...creds }),
      400,
      'invalid_request',
      'The request has an invalid parameter : refresh_token',
    )
  })
})

describe('client_credentials grant', () => {
  for (const encoding of ['form', 'json', 'basic'] as const) {
    it(`issues a grantless token without refresh token (${encoding})`, async () => {
      const r = await token(
        { grant_type: 'client_credentials', scope: 'sellingpartnerapi::notifications', ...creds },
        encoding,
      )
      expect(r.status).toBe(200)
      expect(Object.keys(r.body).sort()).toEqual(['access_token', 'expires_in', 'token_type'])
      expect(r.body.access_token).toMatch(/^Atza\|/)
    })
  }

  it('accepts the documented scopes, space separated', async () => {
    const scope =
      'sellingpartnerapi::notifications sellingpartnerapi::client_credential:rotation sellingpartnerapi::migration'
    expect((await token({ grant_type: 'client_credentials', scope, ...creds })).status).toBe(200)
  })

  it('refuses unknown scopes, a missing scope, and a refresh_token', async () => {
    expectError(
      await token({ grant_type: 'client_credentials', scope: 'SCOPE_NOTIFICATIONS_API', ...creds }),
      400,
      'invalid_scope',
      'The request has an invalid parameter : scope',
    )
    expectError(
      await token({ grant_type: 'client_credentials', ...creds }),
      400,
      'invalid_request',
      'The request has an invalid parameter : scope',
    )
    expectError(
      await token({
        grant_type: 'client_credentials',
        scope: 'sellingpartnerapi::notifications',
        refresh_token: 'Atzr|x',
        ...creds,
      }),
      400,
      'invalid_request',
      'The request has an invalid parameter : refresh_token',
    )
  })
})

describe('client authentication and grant types', () => {
  it('invalid_client 401 for a wrong secret, unknown id, app id as client id, or no credentials', async () => {
    const base = { grant_type: 'client_credentials', scope: 'sellingpartnerapi::notifications' }
    const text = 'Client authentication failed'
    expectError(
      await token({ ...base, client_id: app.clientId, client_secret: 'amzn1.oa2-cs.v1.wrong' }),
      401,
      'invalid_client',
      text,
    )
    expectError(
      await token({ ...base, client_id: 'amzn1.application-oa2-client.nope', client_secret: SECRET }),
      401,
      'invalid_client',
      text,
    )
    expectError(
      await token({ ...base, client_id: app.appId, client_secret: SECRET }),
      401,
      'invalid_client',
      text,
    )
    expectError(await token(base), 401, 'invalid_client', text)
    const basic = await token({ ...base, client_id: app.clientId, client_secret: 'wrong' }, 'basic')
    expectError(basic, 401, 'invalid_client', text)
    expect(basic.headers.get('www-authenticate')).toMatch(/^Basic/)
  })

  it('accepts any unexpired secret during a rotation and refuses expired ones', async () => {
    const rotating: SimulatedApp = {
      ...generateDevApp({ redirectUri: 'https://r.example.com/cb', loginUri: 'https://r.example.com/login' }),
      clientSecrets: [
        { secret: 'amzn1.oa2-cs.v1.old', expiresAt: Date.now() + 7 * DAY },
        { secret: 'amzn1.oa2-cs.v1.new', expiresAt: null },
      ],
    }
    const rsim = createSimulator({ apps: [rotating] })
    const rserver = await startSimulatorServer(rsim, { port: 0 })
    const call = (secret: string) =>
      fetch(`${rserver.url}/auth/o2/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          scope: 'sellingpartnerapi::notifications',
          client_id: rotating.clientId,
          client_secret: secret,
        }),
      })
    expect((await call('amzn1.oa2-cs.v1.old')).status).toBe(200)
    expect((await call('amzn1.oa2-cs.v1.new')).status).toBe(200)
    rsim.advanceClock(8 * DAY)
    expect((await call('amzn1.oa2-cs.v1.old')).status).toBe(401)
    expect((await call('amzn1.oa2-cs.v1.new')).status).toBe(200)
    await rserver.close()
  })

  it('unsupported_grant_type for unknown, missing or unreadable grant types', async () => {
    const text = 'The authorization grant type is not supported by the authorization server'
    expectError(await token({ grant_type: 'password', ...creds }), 400, 'unsupported_grant_type', text)
    expectError(await token({ ...creds }), 400, 'unsupported_grant_type', text)
    const plain = await fetch(urls.token, {
      method: 'POST',
      body: 'grant_type=client_credentials',
      headers: { 'content-type': 'text/plain' },
    })
    expect(plain.status).toBe(400)
    expect(((await plain.json()) as TokenBody).error).toBe('unsupported_grant_type')
  })

  it('answers 405 to GET', async () => {
    expect((await fetch(urls.token)).status).toBe(405)
  })
})

describe('faults and counters', () => {
  const cc = { grant_type: 'client_credentials', scope: 'sellingpartnerapi::notifications', ...creds }

  it('counts every call by grant and outcome', async () => {
    sim.resetCounters()
    await token(cc)
    await token({ ...cc, scope: 'bad' })
    await token({ grant_type: 'nope', ...creds })
    const rt = sim.selfAuthorize(app.appId, 'ACOUNTEDSELLER1', 'na')
    await token({ grant_type: 'refresh_token', refresh_token: rt, ...creds })
    expect(sim.counters()).toEqual({
      total: 4,
      byGrant: { authorization_code: 0, refresh_token: 1, client_credentials: 2, other: 1 },
      byOutcome: { ok: 2, error: 2, fault: 0 },
    })
    sim.resetCounters()
    expect(sim.counters().total).toBe(0)
  })

  it('answers 500/503 at errorRate 1 and 429 with Retry-After at throttleRate 1', async () => {
    sim.resetCounters()
    sim.setFaults({ errorRate: 1 })
    const failures = await Promise.all(Array.from({ length: 12 }, () => token(cc)))
    for (const f of failures) {
      expect([500, 503]).toContain(f.status)
      expect(f.body.error).toBe(f.status === 500 ? 'server_error' : 'temporarily_unavailable')
    }
    sim.setFaults({ throttleRate: 1, retryAfterSeconds: 9 })
    const throttled = await token(cc)
    expect(throttled.status).toBe(429)
    expect(throttled.headers.get('retry-after')).toBe('9')
    expect(sim.counters().byOutcome).toEqual({ ok: 0, error: 0, fault: 13 })
  })

  it('applies faults only to the listed grants', async () => {
    sim.setFaults({ errorRate: 1, grants: ['refresh_token'] })
    expect((await token(cc)).status).toBe(200)
    const rt = sim.selfAuthorize(app.appId, 'AFAULTSELLER01', 'na')
    expect([500, 503]).toContain(
      (await token({ grant_type: 'refresh_token', refresh_token: rt, ...creds })).status,
    )
  })

  it('answers 503 during an outage on the simulator clock, then recovers', async () => {
    sim.setFaults({ outageUntil: sim.now() + 60_000 })
    const during = await token(cc)
    expect(during.status).toBe(503)
    expect(during.body.error).toBe('temporarily_unavailable')
    sim.advanceClock(61_000)
    expect((await token(cc)).status).toBe(200)
  })

  it('adds latency and still answers', async () => {
    sim.setFaults({ latencyMs: 20 })
    expect((await token(cc)).status).toBe(200)
  })
})
