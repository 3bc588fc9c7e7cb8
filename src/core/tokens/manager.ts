/**
 * Hands out valid access tokens for connections.
 *
 * - From memory while more than the margin is left (no store read, no decryption on the hot path).
 * - Otherwise one refresh per connection per process (single-flight: concurrent callers share one promise)
 *   and one per cluster (a lease in the store; the row is re-read after taking it, so a caller that waited on
 *   another process gets that process's token; writes carry the fencing version).
 * - `invalid_grant` on refresh: re-read the row, because a re-authorization may have replaced the token while
 *   we were calling LWA. Only if nothing changed is the connection marked `needs_reauthorization`.
 * - Any other failure is recorded on the row and re-thrown; it never marks the seller revoked.
 */
import type { ConnectionRecord, Store } from '../../store/store.ts'
import type { Keyring } from '../crypto/keyring.ts'
import type { Deps } from '../deps.ts'
import { base64url } from '../encoding.ts'
import { isSpConnectError, SpConnectError } from '../errors.ts'
import { recordEvent } from '../events/events.ts'
import type { LwaClient } from '../lwa/client.ts'
import { openToken, sealToken } from './sealed.ts'

export const DEFAULT_REFRESH_MARGIN_MS = 5 * 60 * 1000
/** Longer than the LWA client's whole retry budget, so a live holder never loses its lease mid-refresh. */
export const DEFAULT_LEASE_MS = 60_000
const LEASE_POLL_MIN_MS = 50
const LEASE_POLL_MAX_MS = 500

export interface AccessToken {
  readonly accessToken: string
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
}

export interface TokenManagerOptions {
  readonly store: Store
  readonly keyring: Keyring
  readonly lwa: LwaClient
  readonly refreshMarginMs?: number
  readonly leaseMs?: number
  /** Identifies this process in leases; random by default. */
  readonly owner?: string
}

export interface GetTokenOptions {
  /** Refresh even if the cached token looks valid (e.g. SP-API just rejected it). */
  readonly forceRefresh?: boolean
}

export class TokenManager {
  readonly #store: Store
  readonly #keyring: Keyring
  readonly #lwa: LwaClient
  readonly #deps: Deps
  readonly #marginMs: number
  readonly #leaseMs: number
  readonly #owner: string
  readonly #cache = new Map<string, AccessToken>()
  readonly #inflight = new Map<string, Promise<AccessToken>>()

  constructor(options: TokenManagerOptions, deps: Deps) {
    this.#store = options.store
    this.#keyring = options.keyring
    this.#lwa = options.lwa
    this.#deps = deps
    this.#marginMs = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS
    this.#owner = options.owner ?? `proc_${base64url(deps.randomBytes(9))}`
  }

