/**
 * The storage contract. SQLite implements it today and PostgreSQL implements the same contract, so every
 * rule that matters under concurrency is expressed here as an atomic, conditional operation (a single
 * conditional UPDATE … RETURNING) rather than as read-then-write logic in callers.
 *
 * Times are milliseconds since the epoch. Secrets are stored only as ciphertext (see core/crypto) or as
 * SHA-256 hashes (state values, browser bindings, connect-session tokens); the store never sees plaintext.
 */
import type { AccountType, Region } from '../core/regions.ts'

export const CONNECTION_STATUSES = ['active', 'needs_reauthorization', 'disconnected'] as const
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number]

export interface ConnectionRecord {
  readonly id: string
  readonly sellingPartnerId: string
  readonly region: Region
  readonly accountType: AccountType
  /** The application's own user or organisation this connection belongs to, if it said. */
  readonly tenantId: string | null
  readonly status: ConnectionStatus
  /** Why the status is what it is (an error code such as `lwa_invalid_grant`), for operators. */
  readonly statusReason: string | null
  readonly refreshTokenCiphertext: string | null
  readonly accessTokenCiphertext: string | null
  readonly accessTokenExpiresAt: number | null
  readonly authorizedAt: number
  /** Amazon requires re-authorization every 365 days. */
  readonly reauthorizeBy: number
  readonly lastRefreshAt: number | null
  /** Error code of the last failed refresh, cleared by the next success. */
  readonly lastRefreshError: string | null
  /** Consecutive failed refreshes. */
  readonly failureCount: number
  readonly leaseOwner: string | null
  readonly leaseUntil: number | null
  /** Fencing version: bumped by every write that changes tokens or status. */
  readonly version: number
  readonly createdAt: number
  readonly updatedAt: number
}

/** A newly authorized connection, with the id chosen by the caller (it is part of the ciphertexts' AAD). */
export interface NewConnection {
  readonly id: string
  readonly sellingPartnerId: string
  readonly region: Region
  readonly accountType: AccountType
  readonly tenantId: string | null
  readonly refreshTokenCiphertext: string
  readonly accessTokenCiphertext: string | null
  readonly accessTokenExpiresAt: number | null
  readonly authorizedAt: number
  readonly reauthorizeBy: number
  readonly now: number
}

/** A re-authorization of an existing connection: the new refresh token replaces the old one. */
export interface Reauthorization {
  readonly accountType: AccountType
  readonly tenantId: string | null
  readonly refreshTokenCiphertext: string
  readonly accessTokenCiphertext: string | null
  readonly accessTokenExpiresAt: number | null
  readonly authorizedAt: number
  readonly reauthorizeBy: number
  readonly now: number
}

/** New tokens from a refresh, written only if the row is still at `expectedVersion`. */
export interface TokenUpdate {
  readonly accessTokenCiphertext: string
  readonly accessTokenExpiresAt: number
  /** Present only if LWA returned a different refresh token (it documents that it does not). */
  readonly refreshTokenCiphertext?: string
  readonly now: number
}

export interface RefreshFailure {
  /** Error code of the failure, e.g. `lwa_invalid_grant`. */
  readonly error: string
  /** Set to move the connection out of `active` (e.g. to `needs_reauthorization`). */
  readonly status?: ConnectionStatus
  readonly now: number
}

export interface ConnectionFilter {
  readonly tenantId?: string
  readonly status?: ConnectionStatus
  readonly limit?: number
  /** Keyset pagination: connections created after the one with this id (ordered by created_at, id). */
  readonly after?: string
}

export const AUTH_FLOWS = ['website', 'appstore'] as const
export type AuthFlow = (typeof AUTH_FLOWS)[number]

export interface AuthStateRecord {
  /** SHA-256 of the state value; the value itself is never stored. */
  readonly stateHash: string
  readonly flow: AuthFlow
  readonly region: Region
  readonly accountType: AccountType
  readonly tenantId: string | null
  /** Where to send the browser after the callback: a path on this service, or an allowed app URL. */
  readonly returnTo: string | null
  /** SHA-256 of the browser-binding cookie value. */
  readonly browserBindingHash: string
  /** For the Appstore flow: the selling partner Amazon named at the Login URI. */
  readonly sellingPartnerId: string | null
  readonly createdAt: number
  readonly expiresAt: number
  readonly consumedAt: number | null
}

