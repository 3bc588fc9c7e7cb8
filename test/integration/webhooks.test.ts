/**
 * Webhooks end to end: a real deployment (`startStack`) records lifecycle events into the outbox, and
 * `WebhookDeliveryWorker` delivers them over real HTTP to an independent receiver written here, which checks
 * every signature with its own node:crypto code (not sp-connect's `verifyWebhook`), deduplicates on the event
 * id, and can be told to fail, throttle, redirect or hang. The worker gets the stack's controllable clock and
 * a sleep that does not wait, so backoff is checked by moving the clock, never by waiting for it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Deps } from '../../src/core/deps.ts'
import {
  backoffDelayMs,
  WEBHOOK_USER_AGENT,
  WebhookDeliveryWorker,
  type WebhookDeliveryWorkerOptions,
} from '../../src/core/events/delivery-worker.ts'
import type { DeliveryRecord, Store } from '../../src/store/store.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { runCli as runCliHelper } from '../helpers/cli.ts'
import { connectSeller } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const SECRET = `whsec-${randomBytes(24).toString('hex')}`
/** Backoff of these tests: 30 s before the 2nd attempt, 60 s before the 3rd… (random() is 0.5). */
const BASE_DELAY_MS = 60_000

// ---------------------------------------------------------------------------------------------------------
// The independent receiver

interface ReceivedRequest {
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: string
  readonly verified: boolean
  readonly timestamp: number
  readonly eventId: string
  readonly deliveryId: string
}

type Reply = { readonly status: number; readonly headers?: Record<string, string> } | 'hang'

/** The receiver's own check: `t=<seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, 5 minutes' tolerance. */
function receiverVerifies(secret: string, header: string | undefined, body: string, nowSeconds: number) {
  const parts = (header ?? '').split(',').map((part) => part.split('='))
  const times = parts.filter(([k]) => k === 't').map(([, v]) => v ?? '')
  const t = times.length === 1 && /^\d+$/.test(times[0] ?? '') ? Number(times[0]) : Number.NaN
  if (!(Math.abs(nowSeconds - t) <= 300)) return { ok: false, t }
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest()
  const ok = parts
    .filter(([k, v]) => k === 'v1' && /^[0-9a-f]{64}$/.test(v ?? ''))
    .some(([, v]) => timingSafeEqual(expected, Buffer.from(v ?? '', 'hex')))
  return { ok, t }
}

class Receiver {
  readonly requests: ReceivedRequest[] = []
  /** Events processed, once each, by event id (the receiver's idempotency). */
  readonly processed = new Map<string, Record<string, unknown>>()
  /** How often each event id arrived (verified). */
  readonly seen = new Map<string, number>()
  /** The sender's clock, for the timestamp tolerance (the tests move it). */
  now: () => number = Date.now
  url = ''
  #script: Reply[] = []
  #always: Reply | undefined
  readonly secret: string
  readonly #server: Server

