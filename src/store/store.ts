/**
 * The storage contract. SQLite implements it today and PostgreSQL implements the same contract, so every
 * rule that matters under concurrency is expressed here as an atomic, conditional operation (a single
 * conditional UPDATE … RETURNING) rather than as read-then-write logic in callers.
 *
 * Times are milliseconds since the epoch. Secrets are stored only as ciphertext (see core/crypto) or as
 * SHA-256 hashes (state values, browser bindings, connect-session tokens); the store never sees plaintext.
 */
import type { AccountType, Region } from '../domain/regions.ts'
import type { ConnectionStatus } from '../domain/statuses.ts'
import type { ApiKeyStore } from './api-key-store.ts'
import type { LoginRequestStore } from './login-request-store.ts'
import type { OperatorStore } from './operator-store.ts'
import type { RateBucketStore } from './rate-bucket-store.ts'

// The connection statuses are domain vocabulary; the contract carries them for its implementers and callers.
export { CONNECTION_STATUSES, type ConnectionStatus } from '../domain/statuses.ts'

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
  /** When a caller last asked for this connection's token (written at most every few minutes). */
  readonly lastUsedAt: number | null
  /** After a failed refresh, the background refresher leaves the connection alone until then. */
  readonly refreshNotBefore: number | null
  /** The smallest "re-authorize within N days" reminder already sent for the current authorization. */
  readonly reauthReminderDays: number | null
  /**
   * Fingerprint of the seller account (hashes of its marketplace participations and store names), recorded
   * when it was connected, so a re-authorization can prove its new token belongs to the same account.
   */
  readonly accountFingerprint: string | null
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
  /** The seller account's fingerprint, when known (see ConnectionRecord). */
  readonly accountFingerprint?: string | null
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
  /** The account's fingerprint from the new token; null or absent keeps the stored one. */
  readonly accountFingerprint?: string | null
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
  /** The background refresher skips the connection until then (backoff after transient failures). */
  readonly notBefore?: number
  readonly now: number
}

/** What the background refresher should look at now (see `listRefreshCandidates`). */
export interface RefreshCandidateQuery {
  readonly now: number
  /** Connections used since then are kept warm… */
  readonly warmUsedSince: number
  /** …when their access token expires before this (or they have none). */
  readonly warmExpiringBefore: number
  /** Any connection whose last successful refresh (or authorization) is older than this gets a health check. */
  readonly idleCheckedBefore: number
  readonly limit: number
}

/** The ciphertexts of one connection, for re-encryption under a new key. */
export interface ConnectionCiphertexts {
  readonly id: string
  readonly version: number
  readonly refreshTokenCiphertext: string | null
  readonly accessTokenCiphertext: string | null
}

export const APP_SECRET_STATES = ['active', 'retired'] as const
export type AppSecretState = (typeof APP_SECRET_STATES)[number]

/** An LWA client secret received through rotation, stored encrypted (AAD: app_secrets/<id>/secret). */
export interface AppSecretRecord {
  readonly id: string
  readonly clientId: string
  readonly secretCiphertext: string
  readonly state: AppSecretState
  readonly createdAt: number
  /** When Amazon stops accepting it (null: not known). */
  readonly expiresAt: number | null
}

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number]

/** One event's delivery to one webhook endpoint (the outbox). */
export interface DeliveryRecord {
  readonly id: string
  readonly eventId: string
  readonly url: string
  readonly status: DeliveryStatus
  readonly attempts: number
  readonly nextAttemptAt: number
  readonly lastStatusCode: number | null
  readonly lastError: string | null
  readonly leaseOwner: string | null
  readonly leaseUntil: number | null
  readonly createdAt: number
  readonly updatedAt: number
  readonly deliveredAt: number | null
}

