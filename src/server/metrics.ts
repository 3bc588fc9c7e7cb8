/**
 * The {@link Metrics} of src/core/metrics.ts as Prometheus metrics (prom-client), in a registry of their own
 * (not prom-client's global one), so two runtimes in one process do not collide. Gauges that describe stored
 * state (refresher backlog and lag, connections by status, the webhook outbox) are read from the store when
 * scraped. No label carries an id, a token or a tenant name.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Context } from 'hono'
import { Hono } from 'hono'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { LwaGrant, Metrics, WebhookMetrics } from '../core/metrics.ts'
import { REFRESHER_DEFAULTS } from '../core/tokens/refresher.ts'
import { SpConnectError } from '../domain/errors.ts'
import type { Runtime } from '../runtime.ts'
import { CONNECTION_STATUSES } from '../store/store.ts'

const BREAKER_STATES = ['closed', 'open', 'half_open'] as const

export class PrometheusMetrics implements Metrics, WebhookMetrics {
  readonly registry: Registry
  readonly #tokenRequests: Counter<'outcome'>
  readonly #refreshes: Counter<'trigger' | 'outcome'>
  readonly #lwaCalls: Counter<'grant' | 'status'>
  readonly #lwaDuration: Histogram<'grant'>
  readonly #lwaRetries: Counter<'grant'>
  readonly #breaker: Gauge<'state'>
  readonly #retryBudget: Gauge
  readonly #leaseWait: Histogram
  readonly #decryptionFailures: Counter<'reason'>
  readonly #rateLimited: Counter<'scope'>
  readonly #webhookDeliveries: Counter<'outcome'>
  readonly #refreshBacklog: Gauge
  readonly #refreshLag: Gauge
  readonly #connections: Gauge<'status'>
  readonly #outboxDepth: Gauge
  readonly #outboxAge: Gauge

  /** `defaultMetrics: false` leaves out the process metrics (CPU, memory, event loop lag, GC). */
  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registry = new Registry()
    this.registry = registry
    const registers = [registry]
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
    this.#tokenRequests = new Counter({
      name: 'sp_connect_token_requests_total',
      help: 'Access-token requests by outcome: cached, refreshed, waited (on another refresh), error.',
      labelNames: ['outcome'],
      registers,
    })
    this.#refreshes = new Counter({
      name: 'sp_connect_refreshes_total',
      help: 'Refresh-token grants by trigger (caller, background, forced) and outcome (ok, invalid_grant, error).',
      labelNames: ['trigger', 'outcome'],
      registers,
    })
    this.#lwaCalls = new Counter({
      name: 'sp_connect_lwa_requests_total',
      help: 'Calls to the LWA token endpoint by grant and HTTP status (or network, timeout).',
      labelNames: ['grant', 'status'],
      registers,
    })
    this.#lwaDuration = new Histogram({
      name: 'sp_connect_lwa_request_duration_seconds',
      help: 'Duration of calls to the LWA token endpoint.',
      labelNames: ['grant'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    })
    this.#lwaRetries = new Counter({
      name: 'sp_connect_lwa_retries_total',
      help: 'Token-endpoint calls that retried an earlier attempt, by grant.',
      labelNames: ['grant'],
      registers,
    })
    this.#breaker = new Gauge({
      name: 'sp_connect_lwa_breaker_state',
      help: 'The LWA circuit breaker: 1 for the current state (closed, open, half_open), 0 for the others.',
      labelNames: ['state'],
      registers,
    })
    for (const state of BREAKER_STATES) this.#breaker.set({ state }, state === 'closed' ? 1 : 0)
    this.#retryBudget = new Gauge({
      name: 'sp_connect_lwa_retry_budget_available',
      help: 'Retries the LWA retry budget allows right now.',
      registers,
    })
    this.#leaseWait = new Histogram({
      name: 'sp_connect_lease_wait_seconds',
      help: "Time callers waited for another holder's refresh of the same connection.",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers,
    })
    this.#decryptionFailures = new Counter({
      name: 'sp_connect_decryption_failures_total',
      help: 'Stored tokens that could not be opened: tampered (failed authentication) or key_unavailable.',
      labelNames: ['reason'],
      registers,
    })
    this.#rateLimited = new Counter({
      name: 'sp_connect_rate_limited_total',
      help: 'Requests refused with 429 by our own abuse limits, by scope (browser, api_key, bad_credentials).',
      labelNames: ['scope'],
      registers,
    })
    this.#webhookDeliveries = new Counter({
      name: 'sp_connect_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome: delivered, retried (will be tried again), failed (gave up).',
      labelNames: ['outcome'],
      registers,
    })
    this.#refreshBacklog = new Gauge({
      name: 'sp_connect_refresh_backlog',
      help: 'Connections due for a background refresh now (read from the store at scrape time).',
      registers,
    })
    this.#refreshLag = new Gauge({
      name: 'sp_connect_refresh_lag_seconds',
      help: 'How long the earliest-expiring due warm connection has had an expired access token (0 if none).',
      registers,
    })
    this.#connections = new Gauge({
      name: 'sp_connect_connections',
      help: 'Connections by status (read from the store at scrape time).',
      labelNames: ['status'],
      registers,
    })
    this.#outboxDepth = new Gauge({
      name: 'sp_connect_webhook_outbox_pending',
      help: 'Webhook deliveries waiting to be delivered (read from the store at scrape time).',
      registers,
    })
    this.#outboxAge = new Gauge({
      name: 'sp_connect_webhook_outbox_oldest_age_seconds',
      help: 'Age of the oldest pending webhook delivery (0 when none).',
      registers,
    })
  }

  tokenRequest(outcome: 'cached' | 'refreshed' | 'waited' | 'error'): void {
    this.#tokenRequests.inc({ outcome })
  }
  refresh(trigger: 'caller' | 'background' | 'forced', outcome: 'ok' | 'invalid_grant' | 'error'): void {
    this.#refreshes.inc({ trigger, outcome })
  }
  lwaCall(grant: LwaGrant, status: string, seconds: number): void {
    this.#lwaCalls.inc({ grant, status })
    this.#lwaDuration.observe({ grant }, seconds)
  }
  lwaRetry(grant: LwaGrant): void {
    this.#lwaRetries.inc({ grant })
  }
  breakerState(state: 'closed' | 'open' | 'half_open'): void {
    for (const s of BREAKER_STATES) this.#breaker.set({ state: s }, s === state ? 1 : 0)
  }
  retryBudget(available: number): void {
    this.#retryBudget.set(available)
  }
  leaseWait(seconds: number): void {
    this.#leaseWait.observe(seconds)
  }
  decryptionFailure(reason: 'tampered' | 'key_unavailable'): void {
    this.#decryptionFailures.inc({ reason })
  }
  rateLimited(scope: string): void {
    this.#rateLimited.inc({ scope })
  }

  webhookDelivery(outcome: 'delivered' | 'retried' | 'failed'): void {
    this.#webhookDeliveries.inc({ outcome })
  }

  get contentType(): string {
    return this.registry.contentType
  }

  /** The exposition text, after reading the store-backed gauges. */
  async render(runtime: Runtime): Promise<string> {
    const { store, deps, tokens } = runtime
    const now = deps.now()
    const [backlog, byStatus, outbox] = await Promise.all([
      store.refreshBacklog({
        now,
        warmUsedSince: now - REFRESHER_DEFAULTS.warmWindowMs,
        warmExpiringBefore: now + tokens.refreshMarginMs + REFRESHER_DEFAULTS.lookaheadMs,
        idleCheckedBefore: now - REFRESHER_DEFAULTS.idleCheckIntervalMs,
      }),
      store.countConnectionsByStatus(),
      store.pendingDeliveryStats(),
    ])
    this.#refreshBacklog.set(backlog.due)
    this.#refreshLag.set(
      backlog.earliestWarmExpiry === null ? 0 : Math.max(0, (now - backlog.earliestWarmExpiry) / 1000),
    )
    for (const status of CONNECTION_STATUSES) this.#connections.set({ status }, byStatus[status] ?? 0)
    this.#outboxDepth.set(outbox.pending)
    this.#outboxAge.set(
      outbox.oldestCreatedAt === null ? 0 : Math.max(0, (now - outbox.oldestCreatedAt) / 1000),
    )
    return this.registry.metrics()
  }
}

