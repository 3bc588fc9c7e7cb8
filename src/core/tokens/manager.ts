/**
 * Hands out valid access tokens for connections.
 *
 * - From memory while more than the margin is left (no store read, no decryption on the hot path).
 * - Otherwise one refresh per connection per process (single-flight: concurrent callers share one promise)
 *   and one per cluster (a lease in the store; the row is re-read after taking it, so a caller that waited on
 *   another process gets that process's token; writes carry the fencing version). A caller waiting for another
 *   process's lease re-reads the row after growing pauses, cut short when the store reports the row changed.
 * - `invalid_grant` on refresh: re-read the row, because a re-authorization may have replaced the token while
 *   we were calling LWA. Only if nothing changed is the connection marked `needs_reauthorization`.
 * - `invalid_client` / `unauthorized_client`: an app-wide problem (the client secret), never a seller's. It
 *   opens the breaker and raises an alarm event; the connection stays active.
 * - Transient failures (5xx, 429, timeouts) were already retried by the LWA client; they count towards the
 *   breaker and back the connection off for the background refresher. A caller whose token is still valid
 *   (inside the margin but not expired) gets that token rather than an error.
 */
import type { ConnectionRecord, Store } from '../../store/store.ts'
import type { Keyring } from '../crypto/keyring.ts'
import type { Deps } from '../deps.ts'
import { base64url } from '../encoding.ts'
import { isSpConnectError, SpConnectError } from '../errors.ts'
import type { EventRecorder } from '../events/events.ts'
import type { LwaClient } from '../lwa/client.ts'
import { CircuitBreaker } from './circuit-breaker.ts'
import { type Priority, PriorityGate } from './priority-gate.ts'
import { openToken, sealToken } from './sealed.ts'

export const DEFAULT_REFRESH_MARGIN_MS = 5 * 60 * 1000
/**
 * How long a refresh may hold a connection's lease. The call to LWA is abandoned before the lease runs out
 * (see LEASE_SAFETY_MS), so a live holder never writes after another process could have taken over.
 */
export const DEFAULT_LEASE_MS = 60_000
/** The LWA call must end this long before the lease does: time for the write and the clock skew between hosts. */
const LEASE_SAFETY_MS = 2_000
/** A token with less than this left is not handed out even when LWA is down: the caller could not use it. */
export const MIN_USABLE_MS = 60_000
/** Usage is written to the store at most this often per connection and process (it feeds the refresher). */
export const TOUCH_INTERVAL_MS = 5 * 60 * 1000
/**
 * A token served from memory is re-checked against the store this often, so a disconnect or re-authorization
 * made by another process (the CLI, another instance) takes effect within seconds, not at the token's expiry.
 */
export const STATUS_RECHECK_MS = 5_000
/** At most one client-secret alarm event per process in this window. */
const ALARM_INTERVAL_MS = 10 * 60 * 1000
const LEASE_POLL_MIN_MS = 50
const LEASE_POLL_MAX_MS = 500
const FAILURE_BACKOFF_BASE_MS = 60_000
const FAILURE_BACKOFF_MAX_MS = 60 * 60 * 1000
const APP_WIDE_CODES = new Set(['lwa_invalid_client', 'lwa_unauthorized_client'])
/** Failures that say LWA is unwell (after the client's own retries), as opposed to one bad request. */
const TRANSIENT_CODES = new Set([
  'lwa_server_error',
  'lwa_temporarily_unavailable',
  'lwa_throttled',
  'lwa_unreachable',
  'lwa_unexpected_response',
])

export interface AccessToken {
  readonly accessToken: string
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
}

export interface TokenManagerOptions {
  readonly store: Store
  readonly keyring: Keyring
  readonly lwa: LwaClient
  readonly events: EventRecorder
  readonly refreshMarginMs?: number
  readonly leaseMs?: number
  /** Identifies this process in leases; random by default. */
  readonly owner?: string
  /** Token-endpoint calls in flight at once from this process. */
  readonly maxConcurrentRefreshes?: number
  readonly breaker?: CircuitBreaker
}

export interface GetTokenOptions {
  /** Refresh even if the cached token looks valid (e.g. SP-API just rejected it). */
  readonly forceRefresh?: boolean
  /** Refresh unless the token stays valid this long (the background refresher asks for more than the margin). */
  readonly minValidityMs?: number
  /** Background work yields the token endpoint to callers who are waiting. */
  readonly priority?: Priority
}

