/**
 * The audit log and the webhook outbox's source: every lifecycle change becomes an event row, and, in the same
 * transaction, one pending delivery per configured webhook URL. Event data never holds tokens or secrets,
 * only ids, codes and times.
 */
import type { EventStore } from '../../store/store.ts'
import type { Deps } from '../deps.ts'
import { newId } from '../encoding.ts'

export const EVENT_TYPES = [
  'connection.created',
  'connection.reauthorized',
  'connection.refreshed_after_failure',
  'connection.refresh_failed',
  'connection.needs_reauthorization',
  'connection.reauthorization_due',
  'connection.disconnected',
  'connection.conflict',
  'connection.identity_mismatch',
  'login_request.approved',
  'login_request.rejected',
  'login_request.cancelled',
  'app.client_secret_rejected',
  'app.client_secret_rotated',
  'app.client_secret_expiring',
  /** A stored ciphertext failed authentication (tampered, copied, or a key id reused): names row and key id. */
  'app.integrity_alert',
  /** A stored ciphertext is under a key id the keyring lacks: names row and key id. */
  'app.key_unavailable',
  'app.refresh_token_write_failed',
  'access.denied',
  'token.issued',
  'api_key.created',
  'api_key.revoked',
  'operator.created',
  'operator.deleted',
  'operator.signed_in',
  'operator.sign_in_failed',
  'operator.signed_out',
] as const
export type EventType = (typeof EVENT_TYPES)[number]

interface EventRecorderOptions {
  readonly store: EventStore
  /** Each event gets one pending delivery per URL, in the same transaction. Default none. */
  readonly webhookUrls?: readonly string[]
}

export class EventRecorder {
  readonly #store: EventStore
  readonly #deps: Pick<Deps, 'now' | 'randomBytes' | 'logger'>
  readonly #webhookUrls: readonly string[]

  constructor(options: EventRecorderOptions, deps: Pick<Deps, 'now' | 'randomBytes' | 'logger'>) {
    this.#store = options.store
    this.#deps = deps
    this.#webhookUrls = options.webhookUrls ?? []
  }

  async record(
    type: EventType,
    connectionId: string | null,
    data: Record<string, unknown> = {},
  ): Promise<string> {
    const id = newId('evt', this.#deps.randomBytes)
    await this.#store.appendEvent(
      { id, type, connectionId, data, createdAt: this.#deps.now() },
      this.#webhookUrls,
    )
    const level = type.startsWith('app.') || type === 'connection.needs_reauthorization' ? 'warn' : 'info'
    this.#deps.logger[level]({ event: type, eventId: id, connectionId, ...data }, 'event')
    return id
  }
}
