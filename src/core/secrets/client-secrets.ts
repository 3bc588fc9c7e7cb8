/**
 * The application's LWA client secrets during and after rotation, and the credential source the LWA client
 * draws from (see `CredentialSource` in ../lwa/types.ts).
 *
 * - Candidates, in order: the stored secrets received by notification (`app_secrets`, encrypted, state
 *   `active`, not past their expiry), newest first, then the configured secret (SP_CONNECT_LWA_CLIENT_SECRET),
 *   which is always kept as the last resort because nothing says when it expires. A secret LWA refused moves
 *   to the back until LWA accepts it again.
 * - The list is cached for a short time (30 s by default) and reloaded at once after a refusal: another
 *   process may have stored a new secret, and the LWA client reads the candidates again before giving up.
 * - A store or key failure never stops token refreshes: the last good list, or else the configured secret,
 *   is used, and the failure is logged.
 * - Notifications: a new secret is stored encrypted (AAD app_secrets/<id>/secret), idempotently (the same
 *   secret, or the same notification id, is stored once), the secrets it replaces get Amazon's expiry for
 *   them, and `app.client_secret_rotated` is recorded. An expiry warning records `app.client_secret_expiring`.
 *   Secret values never reach an event, a log line or an error.
 */
import { isSpConnectError, SpConnectError } from '../../domain/errors.ts'
import type { AppSecretRecord, AppSecretState, Store } from '../../store/store.ts'
import type { Keyring } from '../crypto/keyring.ts'
import type { Deps } from '../deps.ts'
import { newId, sha256 } from '../encoding.ts'
import type { EventRecorder } from '../events/events.ts'
import type { CredentialSource, LwaCredentials } from '../lwa/types.ts'
import {
  NEW_SECRET_NOTIFICATION,
  type NewSecretNotification,
  parseNotification,
  SECRET_EXPIRY_NOTIFICATION,
  type SecretExpiryNotification,
} from './notifications.ts'

const DEFAULT_SECRET_CACHE_MS = 30_000
/** After a failed reload the old list is kept this long before the store is asked again. */
const RELOAD_FAILURE_PAUSE_MS = 5_000
/** The id under which the configured secret is reported (it has no row). */
const CONFIGURED_SECRET_ID = 'configured'

interface ClientSecretsOptions {
  readonly store: Store
  readonly keyring: Keyring
  readonly events: EventRecorder
  /** The LWA client id (config.lwaClientId); notifications for any other client id are refused. */
  readonly clientId: string
  /** The configured secret (config.lwaClientSecret): the last candidate, always. */
  readonly configuredSecret: string
  /** How long a loaded list of secrets is used before the store is read again. Default 30 s. */
  readonly cacheTtlMs?: number
}

/** How one secret looks to operators (`sp-connect secrets status`): everything but the secret. */
export interface ClientSecretInfo {
  /** The row id, or `configured` for the secret from the configuration. */
  readonly id: string
  readonly source: 'stored' | 'configured'
  /** `expired`: still `active` in the store, but past the expiry Amazon announced. */
  readonly state: AppSecretState | 'expired'
  readonly createdAt: number | null
  readonly expiresAt: number | null
  /** Position in the order the candidates are tried (1 first), or null when it is not tried. */
  readonly rank: number | null
}

export interface ClientSecretsStatus {
  readonly clientId: string
  readonly secrets: readonly ClientSecretInfo[]
  /** When the newest secret received by notification was stored, if any. */
  readonly lastRotationAt: number | null
  /** The newest APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY warning, if any was received. */
  readonly lastExpiryWarning: {
    readonly expiresAt: string | null
    readonly reason: string | null
    readonly receivedAt: number
  } | null
}

interface NotificationOutcome {
  readonly notificationType: string
  /**
   * `stored`: a new secret was stored; `duplicate`: already known (redelivery), nothing changed;
   * `recorded`: an expiry warning became an event; `ignored`: a notification type sp-connect does not use.
   */
  readonly result: 'stored' | 'duplicate' | 'recorded' | 'ignored'
  /** The stored secret's id (new_secret only). */
  readonly secretId?: string
}