export class TokenManager {
  readonly #store: Store
  readonly #keyring: Keyring
  readonly #lwa: LwaClient
  readonly #events: EventRecorder
  readonly #deps: Deps
  readonly #marginMs: number
  readonly #leaseMs: number
  readonly #owner: string
  readonly #gate: PriorityGate
  readonly breaker: CircuitBreaker
  /** The token object handed out (frozen, shared by every caller) and when the store last vouched for it. */
  readonly #cache = new Map<string, CacheEntry>()
  readonly #inflight = new Map<string, Promise<AccessToken>>()
  readonly #touched = new Map<string, number>()
  #lastAlarmAt = Number.NEGATIVE_INFINITY

  constructor(options: TokenManagerOptions, deps: Deps) {
    this.#store = options.store
    this.#keyring = options.keyring
    this.#lwa = options.lwa
    this.#events = options.events
    this.#deps = deps
    this.#marginMs = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS
    this.#owner = options.owner ?? `proc_${base64url(deps.randomBytes(9))}`
    this.#gate = new PriorityGate(options.maxConcurrentRefreshes ?? 16)
    this.breaker = options.breaker ?? new CircuitBreaker({}, deps.now)
  }

  get refreshMarginMs(): number {
    return this.#marginMs
  }

  /** This process's name in leases (the background refresher claims work under it). */
  get owner(): string {
    return this.#owner
  }

  get leaseMs(): number {
    return this.#leaseMs
  }

  /** A valid access token for the connection, refreshing it first if less than the margin is left. */
  getAccessToken(connectionId: string, options?: GetTokenOptions): Promise<AccessToken> {
    // The hot path (a cached token, no options): one map lookup, one clock read, no allocation; every caller
    // shares the entry's already-resolved promise.
    const now = this.#deps.now()
    if (options === undefined) {
      const cached = this.#cache.get(connectionId)
      if (
        cached &&
        now - cached.checkedAt < STATUS_RECHECK_MS &&
        cached.token.expiresAt - this.#marginMs > now
      ) {
        if (now - cached.touchedAt >= TOUCH_INTERVAL_MS) {
          cached.touchedAt = now
          this.#touch(connectionId, now)
        }
        return cached.promise
      }
    }
    const minValidityMs = Math.max(options?.minValidityMs ?? 0, this.#marginMs)
    if (options?.priority !== 'background') this.#touch(connectionId, now)
    if (options?.forceRefresh !== true) {
      const cached = this.#cache.get(connectionId)
      if (
        cached &&
        now - cached.checkedAt < STATUS_RECHECK_MS &&
        cached.token.expiresAt - minValidityMs > now
      ) {
        return cached.promise
      }
    }
    const running = this.#inflight.get(connectionId)
    if (running) return running
    const work = this.#obtain(
      connectionId,
      options?.forceRefresh === true,
      minValidityMs,
      options?.priority ?? 'on_demand',
    ).finally(() => {
      this.#inflight.delete(connectionId)
    })
    this.#inflight.set(connectionId, work)
    return work
  }

  /** Forgets the cached token (after a disconnect or re-authorization). */
  forget(connectionId: string): void {
    this.#cache.delete(connectionId)
  }

  /** Callers waiting for the token endpoint right now (the background refresher backs off while any do). */
  get onDemandWaiting(): number {
    return this.#gate.onDemandWaiting
  }