export type DeliveryResult =
  | { readonly ok: true; readonly statusCode: number; readonly now: number }
  | {
      readonly ok: false
      readonly statusCode: number | null
      /** A short error code or text; never a secret. */
      readonly error: string
      /** When to try again, or null to give up (status `failed`). */
      readonly nextAttemptAt: number | null
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
  /** Set when the flow re-authorizes one existing connection (a reconnect link): only that one may change. */
  readonly connectionId: string | null
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
  /** A reconnect link: the connection to re-authorize (its tenant is `tenantId`). */
  readonly connectionId: string | null
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

/**
 * Schema and lifecycle of one store handle: what a process does with the store before and after using it.
 */
export interface StoreLifecycle {
  /** Brings the schema up to date; safe to call from several processes at once. */
  migrate(): Promise<MigrationOutcome[]>
  /** Names of migrations this code knows that the database has not applied (read-only; for `/readyz`). */
  pendingMigrations(): Promise<string[]>
  close(): Promise<void>
}

/**
 * Auth states and connect sessions: the short-lived, single-use records of an authorization in progress (the
 * OAuth `state` of the website and Appstore flows, and the connect links an app hands its users). Both are
 * stored by hash only.
 */
export interface AuthStateStore {
  insertAuthState(state: AuthStateRecord): Promise<void>
  getAuthState(stateHash: string): Promise<AuthStateRecord | undefined>
  /**
   * Marks the state consumed if, and only if, it exists, is unconsumed and has not expired at `now`.
   * Returns true for exactly one caller however many race.
   */
  consumeAuthState(stateHash: string, now: number): Promise<boolean>
  /** Deletes states that expired before `before`; returns how many. */
  deleteExpiredAuthStates(before: number): Promise<number>
  /** Deletes states consumed before `before` (whatever their expiry); returns how many. */
  deleteConsumedAuthStates(before: number): Promise<number>

  insertConnectSession(session: ConnectSessionRecord): Promise<void>
  getConnectSession(tokenHash: string): Promise<ConnectSessionRecord | undefined>
  /** Deletes connect sessions that expired before `before`; returns how many. */
  deleteExpiredConnectSessions(before: number): Promise<number>
}

/**
 * Connections and their refresh leases: the seller and vendor accounts with their encrypted tokens, every write
 * that changes tokens or status (each fenced by `version`), the per-connection lease that lets one process
 * refresh at a time, and the wait for another process's write.
 */
export interface ConnectionStore {
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
  /**
   * Resolves when the connection's row may have changed (a token write, a status change) or after `timeoutMs`,
   * whichever is first; never rejects except on abort (with the signal's reason); spurious wake-ups are allowed,
   * so the caller re-reads the row and, if nothing it cares about changed, waits again. Optional to use: a
   * caller that only polls stays correct, this only shortens the wait.
   *
   * What wakes a waiter: `updateTokens`, `recordRefreshFailure`, `reauthorizeConnection`,
   * `disconnectConnection` and `releaseLease` when they change the row. On SQLite only writes through the same
   * store handle do (other processes cannot notify, so the timeout is the cross-process mechanism there); on
   * PostgreSQL writes from every handle and instance do, through LISTEN/NOTIFY, unless notifications are
   * turned off or the listening connection is down, when waits simply run to their timeout.
   */
  waitForConnectionChange(id: string, timeoutMs: number, signal?: AbortSignal): Promise<void>
  /** Records that a caller used the connection's token (no version bump). */
  touchConnection(id: string, now: number): Promise<void>
  /** Number of connections in each status (statuses with none are absent). */
  countConnectionsByStatus(): Promise<Partial<Record<ConnectionStatus, number>>>
}

/**
 * What the background workers scan and claim: connections due for a refresh (leased in bulk so instances divide
 * the work), the refresher's backlog, and the re-authorization reminders.
 */
export interface RefresherStore {
  /**
   * Active connections with a refresh token, not in failure backoff (`refresh_not_before` null or <= now), whose
   * lease is free or expired, and that are either warm (used since `warmUsedSince` and expiring before
   * `warmExpiringBefore` or tokenless) or idle-unchecked (`COALESCE(last_refresh_at, authorized_at)` <=
   * `idleCheckedBefore`). Soonest-expiring first (tokenless first), then by id.
   */
  listRefreshCandidates(query: RefreshCandidateQuery): Promise<ConnectionRecord[]>
  /**
   * How many connections `listRefreshCandidates` would return without a limit, and the earliest access-token
   * expiry among the warm ones (used since `warmUsedSince`), or null: the refresher's backlog and lag (metrics).
   */
  refreshBacklog(
    query: Omit<RefreshCandidateQuery, 'limit'>,
  ): Promise<{ due: number; earliestWarmExpiry: number | null }>
  /**
   * The candidates `listRefreshCandidates` would return, leased to `owner` until `leaseUntil` in one statement.
   * Rows whose lease another claimer holds (or, on PostgreSQL, has locked) are skipped, so instances claiming at
   * once divide the work. The caller refreshes them under that lease (acquireLease accepts its own owner).
   */
  claimRefreshCandidates(
    query: RefreshCandidateQuery,
    owner: string,
    leaseUntil: number,
  ): Promise<ConnectionRecord[]>
  /** Active connections whose `reauthorize_by` is at or before `before`, soonest first. */
  listConnectionsReauthorizeBefore(before: number, limit: number): Promise<ConnectionRecord[]>
  /**
   * Records that the "N days left" reminder was sent for the authorization made at `authorizedAt`. True only if
   * it had not been (no reminder yet, or only one for more days); a re-authorization resets reminders.
   */
  markReauthorizationReminder(id: string, authorizedAt: number, days: number): Promise<boolean>
}

/**
 * The audit log of events and the webhook outbox: an event and its deliveries are written together, and
 * deliveries are claimed under a lease so that two senders never send the same one.
 */
export interface EventStore {
  /**
   * Appends an event to the audit log and, in the same transaction, one pending delivery per webhook URL
   * (the outbox): an event is never recorded without its deliveries, nor delivered without being recorded.
   */
  appendEvent(event: EventRecord, webhookUrls?: readonly string[]): Promise<void>
  listEvents(filter?: { connectionId?: string; type?: string; limit?: number }): Promise<EventRecord[]>
  getEvent(id: string): Promise<EventRecord | undefined>

  /**
   * Claims up to `limit` pending deliveries due at `now` whose lease is free or expired, setting the lease to
   * `owner` until `leaseUntil`; oldest due first. Two claimers never get the same delivery.
   */
  claimDueDeliveries(now: number, owner: string, leaseUntil: number, limit: number): Promise<DeliveryRecord[]>
  /** Records an attempt's result if `owner` still holds the delivery; increments attempts, clears the lease. */
  completeDelivery(id: string, owner: string, result: DeliveryResult): Promise<DeliveryRecord | undefined>
  /** Pending deliveries (the outbox depth) and the creation time of the oldest one, or null when none. */
  pendingDeliveryStats(): Promise<{ pending: number; oldestCreatedAt: number | null }>
  listDeliveries(filter?: {
    eventId?: string
    status?: DeliveryStatus
    limit?: number
  }): Promise<DeliveryRecord[]>
}

/** LWA client secrets received through Amazon's rotation, stored encrypted. */
export interface AppSecretStore {
  insertAppSecret(secret: AppSecretRecord): Promise<void>
  /** Secrets of a client id, newest first. */
  listAppSecrets(clientId: string): Promise<AppSecretRecord[]>
  updateAppSecret(
    id: string,
    changes: { state?: AppSecretState; expiresAt?: number | null; secretCiphertext?: string },
  ): Promise<void>
}

/** Re-encryption under a new key: which keys the stored ciphertexts name, and the swap of one row's ciphertexts. */
export interface KeyRotationStore {
  /**
   * Every key id named by a stored ciphertext (both token columns of connections, and app secrets), distinct
   * and sorted. Read-only; reads the `v1.<key id>.` header only and decrypts nothing. One scan of each table:
   * cheap at start-up, but a frequent caller (a readiness probe) should cache the answer.
   */
  listCiphertextKeyIds(): Promise<string[]>
  /** Ciphertexts of connections with id > `afterId` (all when undefined), ordered by id. */
  listConnectionCiphertexts(afterId: string | undefined, limit: number): Promise<ConnectionCiphertexts[]>
  /**
   * Replaces both ciphertexts (same plaintexts under another key) if the row is still at `expectedVersion`.
   * Does not bump the version: the tokens did not change, so a concurrent refresh's fenced write still lands.
   */
  replaceConnectionCiphertexts(
    id: string,
    expectedVersion: number,
    ciphertexts: { refreshTokenCiphertext: string | null; accessTokenCiphertext: string | null },
  ): Promise<boolean>
}

/**
 * The whole contract: every role above on one handle, plus the role stores it carries as properties. A module
 * that needs one role types its dependency as that role (`ConnectionStore`, `EventStore`, …) and is handed the
 * `Store`.
 */
export interface Store
  extends StoreLifecycle,
    AuthStateStore,
    ConnectionStore,
    RefresherStore,
    EventStore,
    AppSecretStore,
    KeyRotationStore {
  /** API keys created with the CLI or the API (see api-key-store.ts). */
  readonly apiKeys: ApiKeyStore
  /** Pending Login-URI requests waiting for the app's signed-in user (login-request-store.ts). */
  readonly loginRequests: LoginRequestStore
  /** Operator accounts and console sessions (src/store/operator-store.ts). */
  readonly operators: OperatorStore
  /** SP-API usage-plan buckets shared by every instance (rate-bucket-store.ts). */
  readonly rateBuckets: RateBucketStore
}
