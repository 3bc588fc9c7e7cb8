/**
 * Alerts for stored ciphertexts that cannot be opened. The keyring fails closed either way; this makes the
 * failure visible: a ciphertext that fails authentication (tampered with, copied from another row, or its key id
 * reused for other key material) records `app.integrity_alert`, and one under a key id the keyring lacks records
 * `app.key_unavailable`. Each becomes an event, a warn log line and a webhook like every other event.
 *
 * The event names the connection (or, for an app secret, its table and row), the column and the key id; never the
 * ciphertext or anything decrypted. Alerts are rate-limited in memory: at most one per row and kind per
 * interval (default one hour), with a bounded table, so a removed key under thousands of rows or a client
 * retrying in a loop cannot flood the event log and the webhook receivers.
 */
import type { Deps } from '../deps.ts'
import type { EventType } from '../events/events.ts'
import type { DecryptFailure, Keyring } from './keyring.ts'

/** Default: one alert per row and kind per hour. */
const INTEGRITY_ALERT_INTERVAL_MS = 60 * 60 * 1000
/** Rows remembered for rate limiting; beyond this the oldest are forgotten first. */
const INTEGRITY_ALERT_MAX_TRACKED = 10_000

const EVENT_BY_CODE = {
  decryption_failed: 'app.integrity_alert',
  key_unavailable: 'app.key_unavailable',
} as const satisfies Record<DecryptFailure['code'], EventType>

/** What the alerts need of the event recorder. */
interface AlertEventSink {
  record(type: EventType, connectionId: string | null, data?: Record<string, unknown>): Promise<string>
}

interface IntegrityAlertsOptions {
  readonly events: AlertEventSink
  readonly intervalMs?: number
  readonly maxTracked?: number
}

export class IntegrityAlerts {
  readonly #events: AlertEventSink
  readonly #deps: Pick<Deps, 'now' | 'logger'>
  readonly #intervalMs: number
  readonly #maxTracked: number
  /** Last alert time by `kind|table|row`, oldest first (re-inserted on every alert). */
  readonly #last = new Map<string, number>()
  readonly #pending = new Set<Promise<void>>()

  constructor(options: IntegrityAlertsOptions, deps: Pick<Deps, 'now' | 'logger'>) {
    this.#events = options.events
    this.#deps = deps
    this.#intervalMs = options.intervalMs ?? INTEGRITY_ALERT_INTERVAL_MS
    this.#maxTracked = options.maxTracked ?? INTEGRITY_ALERT_MAX_TRACKED
  }

  /** Makes every decryption failure of `keyring` an alert. */
  watch(keyring: Keyring): void {
    keyring.onDecryptFailure((failure) => this.report(failure))
  }

  /**
   * Records the alert event unless one for the same row and kind was recorded within the interval. Never
   * throws (it runs inside the keyring's failure path); the event is written in the background.
   */
  report(failure: DecryptFailure): void {
    const { table, rowId, column } = failure.context
    // Per row, not per column: a connection whose two tokens both fail is one incident.
    const key = `${failure.code}|${table}|${rowId}`
    const now = this.#deps.now()
    const last = this.#last.get(key)
    if (last !== undefined && now - last < this.#intervalMs) return
    this.#remember(key, now)
    const isConnection = table === 'connections'
    const data: Record<string, unknown> = {
      code: failure.code,
      keyId: failure.keyId,
      table,
      column,
      ...(isConnection ? {} : { rowId }),
    }
    const recorded = this.#events
      .record(EVENT_BY_CODE[failure.code], isConnection ? rowId : null, data)
      .then(
        () => undefined,
        (error: unknown) => {
          // The caller already gets the fail-closed error; a lost alert is logged rather than raised.
          this.#deps.logger.error(
            { err: error, event: EVENT_BY_CODE[failure.code], table, column },
            'could not record an integrity alert',
          )
        },
      )
      .finally(() => this.#pending.delete(recorded))
    this.#pending.add(recorded)
  }

  /** Resolves once every alert reported so far has been written (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending])
  }

  #remember(key: string, now: number): void {
    this.#last.delete(key)
    this.#last.set(key, now)
    if (this.#last.size <= this.#maxTracked) return
    // Forget entries whose interval has passed; if that is not enough, the oldest.
    for (const [k, at] of this.#last) if (now - at >= this.#intervalMs) this.#last.delete(k)
    while (this.#last.size > this.#maxTracked) {
      const oldest = this.#last.keys().next()
      if (oldest.done === true) break
      this.#last.delete(oldest.value)
    }
  }
}
