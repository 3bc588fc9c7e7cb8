/**
 * LWA client-secret rotation end to end, over real HTTP: `sp-connect secrets rotate` (a child process) calls
 * the simulated Application Management API while connections refresh continuously; the simulator delivers
 * APPLICATION_OAUTH_CLIENT_NEW_SECRET to `POST /v1/notifications`; the service switches to the new secret; the
 * simulator clock passes the old secret's expiry; and not one refresh fails. Also: a dead configured secret
 * with no rotation (an app-wide alarm, no seller marked), a second instance that learns the new secret from
 * the store after one refusal, the expiry warning, bad notification bodies, and the CLI's error codes.
 */
import { existsSync, readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { defaultDeps } from '../../src/core/deps.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'
import { openRuntime } from '../../src/runtime.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { runCli as runCliHelper } from '../helpers/cli.ts'
import { connectSeller } from '../helpers/flows.ts'
import { type Stack, type StackOptions, startStack } from '../helpers/stack.ts'

const DAY = 24 * 3600_000
const HOUR = 3600_000

/** Runs the CLI configured by `stack`'s environment on top of the test runner's, and waits for it to exit. */
function runCli(stack: Stack, args: readonly string[]) {
  return runCliHelper(args, { env: stack.env, inheritEnv: true })
}

const stacks: Stack[] = []
afterEach(async () => {
  for (const stack of stacks.splice(0)) await stack.close()
})

async function stackWith(options: StackOptions = {}): Promise<Stack> {
  const stack = await startStack(options)
  stacks.push(stack)
  return stack
}

/** Waits (polling, without asserting on time) until `check` holds; fails after a generous bound. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`gave up waiting for ${what}`)
}

/** Forced refreshes of every connection in a loop, counting successes and keeping every failure. */
function refreshLoop(stack: Stack, connectionIds: readonly string[]) {
  const state = { running: true, ok: new Map(connectionIds.map((id) => [id, 0])), failures: [] as unknown[] }
  const loops = connectionIds.map(async (id) => {
    while (state.running) {
      try {
        await stack.runtime.tokens.getAccessToken(id, { forceRefresh: true })
        state.ok.set(id, (state.ok.get(id) ?? 0) + 1)
      } catch (error) {
        state.failures.push(error)
      }
    }
  })
  return {
    state,
    /** Resolves once every connection has refreshed `n` more times (or something failed). */
    async more(n: number, what: string) {
      const targets = new Map([...state.ok].map(([id, count]) => [id, count + n]))
      await until(
        () =>
          state.failures.length > 0 ||
          [...targets].every(([id, target]) => (state.ok.get(id) ?? 0) >= target),
        what,
      )
      // Name a failure at once (code and detail) rather than through a later, puzzling assertion
      expect(state.failures.map(describeFailure), what).toEqual([])
    },
    async stop() {
      state.running = false
      await Promise.all(loops)
    },
  }
}

function describeFailure(error: unknown): string {
  return isSpConnectError(error) ? `${error.code}: ${error.detail ?? ''}` : String(error)
}

function newSecretNotification(stack: Stack, secret: string, extra: { notificationId?: string } = {}) {
  const now = stack.clock.now()
  return {
    notificationVersion: '1.0',
    notificationType: 'APPLICATION_OAUTH_CLIENT_NEW_SECRET',
    payloadVersion: '2023-11-30',
    eventTime: new Date(now).toISOString(),
    payload: {
      applicationOAuthClientNewSecret: {
        clientId: stack.app.clientId,
        newClientSecret: secret,
        newClientSecretExpiryTime: new Date(now + 180 * DAY).toISOString(),
        oldClientSecretExpiryTime: new Date(now + 7 * DAY).toISOString(),
      },
    },
    notificationMetadata: {
      applicationId: stack.app.appId,
      subscriptionId: '8594dc0e-78dc-4b05-83a4-a6a1b2c3d4e5',
      publishTime: new Date(now).toISOString(),
      notificationId: extra.notificationId ?? `n-${now}-${Math.random()}`,
    },
  }
}

async function postNotification(stack: Stack, body: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${stack.serviceUrl}/v1/notifications`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json', ...headers },
    body,
  })
  const text = await response.text()
  return { status: response.status, json: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> }
}

describe('client-secret rotation without downtime', () => {
  it('rotates while connections refresh continuously, with zero failed refreshes', async () => {
    const stack = await stackWith({ notifications: true })
    const { store } = stack.runtime
    const clientId = stack.app.clientId
    const connections: string[] = []
    for (let i = 0; i < 3; i++)
      connections.push((await connectSeller(stack, new BrowserClient())).connectionId)
    const oldSecret = stack.app.clientSecrets[0]?.secret ?? ''
    const errorsBefore = stack.simulator.counters().byOutcome.error

    const loop = refreshLoop(stack, connections)
    try {
      await loop.more(3, 'refreshes before the rotation')

      // The operator rotates from another process while the service keeps refreshing
      const rotated = await runCli(stack, ['secrets', 'rotate'])
      expect(rotated.stderr).toBe('')
      expect(rotated.code).toBe(0)
      expect(rotated.stdout).toContain('APPLICATION_OAUTH_CLIENT_NEW_SECRET')
      await stack.simulator.flushNotifications()
      expect(stack.simulator.notificationLog()).toMatchObject([
        { notificationType: 'APPLICATION_OAUTH_CLIENT_NEW_SECRET', status: 'delivered', lastStatus: 202 },
      ])
      const newSecret = stack.app.clientSecrets[1]?.secret ?? ''
      expect(newSecret).toMatch(/^amzn1\.oa2-cs\.v1\./)

      // Stored encrypted, the old secret given Amazon's expiry, an event without the secret
      const rows = await store.listAppSecrets(clientId)
      expect(rows).toHaveLength(1)
      expect(rows[0]).toMatchObject({ clientId, state: 'active' })
      expect(rows[0]?.secretCiphertext).not.toContain(newSecret)
      const [rotatedEvent] = await store.listEvents({ type: 'app.client_secret_rotated' })
      expect(rotatedEvent?.data).toMatchObject({ clientId, secretId: rows[0]?.id })
      expect(JSON.stringify(rotatedEvent)).not.toContain(newSecret)
      const candidates = await stack.runtime.secrets.candidates()
      expect(candidates.map((c) => c.clientSecret)).toEqual([newSecret, oldSecret])

      // The service switched: once refreshes settle on the new secret, the old one is no longer used
      await loop.more(3, 'refreshes after the notification')
      const switched = stack.simulator.clientSecretInfo(stack.app.appId)
      await loop.more(4, 'more refreshes on the new secret')
      const later = stack.simulator.clientSecretInfo(stack.app.appId)
      expect(later[0]?.authenticated).toBe(switched[0]?.authenticated)
      expect(later[1]?.authenticated ?? 0).toBeGreaterThan(switched[1]?.authenticated ?? 0)

      // `secrets status` from another process: ids, states, order; never a value
      const status = await runCli(stack, ['secrets', 'status', '--json'])
      expect(status.code).toBe(0)
      const json = JSON.parse(status.stdout) as {
        client_id: string
        secrets: {
          id: string
          source: string
          state: string
          rank: number | null
          expires_at: string | null
        }[]
        last_rotation_at: string | null
      }
      expect(json.client_id).toBe(clientId)
      expect(json.secrets).toMatchObject([
        { id: rows[0]?.id, source: 'stored', state: 'active', rank: 1 },
        { id: 'configured', source: 'configured', state: 'active', rank: 2, expires_at: null },
      ])
      expect(json.last_rotation_at).not.toBeNull()
      const table = await runCli(stack, ['secrets', 'status'])
      expect(table.stdout).toContain(rows[0]?.id ?? '-')
      for (const output of [status.stdout, table.stdout, rotated.stdout]) {
        expect(output).not.toContain(newSecret)
        expect(output).not.toContain(oldSecret)
      }

      // The simulator clock passes the old secret's expiry while the loop runs
      const beforeExpiry = stack.simulator.clientSecretInfo(stack.app.appId)
      stack.clock.advance(8 * DAY)
      expect(stack.simulator.clientSecretInfo(stack.app.appId)[0]?.live).toBe(false)
      await loop.more(5, 'refreshes after the old secret expired')
      const afterExpiry = stack.simulator.clientSecretInfo(stack.app.appId)
      expect(afterExpiry[0]).toMatchObject({
        authenticated: beforeExpiry[0]?.authenticated,
        refusedAfterExpiry: 0,
      })
      // At least one refresh per connection went to LWA after the expiry, all with the new secret
      expect(afterExpiry[1]?.authenticated ?? 0).toBeGreaterThanOrEqual(
        (beforeExpiry[1]?.authenticated ?? 0) + 3,
      )
    } finally {
      await loop.stop()
    }

    expect(loop.state.failures.map(describeFailure)).toEqual([])
    expect(stack.simulator.counters().byOutcome.error).toBe(errorsBefore)
    for (const id of connections) {
      expect(await store.getConnection(id)).toMatchObject({
        status: 'active',
        failureCount: 0,
        lastRefreshError: null,
      })
    }
    expect(await store.listEvents({ type: 'connection.refresh_failed' })).toEqual([])
    expect(await store.listEvents({ type: 'app.client_secret_rejected' })).toEqual([])

    // No secret in any log line or in the database file in plaintext
    const secrets = stack.app.clientSecrets.map((s) => s.secret)
    for (const secret of secrets) expect(stack.logger.text()).not.toContain(secret)
    for (const file of [stack.dbPath, `${stack.dbPath}-wal`]) {
      if (!existsSync(file)) continue
      const bytes = readFileSync(file).toString('latin1')
      for (const secret of secrets) expect(bytes).not.toContain(secret)
    }
  })

  it('a second instance learns the new secret from the store after a single refusal', async () => {
    const stack = await stackWith({ notifications: true })
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    const other = await openRuntime(
      stack.runtime.config,
      defaultDeps({ logger: stack.logger, now: stack.clock.now }),
    )
    try {
      // The other instance has the configured secret cached…
      await other.tokens.getAccessToken(connectionId, { forceRefresh: true })
      // …when this instance rotates and receives the new secret
      const rotated = await runCli(stack, ['secrets', 'rotate'])
      expect(rotated.code).toBe(0)
      await stack.simulator.flushNotifications()
      // The old secret stops working at once (well before the other instance's cache would expire)
      const old = stack.app.clientSecrets[0]
      if (old) old.expiresAt = stack.clock.now()
      stack.clock.advance(1000)

      const errorsBefore = stack.simulator.counters().byOutcome.error
      await other.tokens.getAccessToken(connectionId, { forceRefresh: true })
      const info = stack.simulator.clientSecretInfo(stack.app.appId)
      // One refused attempt with the old secret, then the new one from the store, in the same refresh
      expect(info[0]?.refusedAfterExpiry).toBe(1)
      expect(info[1]?.authenticated).toBeGreaterThanOrEqual(1)
      expect(stack.simulator.counters().byOutcome.error - errorsBefore).toBe(1)
      expect(await stack.runtime.store.getConnection(connectionId)).toMatchObject({
        status: 'active',
        failureCount: 0,
      })
      // Refused once, then held back: the next refresh goes straight to the new secret
      await other.tokens.getAccessToken(connectionId, { forceRefresh: true })
      expect(stack.simulator.clientSecretInfo(stack.app.appId)[0]?.refusedAfterExpiry).toBe(1)
    } finally {
      await other.close()
    }
  })

  it('a dead client secret with no rotation is an app-wide alarm, never a seller revocation', async () => {
    const stack = await stackWith()
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    // Amazon expires the configured secret (the warning goes nowhere: no destination is set up)
    stack.simulator.emitSecretExpiry(stack.app.appId, {
      expiresAt: stack.clock.now() + 60_000,
      enforce: true,
    })
    stack.clock.advance(2 * HOUR)

    let failure: unknown
    try {
      await stack.runtime.tokens.getAccessToken(connectionId, { forceRefresh: true })
    } catch (error) {
      failure = error
    }
    expect(isSpConnectError(failure, 'lwa_invalid_client')).toBe(true)
    const row = await stack.runtime.store.getConnection(connectionId)
    expect(row?.status).toBe('active')
    expect(row?.lastRefreshError).toBe('lwa_invalid_client')
    expect(await stack.runtime.store.listEvents({ type: 'connection.needs_reauthorization' })).toEqual([])
    const alarms = await stack.runtime.store.listEvents({ type: 'app.client_secret_rejected' })
    expect(alarms.length).toBeGreaterThanOrEqual(1)
    expect(alarms[0]?.connectionId).toBeNull()
    expect(JSON.stringify(alarms)).not.toContain(stack.app.clientSecrets[0]?.secret ?? '-')

    const answer = await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    expect(answer.status).toBeGreaterThanOrEqual(500)
    expect((await stack.runtime.store.getConnection(connectionId))?.status).toBe('active')
  })

  it('records APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY as an event, once per notification', async () => {
    const stack = await stackWith({ notifications: true })
    const expiresAt = stack.clock.now() + 30 * DAY
    stack.simulator.emitSecretExpiry(stack.app.appId, { expiresAt, reason: 'PERIODIC_ROTATION' })
    await stack.simulator.flushNotifications()
    expect(stack.simulator.notificationLog()).toMatchObject([{ status: 'delivered', lastStatus: 202 }])
    const events = await stack.runtime.store.listEvents({ type: 'app.client_secret_expiring' })
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({
      connectionId: null,
      data: {
        clientId: stack.app.clientId,
        expiresAt: new Date(expiresAt).toISOString(),
        reason: 'PERIODIC_ROTATION',
      },
    })
    expect(stack.logger.text()).toContain('app.client_secret_expiring')

    // SQS delivers at least once: the same message again changes nothing
    const body = {
      notificationVersion: '1.0',
      notificationType: 'APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY',
      payloadVersion: '2023-11-30',
      eventTime: new Date(stack.clock.now()).toISOString(),
      payload: {
        applicationOAuthClientSecretExpiry: {
          clientId: stack.app.clientId,
          clientSecretExpiryTime: new Date(expiresAt).toISOString(),
          clientSecretExpiryReason: 'PERIODIC_ROTATION',
        },
      },
      notificationMetadata: { notificationId: String(events[0]?.data['notificationId']) },
    }
    const again = await postNotification(stack, JSON.stringify(body))
    expect(again).toEqual({
      status: 202,
      json: { notification_type: 'APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY', result: 'duplicate' },
    })
    expect(await stack.runtime.store.listEvents({ type: 'app.client_secret_expiring' })).toHaveLength(1)

    const status = await runCli(stack, ['secrets', 'status', '--json'])
    expect(JSON.parse(status.stdout)).toMatchObject({
      last_expiry_warning: { expires_at: new Date(expiresAt).toISOString(), reason: 'PERIODIC_ROTATION' },
    })
  })

  it('stores a new secret once however often it is delivered', async () => {
    const stack = await stackWith()
    const secret = 'amzn1.oa2-cs.v1.0123456789abcdef0123456789abcdef'
    const body = JSON.stringify(newSecretNotification(stack, secret, { notificationId: 'dup-1' }))
    const answers = await Promise.all([postNotification(stack, body), postNotification(stack, body)])
    expect(answers.map((a) => a.status)).toEqual([202, 202])
    expect(answers.map((a) => a.json['result']).sort()).toEqual(['duplicate', 'stored'])
    // The same secret under another notification id (a re-sent message) is still a duplicate
    const resent = await postNotification(stack, JSON.stringify(newSecretNotification(stack, secret)))
    expect(resent.json).toMatchObject({ result: 'duplicate', secret_id: answers[0]?.json['secret_id'] })
    expect(await stack.runtime.store.listAppSecrets(stack.app.clientId)).toHaveLength(1)
    expect(await stack.runtime.store.listEvents({ type: 'app.client_secret_rotated' })).toHaveLength(1)
  })

  it('refuses bad notification bodies and stores nothing', async () => {
    const stack = await stackWith()
    const secret = 'amzn1.oa2-cs.v1.feedfacefeedfacefeedfacefeedface'
    const valid = newSecretNotification(stack, secret)
    const inner = valid.payload.applicationOAuthClientNewSecret
    const bad: [string, string][] = [
      ['not JSON', '{"notificationType":'],
      ['empty', ''],
      ['an array', JSON.stringify([valid])],
      ['no type', JSON.stringify({ ...valid, notificationType: undefined })],
      [
        'no secret',
        JSON.stringify({
          ...valid,
          payload: { applicationOAuthClientNewSecret: { ...inner, newClientSecret: undefined } },
        }),
      ],
      [
        'a bad time',
        JSON.stringify({
          ...valid,
          payload: { applicationOAuthClientNewSecret: { ...inner, oldClientSecretExpiryTime: 'soon' } },
        }),
      ],
      [
        'the SQS envelope instead of its body',
        JSON.stringify({ MessageId: 'm-1', Body: JSON.stringify(valid) }),
      ],
    ]
    for (const [name, body] of bad) {
      const answer = await postNotification(stack, body)
      expect(answer.status, name).toBe(400)
      expect((answer.json['error'] as { code: string }).code, name).toBe('invalid_request')
      expect(JSON.stringify(answer.json), name).not.toContain(secret)
    }

    const otherClient = {
      ...valid,
      payload: {
        applicationOAuthClientNewSecret: { ...inner, clientId: 'amzn1.application-oa2-client.other' },
      },
    }
    const mismatch = await postNotification(stack, JSON.stringify(otherClient))
    expect(mismatch.status).toBe(422)
    expect((mismatch.json['error'] as { code: string }).code).toBe('notification_client_mismatch')

    const tooLarge = await postNotification(
      stack,
      JSON.stringify({ ...valid, padding: 'x'.repeat(70 * 1024) }),
    )
    expect(tooLarge.status).toBe(413)
    expect((tooLarge.json['error'] as { code: string }).code).toBe('payload_too_large')

    const noKey = await fetch(`${stack.serviceUrl}/v1/notifications`, {
      method: 'POST',
      body: JSON.stringify(valid),
    })
    expect(noKey.status).toBe(401)
    const wrongKey = await postNotification(stack, JSON.stringify(valid), {
      authorization: 'Bearer not-the-key',
    })
    expect(wrongKey.status).toBe(401)

    expect(await stack.runtime.store.listAppSecrets(stack.app.clientId)).toEqual([])
    expect(await stack.runtime.store.listEvents({ type: 'app.client_secret_rotated' })).toEqual([])
    expect(stack.logger.text()).not.toContain(secret)

    // Well-formed notifications of other types are acknowledged and dropped
    const other = await postNotification(
      stack,
      JSON.stringify({
        ...valid,
        notificationType: 'ACCOUNT_STATUS_CHANGED',
        payload: { accountStatus: 'NORMAL' },
      }),
      { 'content-type': 'text/plain' },
    )
    expect(other).toEqual({
      status: 202,
      json: { notification_type: 'ACCOUNT_STATUS_CHANGED', result: 'ignored' },
    })
    expect(await stack.runtime.store.listAppSecrets(stack.app.clientId)).toEqual([])
  })

  it('`secrets rotate` reports Amazon refusing: not enrolled, and throttled', async () => {
    const unenrolled = await stackWith()
    const refused = await runCli(unenrolled, ['secrets', 'rotate'])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain('[secret_rotation_not_enrolled]')
    expect(unenrolled.app.clientSecrets).toHaveLength(1)

    const stack = await stackWith({ notifications: true })
    expect((await runCli(stack, ['secrets', 'rotate'])).code).toBe(0)
    const again = await runCli(stack, ['secrets', 'rotate'])
    expect(again.code).not.toBe(0)
    expect(again.stderr).toContain('[secret_rotation_throttled]')
    for (const s of stack.app.clientSecrets) expect(`${again.stdout}${again.stderr}`).not.toContain(s.secret)
  })
})
