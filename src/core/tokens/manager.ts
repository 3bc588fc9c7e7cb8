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
 *   (inside the margin but not expired) gets that token rather than an error; the others get a 503 that always
 *   carries Retry-After, also before the breaker opens.
 * - A caller waits at most `deadlineMs` (default 15 s) in all, whatever the attempts: LWA retries never wait
 *   past it, and a caller still waiting then gets `lwa_unreachable` while the refresh goes on for the next one.
 *   A caller's refresh renews its lease while LWA is slow, and asks the store (not its own possibly late
 *   timers) whether it still holds it before giving up; one that lost its lease is started again while the
 *   caller's deadline allows (another process has usually stored a token by then), instead of failing a caller
 *   who can still wait (issue 8: under a busy machine the cluster test answered 58 requests 503).
 * - A rotated refresh token (LWA sent a new one) is stored, encrypted, before the access token is handed out.
 *   If that write fails it is retried with backoff; meanwhile the new token is kept in memory (the next refresh
 *   uses it), an `app.refresh_token_write_failed` event is raised, and only then does the caller fail.
 */
import {
  type ErrorCode,
  isAppWide,
  isRetryable,
  isSpConnectError,
  SpConnectError,
} from '../../domain/errors.ts'
import type { ConnectionRecord, ConnectionStore } from '../../store/store.ts'
import type { Keyring } from '../crypto/keyring.ts'
import type { Deps } from '../deps.ts'
import { base64url } from '../encoding.ts'
import type { EventRecorder } from '../events/events.ts'
import type { LwaClient } from '../lwa/client.ts'
import { LwaError } from '../lwa/errors.ts'
import { NO_METRICS } from '../metrics.ts'
import { CircuitBreaker } from './circuit-breaker.ts'
import { type Priority, PriorityGate } from './priority-gate.ts'
import { openToken, sealToken } from './sealed.ts'

export const DEFAULT_REFRESH_MARGIN_MS = 5 * 60 * 1000
/**
 * How long a refresh may hold a connection's lease. The call to LWA is abandoned before the lease runs out
 * (see LEASE_SAFETY_MS), so a live holder never writes after another process could have taken over.
 */
const DEFAULT_LEASE_MS = 60_000
/** The LWA call must end this long before the lease does: time for the write and the clock skew between hosts. */
const LEASE_SAFETY_MS = 2_000
/** A token with less than this left is not handed out even when LWA is down: the caller could not use it. */
const MIN_USABLE_MS = 60_000
/** Usage is written to the store at most this often per connection and process (it feeds the refresher). */
const TOUCH_INTERVAL_MS = 5 * 60 * 1000
/**
 * A token served from memory is re-checked against the store this often, so a disconnect or re-authorization
 * made by another process (the CLI, another instance) takes effect within seconds, not at the token's expiry.
 */
export const STATUS_RECHECK_MS = 5_000
/** How long a caller waits for a token in all (attempts, backoff, lease waits) unless configured otherwise. */
export const DEFAULT_TOKEN_DEADLINE_MS = 15_000
/** Retry-After on a transient token-endpoint failure that came without one while the breaker is closed. */
const TRANSIENT_RETRY_AFTER_SECONDS = 5
/** Writes of a rotated refresh token: attempts and the backoff before the second one (doubling). */
const ROTATED_WRITE_ATTEMPTS = 4
const ROTATED_WRITE_BACKOFF_MS = 100
/** At most one client-secret alarm event per process in this window. */
const ALARM_INTERVAL_MS = 10 * 60 * 1000
const LEASE_POLL_MIN_MS = 50
const LEASE_POLL_MAX_MS = 500
const FAILURE_BACKOFF_BASE_MS = 60_000
const FAILURE_BACKOFF_MAX_MS = 60 * 60 * 1000
/**
 * Failures that say LWA is unwell (after the client's own retries), as opposed to one bad request: the
 * retryable codes of ERROR_CODES, plus a garbled answer, which is not worth re-sending at once but is just as
 * much a sign of an unwell endpoint.
 */
function isTransient(code: ErrorCode): boolean {
  return isRetryable(code) || code === 'lwa_unexpected_response'
}

export interface AccessToken {
  readonly accessToken: string
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
}

interface TokenManagerOptions {
  readonly store: ConnectionStore
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
  /**
   * Longest a caller (not the background refresher) waits for a token, in ms. Default 15 s. `Infinity` turns
   * the deadline off (the behaviour before issue 8; the outage benchmark compares).
   */
  readonly deadlineMs?: number
  /**
   * Default true: after a failed refresh, and for the breaker's half-open probe, one attempt per call. False
   * restores the behaviour before issue 8 (every call retries within the policy); the outage benchmark compares.
   */
  readonly singleAttemptWhileFailing?: boolean
}

