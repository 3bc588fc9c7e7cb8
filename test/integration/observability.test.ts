/**
 * What an operator sees, over real HTTP against the simulator: `/metrics` scraped and parsed (and protected in
 * production), `/readyz` ready and not ready, request ids echoed and carried onto every log line of the
 * request (the LWA client's included), and a canary sweep proving no secret reaches a log line.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { listen } from '../../src/cli/listen.ts'
import { Keyring } from '../../src/core/crypto/keyring.ts'
import { WebhookDeliveryWorker } from '../../src/core/events/delivery-worker.ts'
import { sealToken } from '../../src/core/tokens/sealed.ts'
import { createServerApp } from '../../src/server/app.ts'
import { createMetricsApp, PrometheusMetrics } from '../../src/server/metrics.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { connectSeller, randomSellingPartnerId } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const MINUTE = 60_000
const METRICS_KEY = randomBytes(32).toString('base64url')

/** Prometheus text format → `name{label="v",…}` (labels as written) → value. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line)
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`)
    samples.set(`${match[1]}${match[2] ?? ''}`, Number(match[3]))
  }
  return samples
}

async function scrape(stack: Stack, key: string | null = METRICS_KEY): Promise<Map<string, number>> {
  const response = await fetch(`${stack.serviceUrl}/metrics`, {
    headers: key === null ? {} : { authorization: `Bearer ${key}` },
  })
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toContain('text/plain')
  return parseMetrics(await response.text())
}

const accessToken = (stack: Stack, id: string, headers: Record<string, string> = {}) =>
  fetch(`${stack.serviceUrl}/v1/connections/${id}/access-token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.apiKey}`, ...headers },
  })

describe('metrics', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({ env: { SP_CONNECT_METRICS_KEY: METRICS_KEY } })
  })
  afterAll(async () => {
    await stack?.close()
  })

  it('exposes our metrics in Prometheus text format, with no id or tenant in any label', async () => {
    const { connectionId } = await connectSeller(stack, new BrowserClient(), { tenantId: 'tenant-metrics' })
    const text = await (
      await fetch(`${stack.serviceUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_KEY}` } })
    ).text()
    const samples = parseMetrics(text)
    for (const name of [
      'sp_connect_refresh_backlog',
      'sp_connect_refresh_lag_seconds',
      'sp_connect_webhook_outbox_pending',
      'sp_connect_webhook_outbox_oldest_age_seconds',
      'sp_connect_lwa_retry_budget_available',
    ])
      expect(samples.has(name), name).toBe(true)
    expect(samples.get('sp_connect_connections{status="active"}')).toBeGreaterThanOrEqual(1)
    expect(samples.get('sp_connect_lwa_breaker_state{state="closed"}')).toBe(1)
    expect(text).not.toContain(connectionId)
    expect(text).not.toContain('tenant-metrics')
  })

  it('counts one background refresh as exactly one, by trigger and outcome', async () => {
    const { BackgroundRefresher } = await import('../../src/core/tokens/refresher.ts')
    for (const c of await stack.runtime.store.listConnections({ limit: 1000 }))
      await stack.runtime.store.disconnectConnection(c.id, stack.clock.now())
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    expect((await accessToken(stack, connectionId)).status).toBe(200)
    const key = 'sp_connect_refreshes_total{trigger="background",outcome="ok"}'
    const before = (await scrape(stack)).get(key) ?? 0
    stack.clock.advance(50 * MINUTE) // inside margin + lookahead: due for the refresher
    const backlog = (await scrape(stack)).get('sp_connect_refresh_backlog')
    expect(backlog).toBe(1)
    const { store, tokens, events } = stack.runtime
    const round = await new BackgroundRefresher(
      { store, tokens, events, concurrency: 1, ratePerSecond: 1000 },
      { ...stack.runtime.deps, sleep: async () => {} },
    ).runOnce()
    expect(round.refreshed).toBe(1)
    const after = await scrape(stack)
    expect((after.get(key) ?? 0) - before).toBe(1)
    expect(after.get('sp_connect_refresh_backlog')).toBe(0)
  })

  it('counts decryption failures by reason when a stored token cannot be opened', async () => {
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    const row = await stack.runtime.store.getConnection(connectionId)
    // Same key id, other key material: the ciphertext fails authentication, as a tampered one would.
    const impostor = new Keyring([{ id: 'k1', key: randomBytes(32) }])
    await stack.runtime.store.replaceConnectionCiphertexts(connectionId, row?.version ?? 0, {
      refreshTokenCiphertext: sealToken(impostor, connectionId, 'refresh_token', 'Atzr|x'),
      accessTokenCiphertext: null,
    })
    const key = 'sp_connect_decryption_failures_total{reason="tampered"}'
    const before = (await scrape(stack)).get(key) ?? 0
    expect((await accessToken(stack, connectionId)).status).toBeGreaterThanOrEqual(500)
    expect(((await scrape(stack)).get(key) ?? 0) - before).toBe(1)
    await stack.runtime.store.disconnectConnection(connectionId, stack.clock.now())
  })

  it('includes the default process metrics when serve builds them', async () => {
    const text = await new PrometheusMetrics().registry.metrics()
    expect(parseMetrics(text).has('process_cpu_user_seconds_total')).toBe(true)
  })
})

describe('metrics protection and rate-limit counting', () => {
  let open: Stack
  let limited: Stack
  beforeAll(async () => {
    open = await startStack()
    limited = await startStack({
      env: {
        SP_CONNECT_METRICS_KEY: METRICS_KEY,
        SP_CONNECT_RATE_LIMIT_API_PER_SECOND: '0.001',
        SP_CONNECT_RATE_LIMIT_API_BURST: '1',
      },
    })
  })
  afterAll(async () => {
    await open?.close()
    await limited?.close()
  })

  it('answers 404 in production when no metrics key is configured', async () => {
    const response = await fetch(`${open.serviceUrl}/metrics`)
    expect(response.status).toBe(404)
    const withAnyKey = await fetch(`${open.serviceUrl}/metrics`, { headers: { authorization: 'Bearer x' } })
    expect(withAnyKey.status).toBe(404)
  })

  it('needs the metrics key when one is configured', async () => {
    expect((await fetch(`${limited.serviceUrl}/metrics`)).status).toBe(401)
    const wrong = await fetch(`${limited.serviceUrl}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_KEY}x` },
    })
    expect(wrong.status).toBe(401)
    // The API key is not the metrics key.
    const apiKey = await fetch(`${limited.serviceUrl}/metrics`, {
      headers: { authorization: `Bearer ${limited.apiKey}` },
    })
    expect(apiKey.status).toBe(401)
    await scrape(limited)
  })

  it('serves /metrics without a key on the separate metrics listener, and openly in dev', async () => {
    const separate = await listen(createMetricsApp(open.runtime).fetch, 0, '127.0.0.1')
    const devApp = createServerApp({ ...open.runtime, config: { ...open.runtime.config, mode: 'dev' } })
    const dev = await listen(devApp.fetch, 0, '127.0.0.1')
    try {
      const metrics = await fetch(`http://127.0.0.1:${separate.port}/metrics`)
      expect(metrics.status).toBe(200)
      expect(parseMetrics(await metrics.text()).has('sp_connect_refresh_backlog')).toBe(true)
      // Only /metrics there: not the API, not the console.
      expect((await fetch(`http://127.0.0.1:${separate.port}/v1/connections`)).status).toBe(404)
      expect((await fetch(`http://127.0.0.1:${dev.port}/metrics`)).status).toBe(200)
    } finally {
      await separate.close()
      await dev.close()
    }
  })

  it('refuses a metrics key shorter than 32 characters', async () => {
    await expect(startStack({ env: { SP_CONNECT_METRICS_KEY: 'short' } })).rejects.toThrow(
      /SP_CONNECT_METRICS_KEY/,
    )
  })

  it('counts a 429 from our API rate limit', async () => {
    const key = 'sp_connect_rate_limited_total{scope="api_key"}'
    const before = (await scrape(limited)).get(key) ?? 0
    const first = await limited.api('GET', '/v1/connections')
    const second = await limited.api('GET', '/v1/connections')
    expect([first.status, second.status]).toEqual([200, 429])
    expect(((await scrape(limited)).get(key) ?? 0) - before).toBe(1)
  })
})

describe('webhook outbox metrics', () => {
  let stack: Stack
  let receiver: Server
  beforeAll(async () => {
    receiver = createServer((req, res) => {
      req.resume()
      req.on('end', () => res.writeHead(204).end())
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    const { port } = receiver.address() as AddressInfo
    stack = await startStack({
      env: {
        SP_CONNECT_METRICS_KEY: METRICS_KEY,
        SP_CONNECT_WEBHOOK_URLS: `http://127.0.0.1:${port}/hooks`,
        SP_CONNECT_WEBHOOK_SECRET: randomBytes(32).toString('base64'),
      },
    })
  })
  afterAll(async () => {
    await stack?.close()
    await new Promise((resolve) => receiver?.close(resolve))
  })

  it('reports the outbox depth and oldest age at scrape time, and counts deliveries by outcome', async () => {
    const pending = await stack.runtime.store.pendingDeliveryStats()
    await stack.runtime.events.record('connection.reauthorization_due', null, { days_left: 30 })
    stack.clock.advance(90_000)
    const before = await scrape(stack)
    expect(before.get('sp_connect_webhook_outbox_pending')).toBe(pending.pending + 1)
    expect(before.get('sp_connect_webhook_outbox_oldest_age_seconds')).toBeGreaterThanOrEqual(90)
    const worker = new WebhookDeliveryWorker(
      { store: stack.runtime.store, secret: stack.runtime.config.webhooks.secret ?? '' },
      { ...stack.runtime.deps, sleep: async () => {} },
    )
    const round = await worker.runOnce()
    expect(round.delivered).toBe(pending.pending + 1)
    const after = await scrape(stack)
    expect(after.get('sp_connect_webhook_outbox_pending')).toBe(0)
    expect(after.get('sp_connect_webhook_outbox_oldest_age_seconds')).toBe(0)
    const delivered = 'sp_connect_webhook_deliveries_total{outcome="delivered"}'
    expect((after.get(delivered) ?? 0) - (before.get(delivered) ?? 0)).toBe(round.delivered)
  })
})

describe('readiness', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack()
  })
  afterAll(async () => {
    await stack?.close()
  })

  const readyz = async (options: { advance?: boolean } = {}) => {
    // The key scan is cached for a minute: each check here sees the rows as they are now.
    if (options.advance !== false) stack.clock.advance(2 * MINUTE)
    const response = await fetch(`${stack.serviceUrl}/readyz`)
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }

  it('is ready with the database reachable, migrations applied and a sample row opened; liveness stays', async () => {
    await connectSeller(stack, new BrowserClient())
    const { status, body } = await readyz()
    expect(status).toBe(200)
    expect(body).toMatchObject({
      status: 'ready',
      failed: [],
      checks: {
        database: { ok: true },
        migrations: { ok: true },
        keyring: { ok: true, sampled: true, storedKeyIds: ['k1'] },
        lwa_breaker: { ok: true, state: 'closed' },
      },
    })
    expect((await fetch(`${stack.serviceUrl}/healthz`)).status).toBe(200)
  })

  it('stays ready with the LWA breaker open, and says so', async () => {
    const breaker = stack.runtime.tokens.breaker
    breaker.recordFailure(true)
    expect(breaker.state).toBe('open')
    // Without moving the clock, or the breaker would be half-open by then.
    const { status, body } = await readyz({ advance: false })
    expect(status).toBe(200)
    expect(body['checks']).toMatchObject({ lwa_breaker: { ok: true, state: 'open' } })
    breaker.recordSuccess()
  })

  it('is not ready (503) with a migration pending', async () => {
    const db = new DatabaseSync(stack.dbPath)
    const last = db
      .prepare('select name, applied_at from sp_connect_migrations order by name desc limit 1')
      .get() as {
      name: string
      applied_at: number
    }
    db.prepare('delete from sp_connect_migrations where name = ?').run(last.name)
    try {
      const { status, body } = await readyz()
      expect(status).toBe(503)
      expect(body).toMatchObject({
        status: 'not_ready',
        failed: ['migrations'],
        checks: { migrations: { ok: false, pending: [last.name] } },
      })
    } finally {
      db.prepare('insert into sp_connect_migrations (name, applied_at) values (?, ?)').run(
        last.name,
        last.applied_at,
      )
      db.close()
    }
    expect((await readyz()).status).toBe(200)
  })

  it('is not ready when a stored row is under a key the keyring lacks, naming the key id', async () => {
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    const row = await stack.runtime.store.getConnection(connectionId)
    const other = new Keyring([{ id: 'k9', key: randomBytes(32) }])
    await stack.runtime.store.replaceConnectionCiphertexts(connectionId, row?.version ?? 0, {
      refreshTokenCiphertext: sealToken(other, connectionId, 'refresh_token', 'Atzr|x'),
      accessTokenCiphertext: null,
    })
    const { status, body } = await readyz()
    expect(status).toBe(503)
    expect(body).toMatchObject({
      failed: ['keyring'],
      checks: { keyring: { ok: false, missingKeyIds: ['k9'], keyIds: ['k1'] } },
    })
    expect(JSON.stringify(body)).not.toContain(connectionId)
  })
})

describe('request ids and redaction', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack({ env: { SP_CONNECT_LOG_LEVEL: 'debug' } })
  })
  afterAll(async () => {
    await stack?.close()
  })

  const linesWith = (requestId: string) =>
    stack.logger.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['requestId'] === requestId)

  it('echoes a well-formed x-request-id and puts it on the LWA client’s lines caused by the request', async () => {
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    stack.clock.advance(56 * MINUTE) // inside the refresh margin: this request calls LWA
    const requestId = 'op-42.check_A'
    const response = await accessToken(stack, connectionId, { 'x-request-id': requestId })
    expect(response.status).toBe(200)
    expect(response.headers.get('x-request-id')).toBe(requestId)
    const lines = linesWith(requestId)
    expect(lines.map((l) => l['msg'])).toEqual(
      expect.arrayContaining(['LWA token request succeeded', 'request']),
    )
    // Amazon's own request id, if any, is kept beside ours.
    expect(lines.every((l) => l['requestId'] === requestId)).toBe(true)
  })

  it('replaces a malformed or oversized x-request-id with a generated one', async () => {
    for (const bad of ['has space', 'x'.repeat(129), 'semi;colon', 'a/b', '"quoted"']) {
      const response = await fetch(`${stack.serviceUrl}/healthz`, { headers: { 'x-request-id': bad } })
      const echoed = response.headers.get('x-request-id') ?? ''
      expect(echoed).not.toBe(bad)
      expect(echoed).toMatch(/^[0-9a-f-]{36}$/)
      expect(linesWith(echoed).length).toBeGreaterThan(0)
    }
    const none = await fetch(`${stack.serviceUrl}/healthz`)
    expect(none.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('logs an error code as it is (not redacted), with the request id', async () => {
    const response = await fetch(`${stack.serviceUrl}/v1/connections/con_nope/access-token`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.apiKey}`, 'x-request-id': 'err-1' },
    })
    expect(response.status).toBe(404)
    const failed = linesWith('err-1').find((l) => l['msg'] === 'request failed')
    expect(failed?.['code']).toBe('connection_not_found')
  })

  it('logs a rejected oversized path cut to its first 200 characters, with its length', async () => {
    const path = `/${'p'.repeat(300)}CANARYPATHTAIL${'q'.repeat(4000)}`
    const response = await fetch(`${stack.serviceUrl}${path}`, { headers: { 'x-request-id': 'long-1' } })
    expect(response.status).toBe(400)
    const failed = linesWith('long-1').find((l) => l['msg'] === 'request failed')
    expect(failed).toMatchObject({ path: path.slice(0, 200), pathLength: path.length })
    expect(stack.logger.text()).not.toContain('CANARYPATHTAIL')
  })

  it('canary sweep: no token, code, state, cookie or credential from any route family reaches a log line', async () => {
    const canary = (what: string) => `CANARY${what}${randomBytes(8).toString('hex')}`
    const canaries = {
      code: canary('code'),
      state: canary('state'),
      amazonState: canary('amzstate'),
      cookie: canary('cookie'),
      bearer: canary('bearer'),
      password: canary('password'),
      bodyToken: canary('refresh'),
      header: canary('header'),
    }
    const from = stack.logger.lines.length
    const cookie = `__Host-sp_connect_binding=${canaries.cookie}; sp_connect_console=${canaries.cookie}`
    const common = { cookie, 'x-api-key': canaries.header }
    const send = (path: string, init: RequestInit = {}) =>
      fetch(`${stack.serviceUrl}${path}`, {
        redirect: 'manual',
        ...init,
        headers: { ...common, ...(init.headers as Record<string, string>) },
      })

    // A full website flow and a token refresh: the real code, state and tokens from the simulator.
    const { connectionId, callbackUrl } = await connectSeller(stack, new BrowserClient())
    stack.clock.advance(56 * MINUTE)
    const token = (await (await accessToken(stack, connectionId)).json()) as { access_token: string }
    const realCode = new URL(callbackUrl).searchParams.get('spapi_oauth_code') ?? ''
    const realState = new URL(callbackUrl).searchParams.get('state') ?? ''
    // Callback with forged values.
    await send(
      `/callback?state=${canaries.state}&spapi_oauth_code=${canaries.code}&selling_partner_id=${randomSellingPartnerId()}`,
    )
    // Login URI.
    await send(
      `/login?amazon_callback_uri=${encodeURIComponent(`${stack.simulatorUrl}/x`)}&amazon_state=${canaries.amazonState}&selling_partner_id=${randomSellingPartnerId()}`,
    )
    // API: a bad bearer, a body with a token, a query credential.
    await send('/v1/connections', { headers: { authorization: `Bearer ${canaries.bearer}` } })
    await send('/v1/connections', {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: canaries.bodyToken, code: canaries.code }),
    })
    await send(`/v1/connections?api_key=${canaries.bearer}&access_token=${canaries.bodyToken}`)
    // Console: sign-in with a password, pages with a forged session cookie.
    await send('/console/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: stack.serviceUrl },
      body: new URLSearchParams({
        email: 'ops@example.com',
        password: canaries.password,
        csrf: canaries.state,
      }),
    })
    await send('/')
    await send(`/connections/${connectionId}`)
    // Errors: unknown page, oversized URL with a secret in its query, metrics without a key.
    await send(`/nowhere?state=${canaries.state}`)
    await send(`/callback?code=${canaries.code}&pad=${'z'.repeat(5000)}`)
    await send('/metrics', { headers: { authorization: `Bearer ${canaries.bearer}` } })

    const lines = stack.logger.lines.slice(from)
    expect(lines.length).toBeGreaterThan(10)
    const text = lines.join('\n')
    for (const value of [...Object.values(canaries), token.access_token, realCode, realState, stack.apiKey]) {
      expect(value.length).toBeGreaterThan(8)
      expect(text).not.toContain(value)
    }
    // Every line logged during these requests carries a request id.
    for (const line of lines) expect(JSON.parse(line)['requestId'], line).toEqual(expect.any(String))
  })
})
