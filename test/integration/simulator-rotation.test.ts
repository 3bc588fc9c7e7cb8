/**
 * The simulator's client-secret rotation over real HTTP: rotateApplicationClientSecret with its token,
 * scope, enrolment and rate rules; the APPLICATION_OAUTH_CLIENT_NEW_SECRET notification in Amazon's shape,
 * delivered (with retries) to a receiver standing in for the SQS forwarder; the old secret valid until its
 * expiry on the simulator clock; the expiry warning and the secrets' info from the control API; and rotated
 * secrets kept in the state file.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Listening, listen } from '../../src/cli/listen.ts'
import {
  createSimulator,
  generateDevApp,
  type NotificationTarget,
  type SimulatedApp,
  simulatorUrls,
  startSimulatorServer,
} from '../../src/simulator/index.ts'

const DAY = 24 * 3600_000
const CLOCK = Date.UTC(2026, 2, 1, 12)
const ROTATION_SCOPE = 'sellingpartnerapi::client_credential:rotation'

interface Received {
  readonly headers: Headers
  readonly body: Record<string, unknown>
}

let dir: string
let receiver: Listening
let received: Received[]
/** Status codes the receiver answers with, one per request; 204 once they run out. */
let answers: number[]
const cleanup: (() => Promise<void>)[] = []

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sp-sim-rot-'))
  received = []
  answers = []
  receiver = await listen(
    async (request) => {
      received.push({ headers: request.headers, body: (await request.json()) as Record<string, unknown> })
      return new Response(null, { status: answers.shift() ?? 204 })
    },
    0,
    '127.0.0.1',
  )
})
afterEach(async () => {
  for (const close of cleanup.splice(0).reverse()) await close()
  await receiver.close()
  rmSync(dir, { recursive: true, force: true })
})

function target(overrides: Partial<NotificationTarget> = {}): NotificationTarget {
  return {
    url: `http://127.0.0.1:${receiver.port}/v1/notifications`,
    headers: { authorization: 'Bearer forwarder-key' },
    retryDelaysMs: [10, 10, 10],
    ...overrides,
  }
}

async function start(
  options: { notifications?: NotificationTarget; stateFile?: string; app?: SimulatedApp } = {},
) {
  const app =
    options.app ??
    generateDevApp({ redirectUri: 'https://app.example.com/cb', loginUri: 'https://app.example.com/login' })
  const sim = createSimulator({
    apps: [app],
    // A fixed clock (moved only by advanceClock), so expiry times can be compared exactly
    now: () => CLOCK,
    signingSecret: 'rotation-test-signing-secret',
    ...(options.notifications ? { notifications: options.notifications } : {}),
    ...(options.stateFile ? { stateFile: options.stateFile } : {}),
  })
  const server = await startSimulatorServer(sim, { port: 0 })
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await server.close()
    await sim.close()
  }
  cleanup.push(close)
  return { app, sim, server, urls: simulatorUrls(server.url), close }
}

type Started = Awaited<ReturnType<typeof start>>

async function token(s: Started, params: Record<string, string>, secret?: string) {
  const response = await fetch(s.urls.token, {
    method: 'POST',
    body: new URLSearchParams({
      client_id: s.app.clientId,
      client_secret: secret ?? s.app.clientSecrets[0]?.secret ?? '',
      ...params,
    }),
  })
  return { status: response.status, body: (await response.json()) as Record<string, string> }
}

async function grantless(s: Started, scope = ROTATION_SCOPE, secret?: string): Promise<string> {
  const answer = await token(s, { grant_type: 'client_credentials', scope }, secret)
  expect(answer.status).toBe(200)
  return answer.body['access_token'] ?? ''
}