/** The runtime's metrics if they are exportable (a {@link PrometheusMetrics}), else undefined. */
function exportableMetrics(runtime: Runtime): PrometheusMetrics | undefined {
  const metrics = runtime.deps.metrics
  return metrics instanceof PrometheusMetrics ? metrics : undefined
}

/** Answers a scrape with the exposition text. */
async function scrape(runtime: Runtime, metrics: PrometheusMetrics): Promise<Response> {
  const text = await metrics.render(runtime)
  return new Response(text, { status: 200, headers: { 'content-type': metrics.contentType } })
}

/**
 * `GET /metrics` on the service's own listener. Dev: open. Production: only with `Authorization: Bearer
 * <SP_CONNECT_METRICS_KEY>`; with no key configured it does not exist here (404), whether or not a separate
 * metrics address serves it.
 */
export async function metricsRoute(c: Context): Promise<Response> {
  const runtime = c.get('runtime') as Runtime
  const metrics = exportableMetrics(runtime)
  if (metrics === undefined) throw new SpConnectError('not_found')
  if (runtime.config.mode !== 'dev') {
    const key = runtime.config.metrics?.key ?? null
    if (key === null) throw new SpConnectError('not_found')
    if (!bearerMatches(c.req.header('authorization'), key)) {
      c.header('WWW-Authenticate', 'Bearer realm="metrics"')
      throw new SpConnectError('unauthenticated')
    }
  }
  return scrape(runtime, metrics)
}

/** The app for the separate metrics listener (`SP_CONNECT_METRICS_ADDRESS`): `/metrics` only, no key. */
export function createMetricsApp(runtime: Runtime): Hono {
  const app = new Hono()
  app.get('/metrics', async () => {
    const metrics = exportableMetrics(runtime)
    return metrics === undefined ? new Response('Not found.', { status: 404 }) : scrape(runtime, metrics)
  })
  return app
}

function bearerMatches(authorization: string | undefined, key: string): boolean {
  const presented = /^bearer[ \t]+(.+)$/i.exec(authorization?.trim() ?? '')?.[1]?.trim()
  if (presented === undefined) return false
  // Hashes first: equal lengths for timingSafeEqual, and no length leak.
  const digest = (s: string) => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(presented), digest(key))
}
