/**
 * Delivers the webhook outbox: claims due deliveries under a lease, POSTs each event, signed, to its endpoint,
 * and records the result. Delivery is at least once: a receiver may see an event again (a lost response, a
 * lease that expired mid-attempt), always with the same event id and body, so it deduplicates on the id.
 *
 * Failures (non-2xx, redirects, timeouts, network errors) are retried with capped exponential backoff with
 * full jitter, or after `Retry-After` on 429/503, until `maxAttempts` attempts have been made; then the
 * delivery is `failed`. Several workers (processes) may run at once: the store's claim hands each delivery to
 * one of them.
 *
 * Nothing from the receiver's response is kept but its status code; errors are short codes. The secret only
 * ever goes into the HMAC.
 */
import type { DeliveryRecord, DeliveryResult, EventStore } from '../../store/store.ts'
import type { Deps } from '../deps.ts'
import { newId } from '../encoding.ts'
import { parseRetryAfter } from '../lwa/retry.ts'
import { webhookMetricsOf } from '../metrics.ts'
import { SIGNATURE_HEADER, signWebhook } from './signature.ts'
import { webhookBody } from './webhook-payload.ts'

export const WEBHOOK_USER_AGENT = 'sp-connect-webhooks/1'

export interface WebhookDeliveryWorkerOptions {
  readonly store: EventStore
  /** HMAC-SHA256 key of the `sp-connect-signature` header; several (newest first) sign with each while rotating. */
  readonly secret: string | readonly string[]
  /** Lease owner id; unique per worker (default: a random `whw_…`). */
  readonly owner?: string
  /** Deliveries claimed per round. */
  readonly batchSize?: number
  /** Requests in flight at once. */
  readonly concurrency?: number
  /** How long a claim is ours; must exceed `timeoutMs`. */
  readonly leaseMs?: number
  /** Per-request timeout (headers received). */
  readonly timeoutMs?: number
  /** Attempts in all before a delivery is `failed`. */
  readonly maxAttempts?: number
  /** Backoff cap of the first retry; doubles per attempt. */
  readonly baseDelayMs?: number
  /** Largest pause between attempts (also caps Retry-After). */
  readonly maxDelayMs?: number
  /** Pause of `start()` between rounds that found less than a full batch. */
  readonly pollIntervalMs?: number
}

interface DeliveryRoundResult {
  readonly delivered: number
  readonly retried: number
  readonly failed: number
}

type Outcome = 'delivered' | 'retried' | 'failed' | 'skipped'

interface Settings {
  readonly batchSize: number
  readonly concurrency: number
  readonly leaseMs: number
  readonly timeoutMs: number
  readonly maxAttempts: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  readonly pollIntervalMs: number
}

const DEFAULTS: Settings = Object.freeze({
  batchSize: 20,
  concurrency: 4,
  leaseMs: 30_000,
  timeoutMs: 10_000,
  maxAttempts: 12,
  baseDelayMs: 5_000,
  maxDelayMs: 6 * 60 * 60 * 1000,
  pollIntervalMs: 1_000,
})

/** Network error codes worth keeping (they name the failure, nothing else). */
const NETWORK_CODE = /^[A-Z][A-Z0-9_]{1,39}$/

/**
 * The pause before attempt `attempt + 1` after `attempt` failed attempts (1-based): full jitter over
 * `min(maxDelayMs, baseDelayMs * 2^(attempt-1))`.
 */
export function backoffDelayMs(
  attempt: number,
  policy: { readonly baseDelayMs: number; readonly maxDelayMs: number },
  random: () => number,
): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1))
  return Math.floor(random() * cap)
}

export class WebhookDeliveryWorker {
  readonly owner: string
  readonly #store: EventStore
  readonly #secret: string | readonly string[]
  readonly #settings: Settings
  readonly #deps: Pick<Deps, 'fetch' | 'now' | 'sleep' | 'random' | 'randomBytes' | 'logger' | 'metrics'>
  #loop: Promise<void> | undefined
  #abort: AbortController | undefined