async function rotate(s: Started, accessToken: string | undefined, host = 'sellingpartnerapi-na.amazon.com') {
  const response = await fetch(s.urls.spapi(host, '/applications/2023-11-30/clientSecret'), {
    method: 'POST',
    headers: accessToken === undefined ? {} : { 'x-amz-access-token': accessToken },
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text === '' ? null : JSON.parse(text) }
}

function newSecretOf(r: Received | undefined): Record<string, string> {
  const payload = r?.body['payload'] as { applicationOAuthClientNewSecret: Record<string, string> }
  return payload.applicationOAuthClientNewSecret
}

describe('simulated rotateApplicationClientSecret', () => {
  it('rotates, notifies in Amazon’s shape, and keeps the old secret valid until its expiry', async () => {
    const s = await start({ notifications: target() })
    const oldSecret = s.app.clientSecrets[0]?.secret ?? ''
    const rotatedAt = s.sim.now()

    const answer = await rotate(s, await grantless(s))
    expect(answer.status).toBe(204)
    expect(answer.body).toBeNull()
    expect(answer.headers.get('x-amzn-RequestId')).toMatch(/^[0-9a-f-]{36}$/)
    expect(answer.headers.get('x-amzn-RateLimit-Limit')).toBe('0.0167')

    await s.sim.flushNotifications()
    expect(received).toHaveLength(1)
    const [delivery] = received
    expect(delivery?.headers.get('authorization')).toBe('Bearer forwarder-key')
    expect(delivery?.headers.get('content-type')).toBe('application/json')
    expect(delivery?.body).toEqual({
      notificationVersion: '1.0',
      notificationType: 'APPLICATION_OAUTH_CLIENT_NEW_SECRET',
      payloadVersion: '2023-11-30',
      eventTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      payload: {
        applicationOAuthClientNewSecret: {
          clientId: s.app.clientId,
          newClientSecret: expect.stringMatching(/^amzn1\.oa2-cs\.v1\.[0-9a-f]{64}$/),
          newClientSecretExpiryTime: expect.any(String),
          oldClientSecretExpiryTime: expect.any(String),
        },
      },
      notificationMetadata: {
        applicationId: s.app.appId,
        subscriptionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        publishTime: expect.any(String),
        notificationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      },
    })
    const secret = newSecretOf(delivery)
    const newSecret = secret['newClientSecret'] ?? ''
    const oldExpiry = Date.parse(secret['oldClientSecretExpiryTime'] ?? '')
    expect(newSecret).not.toBe(oldSecret)
    expect(oldExpiry - rotatedAt).toBeGreaterThanOrEqual(7 * DAY)
    expect(oldExpiry - rotatedAt).toBeLessThan(7 * DAY + 60_000)
    expect(Date.parse(secret['newClientSecretExpiryTime'] ?? '') - rotatedAt).toBeGreaterThanOrEqual(
      180 * DAY,
    )
    expect(s.sim.notificationLog()).toMatchObject([
      {
        notificationType: 'APPLICATION_OAUTH_CLIENT_NEW_SECRET',
        status: 'delivered',
        attempts: 1,
        lastStatus: 204,
      },
    ])

    // Both secrets work during the overlap…
    const scope = 'sellingpartnerapi::notifications'
    expect((await token(s, { grant_type: 'client_credentials', scope }, oldSecret)).status).toBe(200)
    expect((await token(s, { grant_type: 'client_credentials', scope }, newSecret)).status).toBe(200)
    // …until the old one's expiry on the simulator clock, then only the new one
    s.sim.advanceClock(oldExpiry - s.sim.now())
    const refused = await token(s, { grant_type: 'client_credentials', scope }, oldSecret)
    expect(refused).toMatchObject({ status: 401, body: { error: 'invalid_client' } })
    expect((await token(s, { grant_type: 'client_credentials', scope }, newSecret)).status).toBe(200)

    const info = s.sim.clientSecretInfo(s.app.appId)
    expect(info).toMatchObject([
      {
        position: 1,
        createdAt: null,
        expiresAt: oldExpiry,
        live: false,
        authenticated: 2,
        refusedAfterExpiry: 1,
      },
      { position: 2, live: true, authenticated: 2, refusedAfterExpiry: 0 },
    ])
  })

  it('answers 403 without a token, with a bad one, and for tokens without the rotation scope', async () => {
    const s = await start({ notifications: target() })
    const details = async (accessToken: string | undefined) => {
      const answer = await rotate(s, accessToken)
      expect(answer.status).toBe(403)
      expect(answer.headers.get('x-amzn-ErrorType')).toBe('AccessDeniedException')
      expect(answer.headers.get('x-amzn-RateLimit-Limit')).toBeNull()
      const [error] = (answer.body as { errors: { code: string; message: string; details: string }[] }).errors
      expect(error).toMatchObject({
        code: 'Unauthorized',
        message: 'Access to requested resource is denied.',
      })
      return error?.details
    }
    expect(await details(undefined)).toBe('Access token is missing in the request header.')
    expect(await details('Atza|forged.token')).toBe(
      'The access token you provided is revoked, malformed or invalid.',
    )
    expect(await details(await grantless(s, 'sellingpartnerapi::notifications'))).toBe('')
    const seller = s.sim.selfAuthorize(s.app.appId, 'AROTATIONSELLER', 'na')
    const sellerToken = (await token(s, { grant_type: 'refresh_token', refresh_token: seller })).body[
      'access_token'
    ]
    expect(await details(sellerToken)).toBe('')
    const scoped = await grantless(s)
    s.sim.advanceClock(3600_000)
    expect(await details(scoped)).toBe('The access token you provided has expired.')
    expect(received).toHaveLength(0)
    expect(s.app.clientSecrets).toHaveLength(1)
  })

  it('answers 400 "not enrolled" without a notification destination, and on sandbox hosts', async () => {
    const s = await start()
    const answer = await rotate(s, await grantless(s))
    expect(answer.status).toBe(400)
    expect(answer.body).toEqual({
      errors: [
        {
          code: 'InvalidInput',
          message:
            'Application is not enrolled for rotation notification. Please update application notification preference in Developer console.',
        },
      ],
    })
    s.sim.configureNotifications(target())
    expect((await rotate(s, await grantless(s), 'sandbox.sellingpartnerapi-na.amazon.com')).status).toBe(400)
    expect(s.app.clientSecrets).toHaveLength(1)
    expect((await rotate(s, await grantless(s), 'sellingpartnerapi-eu.amazon.com')).status).toBe(204)
  })

  it('allows one rotation per 60 s per app (429 QuotaExceeded)', async () => {
    const s = await start({ notifications: target() })
    const accessToken = await grantless(s)
    const t0 = s.sim.now()
    expect((await rotate(s, accessToken)).status).toBe(204)
    const throttled = await rotate(s, accessToken)
    expect(throttled.status).toBe(429)
    expect(throttled.body).toEqual({
      errors: [{ code: 'QuotaExceeded', message: 'You exceeded your quota for the requested resource.' }],
    })
    expect(throttled.headers.get('x-amzn-RateLimit-Limit')).toBeNull()
    s.sim.advanceClock(60_000)
    expect((await rotate(s, accessToken)).status).toBe(204)
    await s.sim.flushNotifications()
    // Two rotations: three secrets, the first two expiring 7 days after their successor's arrival
    expect(received).toHaveLength(2)
    const info = s.sim.clientSecretInfo(s.app.appId)
    expect(info.map((i) => i.live)).toEqual([true, true, true])
    expect(info[0]?.expiresAt).toBe(t0 + 7 * DAY)
    expect(info[1]?.expiresAt).toBe(t0 + 60_000 + 7 * DAY)
    expect(info[2]?.expiresAt).toBe(t0 + 60_000 + 180 * DAY)
  })

  it('retries a failed delivery, then reports it delivered', async () => {
    answers = [500, 503]
    const s = await start({ notifications: target() })
    expect((await rotate(s, await grantless(s))).status).toBe(204)
    await s.sim.flushNotifications()
    expect(received).toHaveLength(3)
    const ids = new Set(
      received.map((r) => (r.body['notificationMetadata'] as { notificationId: string }).notificationId),
    )
    expect(ids.size).toBe(1)
    expect(s.sim.notificationLog()).toMatchObject([{ status: 'delivered', attempts: 3, lastStatus: 204 }])
  })

  it('gives up after the last retry and says so (never following redirects)', async () => {
    answers = [500, 500, 500, 307]
    const s = await start({ notifications: target() })
    expect((await rotate(s, await grantless(s))).status).toBe(204)
    await s.sim.flushNotifications()
    expect(received).toHaveLength(4)
    expect(s.sim.notificationLog()).toMatchObject([{ status: 'failed', attempts: 4, lastStatus: 307 }])
    const log = await (await fetch(s.urls.control('notifications'))).json()
    expect(JSON.stringify(log)).not.toContain('amzn1.oa2-cs')
  })
})

describe('control API for client secrets', () => {
  it('emits APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY, optionally making it come true', async () => {
    const s = await start({ notifications: target() })
    const expiresAt = s.sim.now() + 30 * DAY
    const post = (body: unknown) =>
      fetch(s.urls.control('secret-expiry'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    expect((await post({ appId: s.app.appId, expiresAt })).status).toBe(200)
    await s.sim.flushNotifications()
    expect(received[0]?.body).toMatchObject({
      notificationVersion: '1.0',
      notificationType: 'APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY',
      payload: {
        applicationOAuthClientSecretExpiry: {
          clientId: s.app.clientId,
          clientSecretExpiryTime: new Date(expiresAt).toISOString(),
          clientSecretExpiryReason: 'PERIODIC_ROTATION',
        },
      },
      notificationMetadata: { applicationId: s.app.appId },
    })
    expect(s.app.clientSecrets[0]?.expiresAt).toBeNull()

    expect((await post({ appId: s.app.appId, expiresAt, enforce: true, reason: 'SECURITY' })).status).toBe(
      200,
    )
    expect(s.app.clientSecrets[0]?.expiresAt).toBe(expiresAt)
    expect((await post({ appId: 'amzn1.sp.solution.unknown' })).status).toBe(404)
    expect((await post({ appId: s.app.appId, reason: 'lower case' })).status).toBe(400)
  })

  it('reports the secrets’ expiry times and usage, never the secrets', async () => {
    const s = await start({ notifications: target() })
    await rotate(s, await grantless(s))
    const get = (query: string) => fetch(`${s.urls.control('client-secrets')}${query}`)
    const answer = await get(`?appId=${encodeURIComponent(s.app.appId)}`)
    expect(answer.status).toBe(200)
    const text = await answer.text()
    expect(text).not.toContain('amzn1.oa2-cs')
    for (const secret of s.app.clientSecrets) expect(text).not.toContain(secret.secret)
    expect(JSON.parse(text)).toMatchObject({
      appId: s.app.appId,
      secrets: [
        { position: 1, live: true, authenticated: 1 },
        { position: 2, live: true, authenticated: 0, createdAt: expect.any(Number) },
      ],
    })
    expect((await get('')).status).toBe(400)
    expect((await get('?appId=nope')).status).toBe(404)
  })
})

describe('persistence of rotated secrets', () => {
  it('keeps the new secret and the old one’s expiry across a restart', async () => {
    const stateFile = join(dir, 'state.json')
    const fresh = () =>
      generateDevApp({ redirectUri: 'https://app.example.com/cb', loginUri: 'https://app.example.com/login' })
    const app = fresh()
    const configured = { ...app, clientSecrets: app.clientSecrets.map((s) => ({ ...s })) }
    const first = await start({ notifications: target(), stateFile, app })
    await rotate(first, await grantless(first))
    await first.sim.flushNotifications()
    const newSecret = newSecretOf(received[0])['newClientSecret'] ?? ''
    await first.close()
    expect(readFileSync(stateFile, 'utf8')).toContain(newSecret)

    // A restart with the same configuration (only the original secret) gets the rotated secrets back
    const second = await start({ stateFile, app: configured })
    expect(configured.clientSecrets.map((s) => s.secret)).toEqual([app.clientSecrets[0]?.secret, newSecret])
    const scope = 'sellingpartnerapi::notifications'
    expect((await token(second, { grant_type: 'client_credentials', scope }, newSecret)).status).toBe(200)
    second.sim.advanceClock(7 * DAY + 60_000)
    const old = await token(
      second,
      { grant_type: 'client_credentials', scope },
      configured.clientSecrets[0]?.secret,
    )
    expect(old.status).toBe(401)
    expect((await token(second, { grant_type: 'client_credentials', scope }, newSecret)).status).toBe(200)
  })
})