interface Entry {
  readonly id: string
  readonly source: 'stored' | 'configured'
  readonly secret: string
  readonly state: AppSecretState
  readonly createdAt: number | null
  readonly expiresAt: number | null
}

type SecretsDeps = Pick<Deps, 'now' | 'randomBytes' | 'logger'>

export class ClientSecrets implements CredentialSource {
  readonly clientId: string
  readonly #store: Store
  readonly #keyring: Keyring
  readonly #events: EventRecorder
  readonly #configured: Entry
  readonly #ttlMs: number
  readonly #deps: SecretsDeps
  #entries: readonly Entry[] | undefined
  #validUntil = Number.NEGATIVE_INFINITY
  #loading: Promise<readonly Entry[]> | undefined
  /** Bumped by every invalidation, so a load that started before one is not cached as fresh. */
  #generation = 0
  /** Secrets LWA refused since it last accepted them: tried last. */
  readonly #refused = new Set<string>()

  constructor(options: ClientSecretsOptions, deps: SecretsDeps) {
    if (options.clientId.trim() === '' || options.configuredSecret.trim() === '') {
      throw new SpConnectError('config_invalid', { detail: 'The LWA client id or client secret is empty.' })
    }
    this.clientId = options.clientId
    this.#store = options.store
    this.#keyring = options.keyring
    this.#events = options.events
    this.#configured = Object.freeze({
      id: CONFIGURED_SECRET_ID,
      source: 'configured',
      secret: options.configuredSecret,
      state: 'active',
      createdAt: null,
      expiresAt: null,
    })
    this.#ttlMs = options.cacheTtlMs ?? DEFAULT_SECRET_CACHE_MS
    this.#deps = deps
  }

  /** {@link CredentialSource}: the secrets worth trying, in order; never empty. */
  async candidates(): Promise<readonly LwaCredentials[]> {
    return this.#order(await this.#current()).map((entry) =>
      Object.freeze({ clientId: this.clientId, clientSecret: entry.secret }),
    )
  }

  /** {@link CredentialSource}: LWA accepted this secret, so it is no longer held back. */
  accepted(credentials: LwaCredentials): void {
    this.#refused.delete(credentials.clientSecret)
  }

  /** {@link CredentialSource}: LWA refused this secret: try it last, and reload the list before the next use. */
  rejected(credentials: LwaCredentials, code: string): void {
    this.#refused.add(credentials.clientSecret)
    this.invalidate()
    const entry = this.#entries?.find((e) => e.secret === credentials.clientSecret)
    this.#deps.logger.warn(
      { clientId: this.clientId, secretId: entry?.id ?? 'unknown', code },
      'LWA refused a client secret',
    )
    // A stored secret refused after the expiry Amazon announced for it is finished: retire it
    if (entry?.source === 'stored' && entry.expiresAt !== null && entry.expiresAt <= this.#deps.now()) {
      this.#store.updateAppSecret(entry.id, { state: 'retired' }).catch((error: unknown) => {
        this.#deps.logger.warn(
          { secretId: entry.id, code: errorCode(error) },
          'could not retire a client secret',
        )
      })
    }
  }

  /** Forgets the cached list, so the next use reads the store. */
  invalidate(): void {
    this.#generation += 1
    this.#validUntil = Number.NEGATIVE_INFINITY
  }

  /**
   * Handles one SQS message body (JSON-decoded). Throws `invalid_request` for a malformed body and
   * `notification_client_mismatch` for a secret notification about another client id (so the message stays
   * in the queue for whoever owns it, instead of being dropped).
   */
  async handleNotification(body: unknown): Promise<NotificationOutcome> {
    const notification = parseNotification(body)
    if (notification.kind === 'new_secret') return this.#storeNewSecret(notification)
    if (notification.kind === 'secret_expiry') return this.#recordExpiry(notification)
    this.#deps.logger.info(
      { notificationType: notification.notificationType, notificationId: notification.notificationId },
      'notification ignored: not about the client secret',
    )
    return { notificationType: notification.notificationType, result: 'ignored' }
  }

  /** The secrets as operators see them: ids, states and times, never a value. */
  async status(): Promise<ClientSecretsStatus> {
    const entries = await this.#load()
    const now = this.#deps.now()
    const order = this.#order(entries)
    const secrets = entries.map(
      (entry): ClientSecretInfo => ({
        id: entry.id,
        source: entry.source,
        state:
          entry.state === 'active' && entry.expiresAt !== null && entry.expiresAt <= now
            ? 'expired'
            : entry.state,
        createdAt: entry.createdAt,
        expiresAt: entry.expiresAt,
        rank: order.includes(entry) ? order.indexOf(entry) + 1 : null,
      }),
    )
    const [warning] = await this.#store.listEvents({ type: 'app.client_secret_expiring', limit: 1 })
    const [rotation] = await this.#store.listEvents({ type: 'app.client_secret_rotated', limit: 1 })
    return {
      clientId: this.clientId,
      secrets,
      lastRotationAt: rotation?.createdAt ?? null,
      lastExpiryWarning:
        warning === undefined
          ? null
          : {
              expiresAt: typeof warning.data['expiresAt'] === 'string' ? warning.data['expiresAt'] : null,
              reason: typeof warning.data['reason'] === 'string' ? warning.data['reason'] : null,
              receivedAt: warning.createdAt,
            },
    }
  }

  #order(entries: readonly Entry[]): Entry[] {
    return orderSecrets(entries, this.#refused, this.#deps.now())
  }

  /** The cached entries, reloading them when stale; never throws (falls back as the class comment says). */
  async #current(): Promise<readonly Entry[]> {
    if (this.#entries !== undefined && this.#deps.now() < this.#validUntil) return this.#entries
    // A load already running may have read the store before an invalidation: wait for it, then load again
    while (this.#loading !== undefined) await this.#loading
    if (this.#entries !== undefined && this.#deps.now() < this.#validUntil) return this.#entries
    const generation = this.#generation
    this.#loading = this.#load()
      .then((entries) => {
        this.#entries = entries
        // Fresh only if nothing invalidated the list while the store was being read
        if (generation === this.#generation) this.#validUntil = this.#deps.now() + this.#ttlMs
        for (const secret of this.#refused) {
          if (!entries.some((e) => e.secret === secret)) this.#refused.delete(secret)
        }
        return entries
      })
      .catch((error: unknown) => {
        this.#deps.logger.warn(
          { clientId: this.clientId, code: errorCode(error) },
          'could not load the stored client secrets; using the ones already known',
        )
        this.#validUntil = this.#deps.now() + RELOAD_FAILURE_PAUSE_MS
        return this.#entries ?? [this.#configured]
      })
      .finally(() => {
        this.#loading = undefined
      })
    return this.#loading
  }

  /** Stored secrets (newest first, undecryptable ones skipped and logged), then the configured one. */
  async #load(): Promise<Entry[]> {
    const rows = await this.#store.listAppSecrets(this.clientId)
    const entries: Entry[] = []
    for (const row of rows) {
      const secret = this.#open(row)
      if (secret === undefined) continue
      entries.push(
        Object.freeze({
          id: row.id,
          source: 'stored',
          secret,
          state: row.state,
          createdAt: row.createdAt,
          expiresAt: row.expiresAt,
        }),
      )
    }
    entries.push(this.#configured)
    return entries
  }

  #open(row: AppSecretRecord): string | undefined {
    try {
      return this.#keyring.decrypt(row.secretCiphertext, {
        table: 'app_secrets',
        rowId: row.id,
        column: 'secret',
      })
    } catch (error) {
      this.#deps.logger.error(
        { secretId: row.id, code: errorCode(error) },
        'a stored client secret cannot be decrypted; it is skipped',
      )
      return undefined
    }
  }

  async #storeNewSecret(n: NewSecretNotification): Promise<NotificationOutcome> {
    const notificationType = NEW_SECRET_NOTIFICATION
    this.#requireOwnClient(n.clientId)
    const now = this.#deps.now()
    // Amazon's event time orders secrets even when notifications arrive late or out of order
    const createdAt = n.eventTime ?? now
    const entries = await this.#load()
    const known = entries.find((e) => e.secret === n.newSecret)
    let secretId = known?.id
    let result: NotificationOutcome['result'] = 'duplicate'
    if (known === undefined) {
      // A notification id gives a deterministic row id, so two processes handling the same message race on
      // the primary key instead of storing the secret twice
      const id =
        n.notificationId === null
          ? newId('sec', this.#deps.randomBytes)
          : `sec_${sha256(`${this.clientId}\n${n.notificationId}`).slice(0, 22)}`
      const record: AppSecretRecord = {
        id,
        clientId: this.clientId,
        secretCiphertext: this.#keyring.encrypt(n.newSecret, {
          table: 'app_secrets',
          rowId: id,
          column: 'secret',
        }),
        state: 'active',
        createdAt,
        expiresAt: n.newSecretExpiresAt,
      }
      try {
        await this.#store.insertAppSecret(record)
        result = 'stored'
      } catch (error) {
        const rows = await this.#store.listAppSecrets(this.clientId)
        if (!rows.some((row) => row.id === id)) throw error
      }
      secretId = id
    }
    // The secrets valid before this one stop working at the time Amazon gave for them
    for (const entry of entries) {
      if (entry.source !== 'stored' || entry.id === secretId || entry.state !== 'active') continue
      if ((entry.createdAt ?? 0) > createdAt) continue
      if (entry.expiresAt !== null && entry.expiresAt <= n.oldSecretExpiresAt) continue
      await this.#store.updateAppSecret(entry.id, { expiresAt: n.oldSecretExpiresAt })
    }
    this.invalidate()
    if (result === 'stored') {
      await this.#events.record('app.client_secret_rotated', null, {
        clientId: this.clientId,
        secretId,
        expiresAt: new Date(n.newSecretExpiresAt).toISOString(),
        previousSecretsExpireAt: new Date(n.oldSecretExpiresAt).toISOString(),
        notificationId: n.notificationId,
      })
    } else {
      this.#deps.logger.info(
        { secretId, notificationId: n.notificationId },
        'new client secret already known',
      )
    }
    return secretId === undefined ? { notificationType, result } : { notificationType, result, secretId }
  }

  async #recordExpiry(n: SecretExpiryNotification): Promise<NotificationOutcome> {
    const notificationType = SECRET_EXPIRY_NOTIFICATION
    this.#requireOwnClient(n.clientId)
    if (n.notificationId !== null) {
      const recent = await this.#store.listEvents({ type: 'app.client_secret_expiring', limit: 100 })
      if (recent.some((event) => event.data['notificationId'] === n.notificationId)) {
        return { notificationType, result: 'duplicate' }
      }
    }
    await this.#events.record('app.client_secret_expiring', null, {
      clientId: this.clientId,
      expiresAt: new Date(n.expiresAt).toISOString(),
      reason: n.reason,
      notificationId: n.notificationId,
    })
    return { notificationType, result: 'recorded' }
  }

  #requireOwnClient(clientId: string): void {
    if (clientId !== this.clientId) {
      // Client ids are public identifiers, safe to log
      throw new SpConnectError('notification_client_mismatch', {
        detail: `notification for client id ${clientId.slice(0, 100)}, configured ${this.clientId}`,
      })
    }
  }
}

/**
 * The order candidates are tried in: `entries` as given (stored newest first, then the configured one),
 * without the retired and expired ones and without repeats of a secret, and with the ones LWA refused moved
 * to the back (in their own order), so one refusal costs one extra request rather than one per call.
 */
export function orderSecrets<T extends Pick<Entry, 'secret' | 'state' | 'expiresAt'>>(
  entries: readonly T[],
  refused: ReadonlySet<string>,
  now: number,
): T[] {
  const seen = new Set<string>()
  const usable: T[] = []
  for (const entry of entries) {
    if (entry.state !== 'active' || (entry.expiresAt !== null && entry.expiresAt <= now)) continue
    if (seen.has(entry.secret)) continue
    seen.add(entry.secret)
    usable.push(entry)
  }
  return [...usable.filter((e) => !refused.has(e.secret)), ...usable.filter((e) => refused.has(e.secret))]
}

function errorCode(error: unknown): string {
  return isSpConnectError(error) ? error.code : error instanceof Error ? error.name : 'unknown'
}