  constructor(options: WebhookDeliveryWorkerOptions, deps: Deps) {
    const secrets = typeof options.secret === 'string' ? [options.secret] : options.secret
    if (secrets.length === 0 || secrets.some((s) => s.length === 0)) {
      throw new TypeError('The webhook secret must not be empty.')
    }
    const settings: { -readonly [K in keyof Settings]: number } = { ...DEFAULTS }
    for (const key of Object.keys(DEFAULTS) as (keyof Settings)[]) {
      const value = options[key]
      if (value === undefined) continue
      if (!Number.isFinite(value) || value < 0)
        throw new TypeError(`${key} must be a finite number of at least 0.`)
      settings[key] = value
    }
    for (const key of ['batchSize', 'concurrency', 'maxAttempts', 'timeoutMs'] as const) {
      if (!Number.isSafeInteger(settings[key]) || settings[key] < 1) {
        throw new TypeError(`${key} must be an integer of at least 1.`)
      }
    }
    if (settings.leaseMs <= settings.timeoutMs) throw new TypeError('leaseMs must be longer than timeoutMs.')
    this.#settings = Object.freeze(settings)
    this.#store = options.store
    this.#secret = typeof options.secret === 'string' ? options.secret : Object.freeze([...options.secret])
    this.#deps = deps
    this.owner = options.owner ?? newId('whw', deps.randomBytes)
  }