export interface ConnectSessionRecord {
  /** SHA-256 of the session token carried in the connect link. */
  readonly tokenHash: string
  readonly tenantId: string
  readonly region: Region
  readonly accountType: AccountType
  /** Marketplace country code whose consent host to use, or null for the region's default. */
  readonly marketplace: string | null
  readonly returnTo: string | null
  readonly createdAt: number
  readonly expiresAt: number
}

export interface EventRecord {
  readonly id: string
  readonly type: string
  readonly connectionId: string | null
  /** JSON-serialisable details; never tokens or secrets. */
  readonly data: Readonly<Record<string, unknown>>
  readonly createdAt: number
}

export interface MigrationOutcome {
  readonly name: string
  readonly status: 'applied' | 'already_applied' | 'failed'
}

export interface Store {
  /** Brings the schema up to date; safe to call from several processes at once. */
  migrate(): Promise<MigrationOutcome[]>
  close(): Promise<void>

  insertAuthState(state: AuthStateRecord): Promise<void>
  getAuthState(stateHash: string): Promise<AuthStateRecord | undefined>
  /**
   * Marks the state consumed if, and only if, it exists, is unconsumed and has not expired at `now`.
   * Returns true for exactly one caller however many race.
   */
  consumeAuthState(stateHash: string, now: number): Promise<boolean>
  /** Deletes states that expired before `before`; returns how many. */
  deleteExpiredAuthStates(before: number): Promise<number>

  insertConnectSession(session: ConnectSessionRecord): Promise<void>
  getConnectSession(tokenHash: string): Promise<ConnectSessionRecord | undefined>

  getConnection(id: string): Promise<ConnectionRecord | undefined>
  findConnection(sellingPartnerId: string, region: Region): Promise<ConnectionRecord | undefined>
  listConnections(filter?: ConnectionFilter): Promise<ConnectionRecord[]>
  /**
   * Inserts a new connection. Returns undefined (and changes nothing) when one already exists for the same
   * selling partner and region, so a racing caller can re-authorize that one instead.
   */
  insertConnection(connection: NewConnection): Promise<ConnectionRecord | undefined>
  /**
   * Replaces the refresh token of an existing connection (re-authorization), makes it `active`, clears
   * failures and the lease, and bumps the version. Unconditional: a fresh authorization always wins.
   */
  reauthorizeConnection(id: string, update: Reauthorization): Promise<ConnectionRecord | undefined>
  /**
   * Writes refreshed tokens if the row is still at `expectedVersion`, is not disconnected, and the new expiry is
   * not earlier than the stored one. Bumps the version, clears failures. Returns the new row, or undefined
   * when a newer writer got there first (the caller must re-read).
   */
  updateTokens(
    id: string,
    expectedVersion: number,
    update: TokenUpdate,
  ): Promise<ConnectionRecord | undefined>
  /** Records a failed refresh if the row is still at `expectedVersion`; bumps the version. */
  recordRefreshFailure(
    id: string,
    expectedVersion: number,
    failure: RefreshFailure,
  ): Promise<ConnectionRecord | undefined>
  /**
   * Takes the refresh lease if it is free, expired at `now`, or already held by `owner`. Returns the row as it
   * is after taking the lease (callers re-check its token), or undefined when someone else holds it.
   */
  acquireLease(id: string, owner: string, until: number, now: number): Promise<ConnectionRecord | undefined>
  /** Releases the lease if `owner` still holds it. */
  releaseLease(id: string, owner: string): Promise<void>
  /** Deletes the tokens and marks the connection disconnected; bumps the version. */
  disconnectConnection(id: string, now: number): Promise<ConnectionRecord | undefined>

  appendEvent(event: EventRecord): Promise<void>
  listEvents(filter?: { connectionId?: string; limit?: number }): Promise<EventRecord[]>
}
