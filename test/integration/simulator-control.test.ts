import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createSimulator,
  generateDevApp,
  type Simulator,
  type SimulatorServer,
  simulatorUrls,
  startSimulatorServer,
} from '../../src/simulator/index.ts'

const app = generateDevApp({
  name: 'Control App',
  redirectUri: 'https://app.example.com/cb',
  loginUri: 'https://app.example.com/login',
})
const creds = { client_id: app.clientId, client_secret: app.clientSecrets[0]?.secret ?? '' }
const clock = Date.UTC(2026, 0, 1)

interface ControlBody {
  refreshToken?: string
  sellingPartnerId?: string
  [key: string]: unknown
}

let sim: Simulator
let server: SimulatorServer
let urls: ReturnType<typeof simulatorUrls>

beforeAll(async () => {
  sim = createSimulator({ apps: [app], now: () => clock, random: () => 0 })
  server = await startSimulatorServer(sim, { port: 0 })
  urls = simulatorUrls(server.url)
})
afterAll(async () => {
  await server.close()
  await sim.close()
})

async function control(path: Parameters<typeof urls.control>[0], body?: unknown) {
  const res = await fetch(urls.control(path), {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  })
  return { status: res.status, body: (await res.json()) as ControlBody }
}

async function refresh(rt: string) {
  return fetch(urls.token, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt, ...creds }),
  })
}

describe('control API', () => {
  it('lists apps without secrets', async () => {
    const r = await control('apps')
    expect(r.body).toEqual({ apps: [{ appId: app.appId, name: 'Control App', status: 'published' }] })
    expect(JSON.stringify(r.body)).not.toContain('amzn1.oa2-cs')
  })

  it('self-authorizes and revokes', async () => {
    const r = await control('self-authorize', {
      appId: app.appId,
      sellingPartnerId: 'ACONTROLSELL01',
      region: 'na',
    })
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ appId: app.appId, sellingPartnerId: 'ACONTROLSELL01', region: 'na' })
    const rt = String(r.body.refreshToken)
    expect((await refresh(rt)).status).toBe(200)
    expect((await control('revoke', { sellingPartnerId: 'ACONTROLSELL01', appId: app.appId })).status).toBe(
      200,
    )
    expect((await refresh(rt)).status).toBe(400)
    const generated = await control('self-authorize', { appId: app.appId, region: 'eu' })
    expect(generated.body.sellingPartnerId).toMatch(/^A[0-9A-Z]{12,13}$/)
  })

  it('moves the clock', async () => {
    const before = await control('clock')
    expect(before.body).toEqual({ now: clock, offsetMs: 0 })
    const after = await control('clock', { advanceMs: 90_000 })
    expect(after.body).toEqual({ now: clock + 90_000, offsetMs: 90_000 })
  })

  it('sets faults and reads counters', async () => {
    await control('reset-counters', {})
    const set = await control('faults', { errorRate: 1, grants: ['client_credentials'] })
    expect(set.body).toEqual({ errorRate: 1, grants: ['client_credentials'] })
    const res = await fetch(urls.token, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        scope: 'sellingpartnerapi::notifications',
        ...creds,
      }),
    })
    // random() is 0: the fault draws pick a 500.
    expect(res.status).toBe(500)
    const counters = await control('counters')
    expect(counters.body).toMatchObject({ total: 1, byOutcome: { ok: 0, error: 0, fault: 1 } })
    await control('faults', {})
    expect((await control('faults')).body).toEqual({})
  })

  it('expires access tokens', async () => {
    const r = await control('self-authorize', {
      appId: app.appId,
      sellingPartnerId: 'ACONTROLSELL02',
      region: 'na',
    })
    const token = await refresh(String(r.body.refreshToken))
    const access = ((await token.json()) as { access_token: string }).access_token
    expect((await control('expire-tokens', { sellingPartnerId: 'ACONTROLSELL02' })).status).toBe(200)
    const api = await fetch(urls.spapi('sellingpartnerapi-na.amazon.com'), {
      headers: { 'x-amz-access-token': access },
    })
    expect(api.status).toBe(403)
  })

  it('validates input and requires JSON', async () => {
    expect((await control('faults', { errorRate: 2 })).status).toBe(400)
    expect((await control('self-authorize', { appId: 'nope', region: 'na' })).status).toBe(404)
    expect((await control('self-authorize', { appId: app.appId, region: 'xx' })).status).toBe(400)
    expect((await control('revoke', { sellingPartnerId: 'A1', appId: 'nope' })).status).toBe(404)
    const form = await fetch(urls.control('revoke'), {
      method: 'POST',
      body: new URLSearchParams({ sellingPartnerId: 'A1' }),
    })
    expect(form.status).toBe(415)
  })
})