  constructor(secret: string) {
    this.secret = secret
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () =>
        this.#handle(req.url ?? '', req.headers, Buffer.concat(chunks).toString('utf8'), res),
      )
    })
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hooks/sp-connect`
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  /** The next requests get these replies, in order; then 204 again (or `always`). */
  script(...replies: Reply[]): void {
    this.#script.push(...replies)
  }

  failNext(n: number, status = 500): void {
    this.script(...Array.from({ length: n }, () => ({ status })))
  }

  failAlways(status: number | undefined): void {
    this.#always = status === undefined ? undefined : { status }
  }

  requestsFor(eventId: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.eventId === eventId)
  }

  #handle(path: string, headers: IncomingHttpHeaders, body: string, res: ServerResponse): void {
    const { ok, t } = receiverVerifies(
      this.secret,
      header(headers, 'sp-connect-signature'),
      body,
      Math.floor(this.now() / 1000),
    )
    const eventId = header(headers, 'sp-connect-event-id') ?? ''
    this.requests.push({
      path,
      headers,
      body,
      verified: ok,
      timestamp: t,
      eventId,
      deliveryId: header(headers, 'sp-connect-delivery-id') ?? '',
    })
    if (!ok) {
      res.writeHead(400).end()
      return
    }
    // Process first, answer after: a failure answer after processing is exactly how duplicates happen.
    this.seen.set(eventId, (this.seen.get(eventId) ?? 0) + 1)
    if (!this.processed.has(eventId)) this.processed.set(eventId, JSON.parse(body) as Record<string, unknown>)
    const reply = this.#script.shift() ?? this.#always ?? { status: 204 }
    if (reply === 'hang') return // never answered; closeAllConnections() ends it
    res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers }).end('receiver says hello')
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

// ---------------------------------------------------------------------------------------------------------
// The CLI as a child process

const cliOutputs: string[] = []

function runCli(args: readonly string[], env: Record<string, string>, input = '') {
  return runCliHelper(args, { env, input, onOutput: (stdout, stderr) => cliOutputs.push(stdout, stderr) })
}

// ---------------------------------------------------------------------------------------------------------

describe('webhooks: signed, at-least-once delivery through the outbox', () => {
  const receiver = new Receiver(SECRET)
  let stack: Stack
  let connectionId: string

  /** A worker on the stack's store, clock and logger; its sleep returns at once and its jitter is 0.5. */
  function worker(options: Partial<WebhookDeliveryWorkerOptions> = {}, deps: Partial<Deps> = {}) {
    return new WebhookDeliveryWorker(
      {
        store: stack.runtime.store,
        secret: SECRET,
        baseDelayMs: BASE_DELAY_MS,
        maxDelayMs: 3_600_000,
        ...options,
      },
      { ...stack.runtime.deps, sleep: async () => {}, random: () => 0.5, ...deps },
    )
  }

  async function deliveryOf(eventId: string): Promise<DeliveryRecord> {
    const deliveries = await stack.runtime.store.listDeliveries({ eventId })
    expect(deliveries).toHaveLength(1)
    const [delivery] = deliveries
    if (!delivery) throw new Error('no delivery')
    return delivery
  }

  const record = (data: Record<string, unknown> = {}) =>
    stack.runtime.events.record('connection.reauthorization_due', connectionId, { days_left: 30, ...data })

  beforeAll(async () => {
    await receiver.start()
    stack = await startStack({
      env: { SP_CONNECT_WEBHOOK_URLS: receiver.url, SP_CONNECT_WEBHOOK_SECRET: SECRET },
    })
    receiver.now = stack.clock.now
  })
  afterAll(async () => {
    await stack?.close()
    await receiver.close()
  })

  it('backs off with full jitter over a capped exponential, and refuses settings that make no sense', () => {
    const policy = { baseDelayMs: 1000, maxDelayMs: 10_000 }
    expect([1, 2, 3, 4, 5, 30].map((attempt) => backoffDelayMs(attempt, policy, () => 0.5))).toEqual([
      500, 1000, 2000, 4000, 5000, 5000,
    ])
    expect(backoffDelayMs(3, policy, () => 0)).toBe(0)
    expect(backoffDelayMs(3, policy, () => 0.999999)).toBe(3999)
    expect(() => worker({ secret: '' })).toThrow(TypeError)
    expect(() => worker({ secret: [] })).toThrow(TypeError)
    expect(() => worker({ leaseMs: 1000, timeoutMs: 1000 })).toThrow(TypeError)
    expect(() => worker({ batchSize: 0 })).toThrow(TypeError)
    expect(() => worker({ concurrency: 1.5 })).toThrow(TypeError)
    expect(() => worker({ maxDelayMs: Number.NaN })).toThrow(TypeError)
  })

  it('delivers connection.created once, signed, with the event id, and shows it in the API', async () => {
    const connected = await connectSeller(stack, new BrowserClient(), { tenantId: 'webhook-tenant' })
    connectionId = connected.connectionId
    const [event, ...others] = await stack.runtime.store.listEvents({
      connectionId,
      type: 'connection.created',
    })
    expect(others).toEqual([])
    if (!event) throw new Error('no connection.created event')
    const pending = await deliveryOf(event.id)
    expect(pending).toMatchObject({ status: 'pending', attempts: 0, url: receiver.url })

    expect(await worker().runOnce()).toEqual({ delivered: 1, retried: 0, failed: 0 })

    const received = receiver.requestsFor(event.id)
    expect(received).toHaveLength(1)
    const [request] = received
    expect(request?.verified).toBe(true)
    expect(request?.path).toBe('/hooks/sp-connect')
    expect(request?.headers).toMatchObject({
      'content-type': 'application/json',
      'sp-connect-event-id': event.id,
      'sp-connect-event-type': 'connection.created',
      'sp-connect-delivery-id': pending.id,
      'user-agent': WEBHOOK_USER_AGENT,
    })
    expect(request?.headers['sp-connect-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/)
    const body = JSON.parse(request?.body ?? '') as Record<string, unknown>
    expect(Object.keys(body)).toEqual(['id', 'type', 'created_at', 'connection_id', 'data'])
    expect(body).toEqual({
      id: event.id,
      type: 'connection.created',
      created_at: new Date(event.createdAt).toISOString(),
      connection_id: connectionId,
      data: { flow: 'website' },
    })

    // Delivered means done: the next round finds nothing.
    expect(await worker().runOnce()).toEqual({ delivered: 0, retried: 0, failed: 0 })
    expect(receiver.requestsFor(event.id)).toHaveLength(1)

    const shown = await stack.api('GET', `/v1/events/${event.id}`)
    expect(shown.status).toBe(200)
    expect(shown.json).toMatchObject({
      id: event.id,
      type: 'connection.created',
      connection_id: connectionId,
    })
    const deliveries = shown.json['deliveries'] as Record<string, unknown>[]
    expect(deliveries).toEqual([
      {
        id: pending.id,
        event_id: event.id,
        url: receiver.url,
        status: 'delivered',
        attempts: 1,
        next_attempt_at: null,
        last_status_code: 204,
        last_error: null,
        delivered_at: expect.any(String),
        created_at: new Date(event.createdAt).toISOString(),
        updated_at: expect.any(String),
      },
    ])

    const listed = await stack.api('GET', `/v1/events?connection_id=${connectionId}&type=connection.created`)
    expect(listed.status).toBe(200)
    expect((listed.json['data'] as { id: string }[]).map((e) => e.id)).toEqual([event.id])
  })

  it('validates the events API queries with stable error codes', async () => {
    for (const path of [
      '/v1/events?bogus=1',
      '/v1/events?type=connection.nonsense',
      '/v1/events?limit=0',
      '/v1/webhook-deliveries?status=lost',
      '/v1/webhook-deliveries?limit=abc',
      '/v1/webhook-deliveries?owner=me',
    ]) {
      const response = await stack.api('GET', path)
      expect(response.status, path).toBe(400)
      expect((response.json['error'] as { code: string }).code, path).toBe('invalid_request')
    }
    const missing = await stack.api('GET', '/v1/events/evt_missing')
    expect(missing.status).toBe(404)
    expect((missing.json['error'] as { code: string }).code).toBe('not_found')
    const anonymous = await fetch(`${stack.serviceUrl}/v1/webhook-deliveries`)
    expect(anonymous.status).toBe(401)
  })

  it('retries a failing receiver with growing backoff until it succeeds; the receiver dedups by event id', async () => {
    const eventId = await record()
    receiver.failNext(2, 500)
    const w = worker()

    let before = stack.clock.now()
    expect(await w.runOnce()).toEqual({ delivered: 0, retried: 1, failed: 0 })
    let delivery = await deliveryOf(eventId)
    expect(delivery).toMatchObject({
      status: 'pending',
      attempts: 1,
      lastStatusCode: 500,
      lastError: 'http_500',
    })
    // Full jitter with random() = 0.5 over base * 2^0
    expect(delivery.nextAttemptAt).toBeGreaterThanOrEqual(before + BASE_DELAY_MS / 2)
    expect(delivery.nextAttemptAt).toBeLessThanOrEqual(stack.clock.now() + BASE_DELAY_MS / 2)
    expect(delivery.leaseOwner).toBeNull()

    // Not due yet
    expect(await w.runOnce()).toEqual({ delivered: 0, retried: 0, failed: 0 })
    expect(receiver.requestsFor(eventId)).toHaveLength(1)

    stack.clock.advance(BASE_DELAY_MS / 2)
    before = stack.clock.now()
    expect(await w.runOnce()).toEqual({ delivered: 0, retried: 1, failed: 0 })
    delivery = await deliveryOf(eventId)
    expect(delivery).toMatchObject({ status: 'pending', attempts: 2, lastStatusCode: 500 })
    // …over base * 2^1: the pause grew
    expect(delivery.nextAttemptAt).toBeGreaterThanOrEqual(before + BASE_DELAY_MS)
    expect(delivery.nextAttemptAt).toBeLessThanOrEqual(stack.clock.now() + BASE_DELAY_MS)

    stack.clock.advance(BASE_DELAY_MS)
    expect(await w.runOnce()).toEqual({ delivered: 1, retried: 0, failed: 0 })
    delivery = await deliveryOf(eventId)
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 3, lastStatusCode: 204, lastError: null })
    expect(delivery.deliveredAt).not.toBeNull()

    // At least once: three arrivals, all verified, same event, same delivery, same body; new signature each time.
    const received = receiver.requestsFor(eventId)
    expect(received).toHaveLength(3)
    expect(received.every((r) => r.verified)).toBe(true)
    expect(new Set(received.map((r) => r.deliveryId))).toEqual(new Set([delivery.id]))
    expect(new Set(received.map((r) => r.body)).size).toBe(1)
    const stamps = received.map((r) => r.timestamp)
    expect(stamps[1]).toBeGreaterThan(stamps[0] ?? Number.POSITIVE_INFINITY)
    expect(stamps[2]).toBeGreaterThan(stamps[1] ?? Number.POSITIVE_INFINITY)
    expect(receiver.seen.get(eventId)).toBe(3)
    expect(receiver.processed.get(eventId)).toMatchObject({
      id: eventId,
      type: 'connection.reauthorization_due',
    })
  })

  it('honours Retry-After on 429, treats redirects as failures, and times out a hanging receiver', async () => {
    const eventId = await record()
    receiver.script({ status: 429, headers: { 'retry-after': '900' } })
    const w = worker({ timeoutMs: 300, leaseMs: 30_000 })

    const before = stack.clock.now()
    expect(await w.runOnce()).toEqual({ delivered: 0, retried: 1, failed: 0 })
    let delivery = await deliveryOf(eventId)
    expect(delivery).toMatchObject({ attempts: 1, lastStatusCode: 429, lastError: 'http_429' })
    // 900 s, not the 30 s the backoff alone would give
    expect(delivery.nextAttemptAt).toBeGreaterThanOrEqual(before + 900_000)
    expect(delivery.nextAttemptAt).toBeLessThanOrEqual(stack.clock.now() + 900_000)
    stack.clock.advance(450_000)
    expect(await w.runOnce()).toEqual({ delivered: 0, retried: 0, failed: 0 })

    // A redirect is not followed: it is a failed attempt.
    receiver.script({ status: 302, headers: { location: `${receiver.url}/moved` } })
    stack.clock.advance(450_000)
    expect(await w.runOnce()).toEqual({ delivered: 0, retried: 1, failed: 0 })
    delivery = await deliveryOf(eventId)
    expect(delivery).toMatchObject({ attempts: 2, lastStatusCode: 302, lastError: 'http_302' })
    expect(receiver.requests.some((r) => r.path.endsWith('/moved'))).toBe(false)

    // A receiver that never answers: the attempt times out.
    receiver.script('hang')
    stack.clock.advance(BASE_DELAY_MS)
    expect(await w.runOnce()).toEqual({ delivered: 0, retried: 1, failed: 0 })
    delivery = await deliveryOf(eventId)
    expect(delivery).toMatchObject({
      status: 'pending',
      attempts: 3,
      lastStatusCode: null,
      lastError: 'timeout',
    })

    stack.clock.advance(2 * BASE_DELAY_MS)
    expect(await w.runOnce()).toEqual({ delivered: 1, retried: 0, failed: 0 })
    expect(receiver.requestsFor(eventId).every((r) => r.verified)).toBe(true)
  })

  it('records a network error as a short code and retries', async () => {
    // A receiver URL where nothing listens: the store has the delivery, the worker cannot reach it.
    const unreachable = new Receiver(SECRET)
    await unreachable.start()
    await unreachable.close()
    const eventId = 'evt_unreachable_1'
    await stack.runtime.store.appendEvent(
      {
        id: eventId,
        type: 'connection.reauthorization_due',
        connectionId,
        data: {},
        createdAt: stack.clock.now(),
      },
      [unreachable.url],
    )
    expect(await worker().runOnce()).toEqual({ delivered: 0, retried: 1, failed: 0 })
    const delivery = await deliveryOf(eventId)
    expect(delivery.lastStatusCode).toBeNull()
    expect(delivery.lastError).toMatch(/^network_error(:[A-Z_]+)?$/)
    // Leave it out of the later tests' way: it gives up after one more attempt.
    stack.clock.advance(BASE_DELAY_MS)
    expect(await worker({ maxAttempts: 2 }).runOnce()).toEqual({ delivered: 0, retried: 0, failed: 1 })
  })

  it('gives up after maxAttempts: failed, and visible in the API and the CLI', async () => {
    const eventId = await record()
    receiver.failAlways(500)
    const w = worker({ maxAttempts: 3 })
    try {
      expect(await w.runOnce()).toEqual({ delivered: 0, retried: 1, failed: 0 })
      stack.clock.advance(3_600_000)
      expect(await w.runOnce()).toEqual({ delivered: 0, retried: 1, failed: 0 })
      stack.clock.advance(3_600_000)
      expect(await w.runOnce()).toEqual({ delivered: 0, retried: 0, failed: 1 })
      stack.clock.advance(3_600_000)
      expect(await w.runOnce()).toEqual({ delivered: 0, retried: 0, failed: 0 })
    } finally {
      receiver.failAlways(undefined)
    }
    const delivery = await deliveryOf(eventId)
    expect(delivery).toMatchObject({ status: 'failed', attempts: 3, lastStatusCode: 500, deliveredAt: null })
    expect(receiver.requestsFor(eventId)).toHaveLength(3)

    const api = await stack.api('GET', '/v1/webhook-deliveries?status=failed')
    expect(api.status).toBe(200)
    const failed = (api.json['data'] as Record<string, unknown>[]).find((d) => d['id'] === delivery.id)
    expect(failed).toMatchObject({
      event_id: eventId,
      status: 'failed',
      attempts: 3,
      next_attempt_at: null,
      last_status_code: 500,
      last_error: 'http_500',
      delivered_at: null,
    })
    expect(Object.keys(failed ?? {})).not.toContain('lease_owner')
    expect(Object.keys(failed ?? {})).not.toContain('lease_until')
    const byEvent = await stack.api('GET', `/v1/webhook-deliveries?event_id=${eventId}`)
    expect((byEvent.json['data'] as { id: string }[]).map((d) => d.id)).toEqual([delivery.id])
    const delivered = await stack.api('GET', '/v1/webhook-deliveries?status=delivered&limit=1000')
    expect((delivered.json['data'] as { id: string }[]).map((d) => d.id)).not.toContain(delivery.id)

    const env = { ...stack.env }
    const cli = await runCli(['webhooks', 'deliveries', '--status', 'failed', '--json'], env)
    expect(cli.stderr).toBe('')
    expect(cli.code).toBe(0)
    expect(JSON.parse(cli.stdout)).toEqual(api.json['data'])

    const table = await runCli(['webhooks', 'deliveries', '--status', 'failed'], env)
    expect(table.code).toBe(0)
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+EVENT\s+STATUS\s+ATTEMPTS/)
    expect(table.stdout).toContain(delivery.id)

    const show = await runCli(['events', 'show', eventId, '--json'], env)
    expect(show.code).toBe(0)
    const shown = JSON.parse(show.stdout) as { id: string; deliveries: { id: string; status: string }[] }
    expect(shown.id).toBe(eventId)
    expect(shown.deliveries).toEqual([expect.objectContaining({ id: delivery.id, status: 'failed' })])
    const showTable = await runCli(['events', 'show', eventId], env)
    expect(showTable.code).toBe(0)
    expect(showTable.stdout).toContain('connection.reauthorization_due')
    expect(showTable.stdout).toContain(delivery.id)

    const list = await runCli(['events', 'list', '--connection', connectionId, '--json'], env)
    expect(list.code).toBe(0)
    const apiList = await stack.api('GET', `/v1/events?connection_id=${connectionId}`)
    expect(JSON.parse(list.stdout)).toEqual(apiList.json['data'])

    const missing = await runCli(['events', 'show', 'evt_missing'], env)
    expect(missing.code).toBe(3)
    expect(missing.stdout).toBe('')
    expect(missing.stderr).toBe('error: Not found. [not_found]\n')
    const badStatus = await runCli(['webhooks', 'deliveries', '--status', 'lost'], env)
    expect(badStatus.code).toBe(2)
  })

  it('two workers racing never deliver the same delivery twice', async () => {
    const eventIds = new Set<string>()
    for (let i = 0; i < 25; i++) eventIds.add(await record({ n: i }))
    const a = worker({ batchSize: 5, concurrency: 3 })
    const b = worker({ batchSize: 5, concurrency: 3 })
    expect(a.owner).not.toBe(b.owner)
    const first = receiver.requests.length
    let total = 0
    for (let round = 0; round < 20; round++) {
      const results = await Promise.all([a.runOnce(), b.runOnce(), a.runOnce(), b.runOnce()])
      const delivered = results.reduce((sum, r) => sum + r.delivered + r.retried + r.failed, 0)
      total += delivered
      if (delivered === 0) break
    }
    expect(total).toBe(25)
    const requests = receiver.requests.slice(first)
    expect(requests).toHaveLength(25)
    expect(new Set(requests.map((r) => r.deliveryId)).size).toBe(25)
    expect(new Set(requests.map((r) => r.eventId))).toEqual(eventIds)
    expect(requests.every((r) => r.verified)).toBe(true)
    for (const eventId of eventIds) expect((await deliveryOf(eventId)).status).toBe('delivered')
  })

  it('start() delivers in the background, survives a failing round, and stop() ends the loop', async () => {
    let claims = 0
    const store = stack.runtime.store
    // The real store, except that the first claim fails as a lost database connection would.
    const flaky = new Proxy(store, {
      get(target, property, receiverObject) {
        if (property === 'claimDueDeliveries') {
          return (...args: Parameters<Store['claimDueDeliveries']>) => {
            claims += 1
            if (claims === 1) return Promise.reject(new Error('database is locked'))
            return target.claimDueDeliveries(...args)
          }
        }
        const value: unknown = Reflect.get(target, property, receiverObject)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    // The stack's real sleep: the loop pauses between rounds for real.
    const w = worker({ store: flaky, pollIntervalMs: 10 }, { sleep: stack.runtime.deps.sleep })
    const eventId = await record()
    w.start()
    w.start() // a second start is a no-op
    await vi.waitFor(
      async () => {
        expect((await deliveryOf(eventId)).status).toBe('delivered')
      },
      { timeout: 10_000, interval: 20 },
    )
    await w.stop()
    expect(claims).toBeGreaterThanOrEqual(2)
    expect(stack.logger.text()).toContain('webhook delivery round failed')
    expect(receiver.requestsFor(eventId)).toHaveLength(1)
    // Stopped: runOnce still works by hand, and stop() again is harmless.
    await w.stop()
  })

  it('webhooks verify (CLI) checks a captured body and header with the secret from the environment', async () => {
    const [captured] = receiver.requests.filter((r) => r.verified).slice(-1)
    if (!captured) throw new Error('nothing captured')
    const signature = header(captured.headers, 'sp-connect-signature') ?? ''
    const env = { MY_WEBHOOK_SECRET: SECRET, OTHER_SECRET: `${SECRET}-not` }
    // The tests moved the clock ahead, so the captured timestamp is in the future for the CLI.
    const args = ['webhooks', 'verify', '--secret-env', 'MY_WEBHOOK_SECRET', '--signature', signature]
    const valid = await runCli([...args, '--tolerance', '100000000'], env, captured.body)
    expect(valid).toMatchObject({ code: 0, stdout: 'valid signature\n', stderr: '' })

    const tampered = await runCli([...args, '--tolerance', '100000000'], env, `${captured.body}\n`)
    expect(tampered.code).toBe(1)
    expect(tampered.stderr).toMatch(/^invalid signature: no v1 signature matches/)

    const stale = await runCli([...args, '--tolerance', '0'], env, captured.body)
    expect(stale.code).toBe(1)
    expect(stale.stderr).toMatch(/^invalid signature: the timestamp is/)

    const wrongSecret = await runCli(
      [
        'webhooks',
        'verify',
        '--secret-env',
        'OTHER_SECRET',
        '--signature',
        signature,
        '--tolerance',
        '100000000',
      ],
      env,
      captured.body,
    )
    expect(wrongSecret.code).toBe(1)

    const unset = await runCli(
      ['webhooks', 'verify', '--secret-env', 'NOPE', '--signature', signature],
      env,
      '{}',
    )
    expect(unset.code).toBe(2)
    expect(unset.stderr).toContain('--secret-env names an unset or empty variable')
  })

  it('never logs the secret, nor prints it from the CLI', () => {
    const logs = stack.logger.text()
    expect(logs).toContain('webhook delivered')
    expect(logs).toContain('webhook delivery will be retried')
    expect(logs).toContain('webhook delivery failed for good')
    expect(logs).not.toContain(SECRET)
    expect(logs).not.toContain('receiver says hello')
    for (const output of cliOutputs) expect(output).not.toContain(SECRET)
    expect(receiver.requests.every((r) => r.verified)).toBe(true)
  })
})