  /** Claims one batch of due deliveries and attempts each once. */
  async runOnce(): Promise<DeliveryRoundResult> {
    const { batchSize, concurrency, leaseMs } = this.#settings
    const now = this.#deps.now()
    const leaseUntil = now + leaseMs
    const claimed = await this.#store.claimDueDeliveries(now, this.owner, leaseUntil, batchSize)
    const counts = { delivered: 0, retried: 0, failed: 0 }
    let next = 0
    const lane = async () => {
      for (let i = next++; i < claimed.length; i = next++) {
        const delivery = claimed[i]
        if (!delivery) continue
        const outcome = await this.#attemptSafely(delivery, leaseUntil)
        if (outcome !== 'skipped') {
          counts[outcome] += 1
          webhookMetricsOf(this.#deps.metrics)?.webhookDelivery(outcome)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, claimed.length) }, lane))
    return counts
  }

  /** Runs rounds until `stop()`: immediately again after a full batch, else after `pollIntervalMs`. */
  start(): void {
    if (this.#loop) return
    const abort = new AbortController()
    this.#abort = abort
    this.#loop = this.#run(abort.signal)
  }

  /**
   * Ends the loop: no new attempt starts; attempts in flight finish (each within `timeoutMs`) and are
   * recorded. Deliveries claimed but not attempted are picked up again once their lease expires.
   */
  async stop(): Promise<void> {
    this.#abort?.abort()
    await this.#loop
    this.#loop = undefined
    this.#abort = undefined
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let busy = false
      try {
        const round = await this.runOnce()
        busy = round.delivered + round.retried + round.failed >= this.#settings.batchSize
      } catch (error) {
        // The loop must outlive a database hiccup; the next round tries again.
        this.#deps.logger.error(
          { err: describeError(error), owner: this.owner },
          'webhook delivery round failed',
        )
      }
      if (signal.aborted) break
      if (busy) continue
      try {
        await this.#deps.sleep(this.#settings.pollIntervalMs, signal)
      } catch {
        // Aborted by stop().
      }
    }
  }

  async #attemptSafely(delivery: DeliveryRecord, leaseUntil: number): Promise<Outcome> {
    // An attempt that could outlast the lease might overlap another worker's claim of the same delivery:
    // leave it for after the lease expires instead. Likewise after stop().
    if (this.#abort?.signal.aborted || this.#deps.now() + this.#settings.timeoutMs >= leaseUntil)
      return 'skipped'
    try {
      return await this.#attempt(delivery)
    } catch (error) {
      // Storage failed around the attempt: the lease expires and the delivery is claimed again.
      this.#deps.logger.error(
        { err: describeError(error), deliveryId: delivery.id, eventId: delivery.eventId },
        'webhook delivery failed unexpectedly',
      )
      return 'skipped'
    }
  }

  async #attempt(delivery: DeliveryRecord): Promise<Outcome> {
    const event = await this.#store.getEvent(delivery.eventId)
    if (!event) {
      // Deliveries cascade with their event, so this is a race with retention: nothing left to send.
      return this.#complete(delivery, {
        ok: false,
        statusCode: null,
        error: 'event_missing',
        nextAttemptAt: null,
        now: this.#deps.now(),
      })
    }
    const body = webhookBody(event)
    const timestamp = Math.floor(this.#deps.now() / 1000)
    let statusCode: number | null = null
    let error: string
    let retryAfterMs: number | undefined
    try {
      const response = await this.#deps.fetch(delivery.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': WEBHOOK_USER_AGENT,
          [SIGNATURE_HEADER]: signWebhook(this.#secret, timestamp, body),
          'sp-connect-event-id': event.id,
          'sp-connect-event-type': event.type,
          'sp-connect-delivery-id': delivery.id,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#settings.timeoutMs),
      })
      statusCode = response.status
      // The response body is never read: free the connection.
      await response.body?.cancel().catch(() => {})
      // Redirects are failures (a receiver that moved must be reconfigured, not followed blindly).
      error = statusCode === 0 ? 'redirect' : `http_${statusCode}`
      if (statusCode === 429 || statusCode === 503) {
        retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), this.#deps.now())
      }
    } catch (caught) {
      error = fetchErrorCode(caught)
    }
    // Recorded outside the try above, so a storage failure is never mistaken for a failed request.
    if (statusCode !== null && statusCode >= 200 && statusCode < 300) {
      return this.#complete(delivery, { ok: true, statusCode, now: this.#deps.now() })
    }
    const now = this.#deps.now()
    const attempts = delivery.attempts + 1
    let nextAttemptAt: number | null = null
    if (attempts < this.#settings.maxAttempts) {
      const delay =
        retryAfterMs === undefined
          ? backoffDelayMs(attempts, this.#settings, this.#deps.random)
          : Math.min(retryAfterMs, this.#settings.maxDelayMs)
      nextAttemptAt = now + delay
    }
    return this.#complete(delivery, { ok: false, statusCode, error, nextAttemptAt, now })
  }

  async #complete(delivery: DeliveryRecord, result: DeliveryResult): Promise<Outcome> {
    const updated = await this.#store.completeDelivery(delivery.id, this.owner, result)
    const log = {
      deliveryId: delivery.id,
      eventId: delivery.eventId,
      // Only the origin: paths and queries of receiver URLs sometimes carry their own tokens.
      endpoint: safeOrigin(delivery.url),
      attempt: delivery.attempts + 1,
      statusCode: result.statusCode,
      ...(result.ok ? {} : { error: result.error }),
    }
    if (!updated) {
      this.#deps.logger.warn(log, 'webhook delivery lease lost before its result was recorded')
      return 'skipped'
    }
    if (result.ok) {
      this.#deps.logger.info(log, 'webhook delivered')
      return 'delivered'
    }
    if (result.nextAttemptAt === null) {
      this.#deps.logger.error(log, 'webhook delivery failed for good')
      return 'failed'
    }
    this.#deps.logger.warn(
      { ...log, nextAttemptAt: new Date(result.nextAttemptAt).toISOString() },
      'webhook delivery will be retried',
    )
    return 'retried'
  }
}

/** A short code for a failed fetch: `timeout`, `network_error:ECONNREFUSED`, `network_error`. */
function fetchErrorCode(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'timeout'
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined
  const code = cause && typeof cause === 'object' ? cause.code : undefined
  return typeof code === 'string' && NETWORK_CODE.test(code) ? `network_error:${code}` : 'network_error'
}

/** Storage errors for operators; the secret never reaches them (it only ever goes into the HMAC). */
function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : typeof error
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return 'invalid-url'
  }
}