  #validFor(expiresAt: number | null, ms: number): boolean {
    return expiresAt !== null && expiresAt - ms > this.#deps.now()
  }

  #touch(connectionId: string, now: number): void {
    const last = this.#touched.get(connectionId)
    if (last !== undefined && now - last < TOUCH_INTERVAL_MS) return
    this.#touched.set(connectionId, now)
    // Usage bookkeeping must never fail or slow a caller.
    this.#store.touchConnection(connectionId, now).catch((error: unknown) => {
      this.#deps.logger.warn(
        { connectionId, code: isSpConnectError(error) ? error.code : 'store' },
        'usage not recorded',
      )
    })
  }

  async #obtain(
    connectionId: string,
    force: boolean,
    minValidityMs: number,
    priority: Priority,
  ): Promise<AccessToken> {
    let row: ConnectionRecord
    try {
      row = usable(await this.#store.getConnection(connectionId))
    } catch (error) {
      this.#cache.delete(connectionId)
      throw error
    }
    if (!force) {
      const stored = this.#storedToken(row, minValidityMs)
      if (stored) return stored
    }
    if (!this.breaker.tryPass()) {
      const stillValid = this.#storedToken(row, MIN_USABLE_MS)
      if (stillValid) return stillValid
      throw new SpConnectError('lwa_temporarily_unavailable', {
        detail: 'token endpoint circuit open',
        retryAfterSeconds: Math.max(1, Math.ceil(this.breaker.retryAfterMs() / 1000)),
      })
    }
    return this.#refreshUnderLease(row, force, minValidityMs, priority)
  }

  async #refreshUnderLease(
    initial: ConnectionRecord,
    force: boolean,
    minValidityMs: number,
    priority: Priority,
  ): Promise<AccessToken> {
    // A live holder finishes within its lease, and an expired lease is taken over on the next try; the deadline
    // only guards against a chain of holders that all stall.
    const deadline = this.#deps.now() + 3 * this.#leaseMs
    let pollMs = LEASE_POLL_MIN_MS
    for (;;) {
      const now = this.#deps.now()
      const leased = await this.#store.acquireLease(initial.id, this.#owner, now + this.#leaseMs, now)
      if (leased) {
        try {
          // Someone may have refreshed between our read and the lease: use their token (unless forced and
          // it is still the very token we were asked to replace).
          const fresh = usable(leased)
          const stored =
            force && fresh.version === initial.version ? undefined : this.#storedToken(fresh, minValidityMs)
          if (stored) return stored
          const refreshed = await this.#refresh(fresh, priority, now + this.#leaseMs)
          if (refreshed) return refreshed
          // The lease ran out while we queued for a slot: take it again (someone may have refreshed meanwhile).
        } finally {
          await this.#store.releaseLease(initial.id, this.#owner)
        }
      }
      // Another process holds the lease: wait for its result, re-reading the row with growing pauses.
      const row = usable(await this.#store.getConnection(initial.id))
      if (row.version !== initial.version) {
        const stored = this.#storedToken(row, MIN_USABLE_MS)
        if (stored) return stored
      }
      if (this.#deps.now() > deadline) throw new SpConnectError('lease_timeout', { retryAfterSeconds: 5 })
      // The store ends the pause early when the row changes (PostgreSQL: NOTIFY from any instance; SQLite: this
      // handle's own writes). The pause stays the bound, so a notification that never comes (another SQLite
      // process, a lost listening connection) costs only the poll's delay.
      await this.#store.waitForConnectionChange(initial.id, pollMs * (0.5 + this.#deps.random()))
      pollMs = Math.min(pollMs * 2, LEASE_POLL_MAX_MS)
    }
  }

  /** Refreshes under a held lease; undefined if the lease ran out before LWA could be asked. */
  async #refresh(
    row: ConnectionRecord,
    priority: Priority,
    leaseUntil: number,
  ): Promise<AccessToken | undefined> {
    if (row.refreshTokenCiphertext === null) throw new SpConnectError('connection_disconnected')
    const refreshToken = openToken(this.#keyring, row.id, 'refresh_token', row.refreshTokenCiphertext)
    const release = await this.#gate.acquire(priority)
    const requestedAt = this.#deps.now()
    // Waiting for a slot counted against the lease; what is left bounds the whole LWA call, retries included.
    const remaining = leaseUntil - requestedAt - Math.min(LEASE_SAFETY_MS, this.#leaseMs / 4)
    if (remaining <= 0) {
      release()
      return undefined
    }
    let tokens: Awaited<ReturnType<LwaClient['refresh']>>
    try {
      tokens = await this.#lwa.refresh(refreshToken, { signal: AbortSignal.timeout(remaining) })
    } catch (error) {
      return await this.#onRefreshError(row, asTokenEndpointError(error))
    } finally {
      release()
    }
    this.breaker.recordSuccess()
    // Expiry counts from when we asked, not when the answer arrived, so network time never makes us late.
    const expiresAt = requestedAt + tokens.expiresIn * 1000
    const rotated = tokens.refreshToken !== null && tokens.refreshToken !== refreshToken
    const updated = await this.#store.updateTokens(row.id, row.version, {
      accessTokenCiphertext: sealToken(this.#keyring, row.id, 'access_token', tokens.accessToken),
      accessTokenExpiresAt: expiresAt,
      ...(rotated && tokens.refreshToken !== null
        ? { refreshTokenCiphertext: sealToken(this.#keyring, row.id, 'refresh_token', tokens.refreshToken) }
        : {}),
      now: this.#deps.now(),
    })
    if (!updated) {
      // A newer writer (a re-authorization) got there first: its token wins over ours.
      const newer = this.#storedToken(usable(await this.#store.getConnection(row.id)), MIN_USABLE_MS)
      if (newer) return newer
      throw new SpConnectError('internal', {
        detail: 'refreshed token was fenced out and no newer token exists',
      })
    }
    if (row.failureCount > 0) {
      await this.#events.record('connection.refreshed_after_failure', row.id, {
        previousError: row.lastRefreshError,
        failures: row.failureCount,
      })
    }
    const token = Object.freeze({ accessToken: tokens.accessToken, expiresAt })
    this.#remember(row.id, token)
    return token
  }

  async #onRefreshError(row: ConnectionRecord, error: unknown): Promise<AccessToken> {
    const code = isSpConnectError(error) ? error.code : 'internal'
    const now = this.#deps.now()
    if (code === 'lwa_invalid_grant') {
      this.breaker.recordNeutral()
      const current = await this.#store.getConnection(row.id)
      if (current && current.version !== row.version) {
        // Re-authorized (or refreshed) while we were asking LWA: that newer token is the truth.
        const stored = this.#storedToken(usable(current), MIN_USABLE_MS)
        if (stored) return stored
      }
      const marked = await this.#store.recordRefreshFailure(row.id, row.version, {
        error: code,
        status: 'needs_reauthorization',
        now,
      })
      if (marked) {
        this.#cache.delete(row.id)
        await this.#events.record('connection.needs_reauthorization', row.id, { reason: code })
      }
      throw new SpConnectError('connection_needs_reauthorization', {
        cause: error,
        detail: 'LWA: invalid_grant',
      })
    }

    const appWide = APP_WIDE_CODES.has(code)
    const transient = TRANSIENT_CODES.has(code)
    if (appWide || transient) this.breaker.recordFailure(appWide)
    else this.breaker.recordNeutral()
    if (appWide && now - this.#lastAlarmAt >= ALARM_INTERVAL_MS) {
      this.#lastAlarmAt = now
      await this.#events.record('app.client_secret_rejected', null, { error: code, connectionId: row.id })
    }
    const failures = row.failureCount + 1
    const backoff = Math.min(FAILURE_BACKOFF_BASE_MS * 2 ** (failures - 1), FAILURE_BACKOFF_MAX_MS)
    const recorded = await this.#store.recordRefreshFailure(row.id, row.version, {
      error: code,
      notBefore: Math.round(now + backoff * (0.5 + this.#deps.random() / 2)),
      now,
    })
    if (recorded && failures === 1) {
      await this.#events.record('connection.refresh_failed', row.id, { error: code })
    }
    // LWA could not help, but the token we have may still serve this caller for a while.
    const stillValid = this.#storedToken(recorded ?? row, MIN_USABLE_MS)
    if (stillValid) return stillValid
    throw error
  }

  /** The row's access token if it stays valid for `minValidityMs`, decrypted and cached. */
  #storedToken(row: ConnectionRecord, minValidityMs: number): AccessToken | undefined {
    const expiresAt = row.accessTokenExpiresAt
    if (
      row.accessTokenCiphertext === null ||
      expiresAt === null ||
      !this.#validFor(expiresAt, minValidityMs)
    ) {
      return undefined
    }
    const cached = this.#cache.get(row.id)
    // Decrypt only when the stored token differs from the one already in memory.
    const token =
      cached && cached.token.expiresAt === expiresAt
        ? cached.token
        : Object.freeze({
            accessToken: openToken(this.#keyring, row.id, 'access_token', row.accessTokenCiphertext),
            expiresAt,
          })
    this.#remember(row.id, token)
    return token
  }

  #remember(connectionId: string, token: AccessToken): void {
    const now = this.#deps.now()
    const previous = this.#cache.get(connectionId)
    if (previous && previous.token === token) {
      previous.checkedAt = now
      return
    }
    this.#cache.set(connectionId, {
      token,
      promise: Promise.resolve(token),
      checkedAt: now,
      touchedAt: this.#touched.get(connectionId) ?? now,
    })
  }
}

interface CacheEntry {
  /** The token object handed out: frozen and shared by every caller. */
  readonly token: AccessToken
  readonly promise: Promise<AccessToken>
  /** When the store last vouched for the connection (status re-checked every STATUS_RECHECK_MS). */
  checkedAt: number
  /** When usage was last written for it (see TOUCH_INTERVAL_MS). */
  touchedAt: number
}

/** The lease deadline aborts the LWA call with a DOMException; it means LWA was too slow. */
function asTokenEndpointError(error: unknown): unknown {
  if (error instanceof DOMException && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return new SpConnectError('lwa_unreachable', {
      detail: 'token request abandoned before the refresh lease ran out',
      retryAfterSeconds: 1,
    })
  }
  return error
}

/** Only active connections hand out tokens; the others fail with a typed error saying why. */
function usable(row: ConnectionRecord | undefined): ConnectionRecord {
  if (!row) throw new SpConnectError('connection_not_found')
  if (row.status === 'disconnected') throw new SpConnectError('connection_disconnected')
  if (row.status === 'needs_reauthorization') throw new SpConnectError('connection_needs_reauthorization')
  return row
}