interface GetTokenOptions {
  /** Refresh even if the cached token looks valid (e.g. SP-API just rejected it). */
  readonly forceRefresh?: boolean
  /** Refresh unless the token stays valid this long (the background refresher asks for more than the margin). */
  readonly minValidityMs?: number
  /** Background work yields the token endpoint to callers who are waiting. */
  readonly priority?: Priority
}

export class TokenManager {
  readonly #store: ConnectionStore
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
  /**
   * Rotated refresh tokens LWA issued that could not be stored yet, with the row version they replace. The
   * next refresh of that connection sends this one (the old one may already be dead) and stores it.
   */
  readonly #unsaved = new Map<string, { readonly refreshToken: string; readonly version: number }>()
  readonly #deadlineMs: number
  readonly #singleAttemptWhileFailing: boolean
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
    this.breaker = options.breaker ?? new CircuitBreaker({}, deps)
    this.#deadlineMs = options.deadlineMs ?? DEFAULT_TOKEN_DEADLINE_MS
    this.#singleAttemptWhileFailing = options.singleAttemptWhileFailing ?? true
    if (Number.isNaN(this.#deadlineMs) || this.#deadlineMs <= 0) {
      throw new TypeError('The token deadline must be a positive number of milliseconds.')
    }
  }

  get #metrics() {
    return this.#deps.metrics ?? NO_METRICS
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
        this.#metrics.tokenRequest('cached')
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
        this.#metrics.tokenRequest('cached')
        return cached.promise
      }
    }
    const priority = options?.priority ?? 'on_demand'
    const running = this.#inflight.get(connectionId)
    const timed = priority !== 'background' && Number.isFinite(this.#deadlineMs)
    if (running) {
      if (!timed) return running
      return this.#withDeadline(running, now, () => 'waited')
    }
    const outcome: Outcome = { kind: 'cached' }
    const deadline = timed ? now + this.#deadlineMs : undefined
    const work = this.#obtain(
      connectionId,
      options?.forceRefresh === true,
      minValidityMs,
      priority,
      deadline,
      outcome,
    ).finally(() => {
      this.#inflight.delete(connectionId)
    })
    this.#inflight.set(connectionId, work)
    // The background refresher is bounded by its lease and is not a caller who waits
    if (!timed) return work
    return this.#withDeadline(work, now, () => outcome.kind)
  }

  /**
   * The caller's view of a (possibly shared) refresh: the token, or `lwa_unreachable` with Retry-After once
   * the caller's deadline has passed. The refresh itself is not cancelled: a later caller gets its result.
   * The timer is wall time (unlike the attempts' stall-tolerant timeouts): the deadline is a promise to the
   * caller, whatever made us slow.
   */
  #withDeadline(
    work: Promise<AccessToken>,
    startedAt: number,
    outcome: () => Outcome['kind'],
  ): Promise<AccessToken> {
    const metrics = this.#metrics
    const waitMs = Math.max(0, startedAt + this.#deadlineMs - this.#deps.now())
    return new Promise<AccessToken>((resolve, reject) => {
      const timer = setTimeout(() => {
        metrics.tokenRequest('error')
        reject(
          new SpConnectError('lwa_unreachable', {
            detail: `no access token within the ${this.#deadlineMs} ms deadline; the refresh goes on`,
            retryAfterSeconds: this.#retryAfterSeconds(),
          }),
        )
      }, waitMs)
      timer.unref?.()
      work.then(
        (token) => {
          clearTimeout(timer)
          metrics.tokenRequest(outcome())
          resolve(token)
        },
        (error: unknown) => {
          clearTimeout(timer)
          metrics.tokenRequest('error')
          reject(error)
        },
      )
    })
  }

  /** Retry-After for a caller we could not serve: the breaker's remaining open time, else a short pause. */
  #retryAfterSeconds(): number {
    const openMs = this.breaker.retryAfterMs()
    return openMs > 0 ? Math.max(1, Math.ceil(openMs / 1000)) : TRANSIENT_RETRY_AFTER_SECONDS
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
    deadline: number | undefined,
    outcome: Outcome,
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
    // In half-open this call is the breaker's one probe: a single attempt, see circuit-breaker.ts. After a
    // failed refresh, calls make one attempt each until one succeeds: retrying into an outage only multiplies
    // the load (issue 8: 49 of 64 token-endpoint calls were retries during an outage)
    const call: RefreshCall = {
      priority,
      force,
      deadline,
      probe: this.breaker.probing,
      singleAttempt: this.#singleAttemptWhileFailing && (this.breaker.probing || this.breaker.failing),
      outcome,
    }
    return this.#refreshUnderLease(row, minValidityMs, call)
  }

  async #refreshUnderLease(
    initial: ConnectionRecord,
    minValidityMs: number,
    call: RefreshCall,
  ): Promise<AccessToken> {
    const { force } = call
    // A live holder finishes within its lease, and an expired lease is taken over on the next try; the deadline
    // only guards against a chain of holders that all stall.
    const deadline = this.#deps.now() + 3 * this.#leaseMs
    let pollMs = LEASE_POLL_MIN_MS
    let waitingSince: number | undefined
    const waited = () => {
      if (waitingSince === undefined) return
      this.#metrics.leaseWait(Math.max(0, this.#deps.now() - waitingSince) / 1000)
      waitingSince = undefined
    }
    for (;;) {
      const now = this.#deps.now()
      const leased = await this.#store.acquireLease(initial.id, this.#owner, now + this.#leaseMs, now)
      if (leased) {
        waited()
        try {
          // Someone may have refreshed between our read and the lease: use their token (unless forced and
          // it is still the very token we were asked to replace).
          const fresh = usable(leased)
          const stored =
            force && fresh.version === initial.version ? undefined : this.#storedToken(fresh, minValidityMs)
          if (stored) {
            if (fresh.version !== initial.version) call.outcome.kind = 'waited'
            this.#releaseProbe(call)
            return stored
          }
          const refreshed = await this.#refresh(fresh, now + this.#leaseMs, call)
          if (refreshed) return refreshed
          // The lease ran out while we queued for a slot, or before LWA answered while the caller can still
          // wait: take it again (someone may have refreshed meanwhile).
        } finally {
          await this.#store.releaseLease(initial.id, this.#owner)
        }
      } else {
        waitingSince ??= this.#deps.now()
      }
      // Another process holds the lease: wait for its result, re-reading the row with growing pauses.
      const row = usable(await this.#store.getConnection(initial.id))
      if (row.version !== initial.version) {
        const stored = this.#storedToken(row, MIN_USABLE_MS)
        if (stored) {
          waited()
          call.outcome.kind = 'waited'
          this.#releaseProbe(call)
          return stored
        }
      }
      if (this.#deps.now() > deadline) throw new SpConnectError('lease_timeout', { retryAfterSeconds: 5 })
      // The store ends the pause early when the row changes (PostgreSQL: NOTIFY from any instance; SQLite: this
      // handle's own writes). The pause stays the bound, so a notification that never comes (another SQLite
      // process, a lost listening connection) costs only the poll's delay.
      await this.#store.waitForConnectionChange(initial.id, pollMs * (0.5 + this.#deps.random()))
      pollMs = Math.min(pollMs * 2, LEASE_POLL_MAX_MS)
    }
  }

  /**
   * Refreshes under a held lease; undefined if the lease ran out before LWA could be asked, or before it
   * answered while the caller's deadline still leaves time for another go.
   */
  async #refresh(
    row: ConnectionRecord,
    leaseUntil: number,
    call: RefreshCall,
  ): Promise<AccessToken | undefined> {
    if (row.refreshTokenCiphertext === null) throw new SpConnectError('connection_disconnected')
    const storedRefreshToken = openToken(this.#keyring, row.id, 'refresh_token', row.refreshTokenCiphertext)
    // A rotated token we could not store is the live one; unless the row moved on (a re-authorization) since
    const unsaved = this.#unsaved.get(row.id)
    if (unsaved !== undefined && unsaved.version !== row.version) this.#unsaved.delete(row.id)
    const refreshToken =
      unsaved !== undefined && unsaved.version === row.version ? unsaved.refreshToken : storedRefreshToken
    const release = await this.#gate.acquire(call.priority)
    const requestedAt = this.#deps.now()
    // Waiting for a slot counted against the lease; what is left bounds the whole LWA call, retries included.
    const remaining = leaseUntil - requestedAt - Math.min(LEASE_SAFETY_MS, this.#leaseMs / 4)
    if (remaining <= 0) {
      release()
      return undefined
    }
    // A caller's refresh renews its lease while LWA is slow (up to the caller's deadline), so a slow answer or a
    // starved machine is waited for instead of abandoned; the background refresher keeps its fixed lease bound
    const lease = this.#leaseGuard(row.id, remaining, call.deadline !== undefined)
    const leaseSignal = lease.signal
    let tokens: Awaited<ReturnType<LwaClient['refresh']>>
    try {
      tokens = await this.#lwa.refresh(refreshToken, {
        signal: leaseSignal,
        deadline: call.deadline,
        ...(call.singleAttempt ? { maxAttempts: 1 } : {}),
      })
    } catch (error) {
      // The lease (not LWA) ended the call, and the caller can still wait: go again under a new lease rather
      // than report LWA unreachable (issue 8: a busy machine, or one slow answer, must not fail such a caller)
      if (
        leaseSignal.aborted &&
        !call.probe &&
        call.deadline !== undefined &&
        this.#deps.now() < call.deadline
      ) {
        this.#deps.logger.info(
          { connectionId: row.id, code: 'lwa_unreachable' },
          'token request outlived its lease; trying again within the caller deadline',
        )
        return undefined
      }
      return await this.#onRefreshError(row, asTokenEndpointError(error), call)
    } finally {
      release()
      await lease.dispose()
    }
    this.breaker.recordSuccess()
    // Expiry counts from when we asked, not when the answer arrived, so network time never makes us late.
    const expiresAt = requestedAt + tokens.expiresIn * 1000
    const newRefreshToken = tokens.refreshToken ?? (refreshToken !== storedRefreshToken ? refreshToken : null)
    const rotated = newRefreshToken !== null && newRefreshToken !== storedRefreshToken
    if (rotated) this.#unsaved.set(row.id, { refreshToken: newRefreshToken, version: row.version })
    const write = () =>
      this.#store.updateTokens(row.id, row.version, {
        accessTokenCiphertext: sealToken(this.#keyring, row.id, 'access_token', tokens.accessToken),
        accessTokenExpiresAt: expiresAt,
        ...(rotated
          ? { refreshTokenCiphertext: sealToken(this.#keyring, row.id, 'refresh_token', newRefreshToken) }
          : {}),
        now: this.#deps.now(),
      })
    const updated = rotated ? await this.#writeRotated(row, write, call) : await write()
    this.#unsaved.delete(row.id)
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
    call.outcome.kind = 'refreshed'
    this.#countRefresh(call, 'ok')
    return token
  }

  /**
   * Stores a rotated refresh token: LWA may already have invalidated the old one, so losing the new one would
   * cost the seller a re-authorization. Retried with backoff; if every write fails the token stays in memory
   * (#unsaved, used by the next refresh), an alert event is raised (best effort: the store is likely what is
   * failing), and the caller fails with the store's error. The access token is never handed out before.
   */
  async #writeRotated<T>(row: ConnectionRecord, write: () => Promise<T>, call: RefreshCall): Promise<T> {
    let lastError: unknown
    for (let attempt = 1; attempt <= ROTATED_WRITE_ATTEMPTS; attempt++) {
      try {
        return await write()
      } catch (error) {
        lastError = error
        this.#deps.logger.warn(
          { connectionId: row.id, attempt, code: isSpConnectError(error) ? error.code : 'store' },
          'storing a rotated refresh token failed',
        )
        if (attempt < ROTATED_WRITE_ATTEMPTS) {
          const ceiling = ROTATED_WRITE_BACKOFF_MS * 2 ** (attempt - 1)
          await this.#deps.sleep(Math.round(ceiling * (0.5 + this.#deps.random() / 2)))
        }
      }
    }
    const code = isSpConnectError(lastError) ? lastError.code : 'store_unavailable'
    try {
      await this.#events.record('app.refresh_token_write_failed', row.id, {
        error: code,
        attempts: ROTATED_WRITE_ATTEMPTS,
      })
    } catch (error) {
      // The alert goes to the log at least; the event store is usually the store that just failed
      this.#deps.logger.error(
        {
          event: 'app.refresh_token_write_failed',
          connectionId: row.id,
          code: isSpConnectError(error) ? error.code : 'store',
        },
        'a rotated refresh token is held in memory only and the alert event could not be recorded',
      )
    }
    this.#countRefresh(call, 'error')
    if (isSpConnectError(lastError)) throw lastError
    throw new SpConnectError('store_unavailable', {
      cause: lastError,
      detail: 'a rotated refresh token could not be stored; it is kept in memory for the next refresh',
      retryAfterSeconds: 1,
    })
  }

  /**
   * A signal that aborts `remainingMs` before the lease would run out (wall time: other processes judge the
   * lease by it). With `renew`, the lease is extended every third of its length while the call runs
   * (`acquireLease` accepts its own owner), and the abort moves with it; if another process took the lease
   * meanwhile (ours had expired), the call is abandoned at once, as fencing requires.
   */
  #leaseGuard(
    id: string,
    remainingMs: number,
    renew: boolean,
  ): { signal: AbortSignal; dispose(): Promise<void> } {
    const controller = new AbortController()
    const lost = () => controller.abort(new DOMException('The refresh lease ran out.', 'TimeoutError'))
    const safetyMs = Math.min(LEASE_SAFETY_MS, this.#leaseMs / 4)
    let disposed = false
    let renewal: Promise<void> | undefined
    let abortTimer: ReturnType<typeof setTimeout> | undefined
    /**
     * Extends the lease. `final`: the local bound is up, so unless the store still gives us the lease (nobody
     * took it over, even if it expired), the call is abandoned. A starved process thereby asks the store rather
     * than its own late timers whether it still holds the lease.
     */
    const extend = (final: boolean) => {
      if (renewal !== undefined || disposed || controller.signal.aborted) return
      const now = this.#deps.now()
      renewal = this.#store
        .acquireLease(id, this.#owner, now + this.#leaseMs, now)
        .then(
          (held) => {
            if (disposed || controller.signal.aborted) return
            if (!held) return lost()
            arm(Math.max(0, this.#leaseMs - safetyMs))
          },
          () => {
            // A renewal that failed leaves the current bound in place; at the bound itself, give up
            if (final) lost()
          },
        )
        .finally(() => {
          renewal = undefined
        })
    }
    const arm = (ms: number) => {
      if (abortTimer !== undefined) clearTimeout(abortTimer)
      abortTimer = setTimeout(() => (renew ? extend(true) : lost()), ms)
      abortTimer.unref?.()
    }
    arm(remainingMs)
    const renewTimer = renew ? setInterval(() => extend(false), Math.max(10, this.#leaseMs / 3)) : undefined
    renewTimer?.unref?.()
    return {
      signal: controller.signal,
      // Waits for a renewal in flight, so it cannot land after the lease is released and take it again
      dispose: async () => {
        disposed = true
        if (abortTimer !== undefined) clearTimeout(abortTimer)
        if (renewTimer !== undefined) clearInterval(renewTimer)
        await renewal
      },
    }
  }

  #countRefresh(call: RefreshCall, outcome: 'ok' | 'invalid_grant' | 'error'): void {
    // The background refresher counts its own refreshes (refresher.ts)
    if (call.priority === 'background') return
    this.#metrics.refresh(call.force ? 'forced' : 'caller', outcome)
  }

  /** A probe that found a token without asking LWA says nothing about LWA: let the next caller probe. */
  #releaseProbe(call: RefreshCall): void {
    if (call.probe) this.breaker.recordNeutral()
  }

  async #onRefreshError(row: ConnectionRecord, error: unknown, call: RefreshCall): Promise<AccessToken> {
    const code = isSpConnectError(error) ? error.code : 'internal'
    const now = this.#deps.now()
    this.#countRefresh(call, code === 'lwa_invalid_grant' ? 'invalid_grant' : 'error')
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

    const appWide = isAppWide(code)
    const transient = isTransient(code)
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
    throw this.#withRetryAfter(error)
  }

  /** A 503 always tells the client when to come back, also before the breaker opens (issue 8). */
  #withRetryAfter(error: unknown): unknown {
    if (!isSpConnectError(error) || error.status !== 503 || error.retryAfterSeconds !== undefined)
      return error
    const retryAfterMs = this.#retryAfterSeconds() * 1000
    if (error instanceof LwaError) {
      return new LwaError(error.code, {
        detail: error.detail,
        cause: error.cause,
        oauthError: error.oauthError,
        httpStatus: error.httpStatus,
        requestId: error.requestId,
        errorIndex: error.errorIndex,
        retryable: error.retryable,
        retryAfterMs,
      })
    }
    return new SpConnectError(error.code, {
      cause: error,
      ...(error.detail === undefined ? {} : { detail: error.detail }),
      retryAfterSeconds: retryAfterMs / 1000,
    })
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

/** How a caller's token came: from memory or the row, a refresh it made, or another's refresh it waited for. */
interface Outcome {
  kind: 'cached' | 'refreshed' | 'waited'
}

/** What one refresh is for: who asked, by when, and whether it is the breaker's half-open probe. */
interface RefreshCall {
  readonly priority: Priority
  readonly force: boolean
  /** The caller's deadline on `deps.now`'s clock; undefined for the background refresher. */
  readonly deadline: number | undefined
  readonly probe: boolean
  /** The breaker's probe, or LWA failed the last refresh: no retries for this one. */
  readonly singleAttempt: boolean
  readonly outcome: Outcome
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
