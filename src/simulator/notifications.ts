/**
 * SP-API notifications about the app's client secret, in Amazon's shape (spapi-facts.md §7.1; the sample
 * payloads in amzn/selling-partner-api-samples `use-cases/lwa-rotation`), and their delivery.
 *
 * Amazon writes each notification to the app's SQS queue; the app reads the queue. Here the queue and the
 * app's forwarder are one step: the SQS message body (the notification JSON) is POSTed to the configured URL,
 * in the background, retried a few times until it gets a 2xx (SQS would keep the message; the simulator
 * gives up after the last retry and says so in the delivery log). Delivery waits are real time, not the
 * simulator clock; times inside notifications are the simulator clock.
 */
import { createHash, randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import type { NotificationDelivery, NotificationTarget, SimulatedApp } from './types.ts'

export const NEW_SECRET_TYPE = 'APPLICATION_OAUTH_CLIENT_NEW_SECRET'
export const SECRET_EXPIRY_TYPE = 'APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY'
/** Amazon's sample payloads carry the Application Management API's version here. */
export const PAYLOAD_VERSION = '2023-11-30'
const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [250, 1000, 3000, 10_000]
const ATTEMPT_TIMEOUT_MS = 10_000
const LOG_SIZE = 100

/** An SP-API notification: the SQS message body Amazon writes. */
export interface SpapiNotification {
  readonly notificationVersion: '1.0'
  readonly notificationType: string
  readonly payloadVersion: string
  readonly eventTime: string
  readonly payload: Readonly<Record<string, unknown>>
  readonly notificationMetadata: {
    readonly applicationId: string
    readonly subscriptionId: string
    readonly publishTime: string
    readonly notificationId: string
  }
}

/** A stable subscription id per app and notification type, shaped like Amazon's (a UUID). */
function subscriptionId(appId: string, type: string): string {
  const h = createHash('sha256').update(`${appId}\n${type}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}

function notification(
  app: SimulatedApp,
  type: string,
  now: number,
  payload: Readonly<Record<string, unknown>>,
): SpapiNotification {
  return {
    notificationVersion: '1.0',
    notificationType: type,
    payloadVersion: PAYLOAD_VERSION,
    eventTime: new Date(now).toISOString(),
    payload,
    notificationMetadata: {
      applicationId: app.appId,
      subscriptionId: subscriptionId(app.appId, type),
      publishTime: new Date(now).toISOString(),
      notificationId: randomUUID(),
    },
  }
}

export function newSecretNotification(
  app: SimulatedApp,
  now: number,
  secret: { newClientSecret: string; newExpiresAt: number; oldExpiresAt: number },
): SpapiNotification {
  return notification(app, NEW_SECRET_TYPE, now, {
    applicationOAuthClientNewSecret: {
      clientId: app.clientId,
      newClientSecret: secret.newClientSecret,
      newClientSecretExpiryTime: new Date(secret.newExpiresAt).toISOString(),
      oldClientSecretExpiryTime: new Date(secret.oldExpiresAt).toISOString(),
    },
  })
}

export function secretExpiryNotification(
  app: SimulatedApp,
  now: number,
  expiry: { expiresAt: number; reason: string },
): SpapiNotification {
  return notification(app, SECRET_EXPIRY_TYPE, now, {
    applicationOAuthClientSecretExpiry: {
      clientId: app.clientId,
      clientSecretExpiryTime: new Date(expiry.expiresAt).toISOString(),
      clientSecretExpiryReason: expiry.reason,
    },
  })
}

/** Checks a target: an absolute http(s) URL without credentials, string headers, sane delays. */
function validateTarget(target: NotificationTarget): NotificationTarget {
  let url: URL
  try {
    url = new URL(target.url)
  } catch {
    throw new TypeError('The notification URL is not an absolute URL.')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError('The notification URL must be http(s).')
  }
  const delays = target.retryDelaysMs ?? [...DEFAULT_RETRY_DELAYS_MS]
  if (delays.length > 10 || delays.some((ms) => !Number.isFinite(ms) || ms < 0 || ms > 60_000)) {
    throw new TypeError('retryDelaysMs takes at most 10 waits of 0..60000 ms.')
  }
  const copy: NotificationTarget = { url: url.href, retryDelaysMs: [...delays] }
  if (target.headers !== undefined) copy.headers = { ...target.headers }
  return copy
}

/** Delivers notifications in the background and remembers how each delivery went. */
export class Notifier {
  #target: NotificationTarget | undefined
  readonly #log: NotificationDelivery[] = []
  readonly #pending = new Set<Promise<void>>()
  readonly #closing = new AbortController()

  constructor(target: NotificationTarget | undefined) {
    this.configure(target)
  }

  configure(target: NotificationTarget | undefined): void {
    this.#target = target === undefined ? undefined : validateTarget(target)
  }

  /** Whether a destination is configured (Amazon refuses to rotate without one). */
  get enabled(): boolean {
    return this.#target !== undefined
  }

  /** Queues a delivery; returns at once. Without a destination the notification goes nowhere, as on Amazon. */
  send(appId: string, message: SpapiNotification, publishedAt: number): void {
    const target = this.#target
    if (target === undefined || this.#closing.signal.aborted) return
    const entry: NotificationDelivery = {
      notificationId: message.notificationMetadata.notificationId,
      notificationType: message.notificationType,
      appId,
      status: 'pending',
      attempts: 0,
      lastStatus: null,
      publishedAt,
    }
    this.#log.push(entry)
    if (this.#log.length > LOG_SIZE) this.#log.splice(0, this.#log.length - LOG_SIZE)
    const work = this.#deliver(target, JSON.stringify(message), entry).finally(() =>
      this.#pending.delete(work),
    )
    this.#pending.add(work)
  }

  log(): NotificationDelivery[] {
    return this.#log.map((entry) => ({ ...entry }))
  }

  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending])
  }

  /** Stops retrying (a delivery in flight is aborted) and waits for the deliveries to settle. */
  async close(): Promise<void> {
    this.#closing.abort()
    await this.flush()
  }

  async #deliver(target: NotificationTarget, body: string, entry: NotificationDelivery): Promise<void> {
    const waits = target.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS
    const closing = this.#closing.signal
    for (let attempt = 0; attempt <= waits.length; attempt++) {
      if (attempt > 0) {
        try {
          await delay(waits[attempt - 1] ?? 0, undefined, { signal: closing })
        } catch {
          break
        }
      }
      if (closing.aborted) break
      entry.attempts += 1
      try {
        const headers = new Headers({
          'Content-Type': 'application/json',
          'User-Agent': 'sp-connect-simulator (SQS stand-in)',
        })
        for (const [name, value] of Object.entries(target.headers ?? {})) headers.set(name, value)
        const response = await fetch(target.url, {
          method: 'POST',
          headers,
          body,
          redirect: 'manual',
          signal: AbortSignal.any([closing, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]),
        })
        entry.lastStatus = response.status
        await response.body?.cancel().catch(() => {})
        if (response.status >= 200 && response.status < 300) {
          entry.status = 'delivered'
          return
        }
      } catch {
        entry.lastStatus = null
      }
    }
    entry.status = 'failed'
  }
}