  /** A valid access token for the connection, refreshing it first if less than the margin is left. */
  getAccessToken(connectionId: string, options: GetTokenOptions = {}): Promise<AccessToken> {
    if (!options.forceRefresh) {
      const cached = this.#cache.get(connectionId)
      if (cached && this.#isFresh(cached.expiresAt)) return Promise.resolve(cached)
    }
    const running = this.#inflight.get(connectionId)
    if (running) return running
    const work = this.#obtain(connectionId, options.forceRefresh === true).finally(() => {
      this.#inflight.delete(connectionId)
    })
    this.#inflight.set(connectionId, work)
    return work
  }

  /** Forgets the cached token (after a disconnect or re-authorization). */
  forget(connectionId: string): void {
    this.#cache.delete(connectionId)
  }

  #isFresh(expiresAt: number | null): boolean {
    return expiresAt !== null && expiresAt - this.#marginMs > this.#deps.now()
  }

  async #obtain(connectionId: string, force: boolean): Promise<AccessToken> {
    const row = usable(await this.#store.getConnection(connectionId))
    if (!force) {
      const stored = this.#storedToken(row)
      if (stored) return stored
    }
    return this.#refreshUnderLease(row, force)
  }

  async #refreshUnderLease(initial: ConnectionRecord, force: boolean): Promise<AccessToken> {
    const deadline = this.#deps.now() + this.#leaseMs
    let pollMs = LEASE_POLL_MIN_MS
    for (;;) {
      const now = this.#deps.now()
      const leased = await this.#store.acquireLease(initial.id, this.#owner, now + this.#leaseMs, now)
      if (leased) {
        try {
          // Someone may have refreshed between our read and the lease: use their token (unless forced and
          // it is still the very token we were asked to replace).
          const fresh = usable(leased)
          const stored = force && fresh.version === initial.version ? undefined : this.#storedToken(fresh)
          if (stored) return stored
          return await this.#refresh(fresh)
        } finally {
          await this.#store.releaseLease(initial.id, this.#owner)
        }
      }
      // Another process holds the lease: wait for its result, polling the row with growing pauses.
      const row = usable(await this.#store.getConnection(initial.id))
      if (row.version !== initial.version) {
        const stored = this.#storedToken(row)
        if (stored) return stored
      }
      if (this.#deps.now() > deadline) throw new SpConnectError('lease_timeout', { retryAfterSeconds: 5 })
      await this.#deps.sleep(pollMs * (0.5 + this.#deps.random()))
      pollMs = Math.min(pollMs * 2, LEASE_POLL_MAX_MS)
    }
  }

  async #refresh(row: ConnectionRecord): Promise<AccessToken> {
    if (row.refreshTokenCiphertext === null) throw new SpConnectError('connection_disconnected')
    const refreshToken = openToken(this.#keyring, row.id, 'refresh_token', row.refreshTokenCiphertext)
    const requestedAt = this.#deps.now()
    let tokens: Awaited<ReturnType<LwaClient['refresh']>>
    try {
      tokens = await this.#lwa.refresh(refreshToken)
    } catch (error) {
      return this.#onRefreshError(row, error)
    }
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
      const newer = this.#storedToken(usable(await this.#store.getConnection(row.id)))
      if (newer) return newer
      throw new SpConnectError('internal', {
        detail: 'refreshed token was fenced out and no newer token exists',
      })
    }
    const token = { accessToken: tokens.accessToken, expiresAt }
    this.#cache.set(row.id, token)
    return token
  }

  async #onRefreshError(row: ConnectionRecord, error: unknown): Promise<AccessToken> {
    const code = isSpConnectError(error) ? error.code : 'internal'
    if (code === 'lwa_invalid_grant') {
      const current = await this.#store.getConnection(row.id)
      if (current && current.version !== row.version) {
        // Re-authorized (or refreshed) while we were asking LWA: that newer token is the truth.
        const stored = this.#storedToken(usable(current))
        if (stored) return stored
      }
      const marked = await this.#store.recordRefreshFailure(row.id, row.version, {
        error: code,
        status: 'needs_reauthorization',
        now: this.#deps.now(),
      })
      if (marked) {
        this.#cache.delete(row.id)
        await recordEvent(this.#store, this.#deps, 'connection.needs_reauthorization', row.id, {
          reason: code,
        })
      }
      throw new SpConnectError('connection_needs_reauthorization', {
        cause: error,
        detail: 'LWA: invalid_grant',
      })
    }
    const recorded = await this.#store.recordRefreshFailure(row.id, row.version, {
      error: code,
      now: this.#deps.now(),
    })
    if (recorded) {
      await recordEvent(this.#store, this.#deps, 'connection.refresh_failed', row.id, {
        error: code,
        failureCount: recorded.failureCount,
      })
    }
    throw error
  }

  /** The row's access token if it is fresh enough, decrypted and cached. */
  #storedToken(row: ConnectionRecord): AccessToken | undefined {
    const expiresAt = row.accessTokenExpiresAt
    if (row.accessTokenCiphertext === null || expiresAt === null || !this.#isFresh(expiresAt))
      return undefined
    const token = {
      accessToken: openToken(this.#keyring, row.id, 'access_token', row.accessTokenCiphertext),
      expiresAt,
    }
    this.#cache.set(row.id, token)
    return token
  }
}

/** Only active connections hand out tokens; the others fail with a typed error saying why. */
function usable(row: ConnectionRecord | undefined): ConnectionRecord {
  if (!row) throw new SpConnectError('connection_not_found')
  if (row.status === 'disconnected') throw new SpConnectError('connection_disconnected')
  if (row.status === 'needs_reauthorization') throw new SpConnectError('connection_needs_reauthorization')
  return row
}
