/**
 * The relational schema behind the `Store` contract, as Kysely table types, and the one place where rows
 * become the contract's camelCase records.
 *
 * Columns are snake_case. Times are INTEGER milliseconds in SQLite and BIGINT in PostgreSQL, which postgres.ts
 * parses to numbers when they are safe integers and otherwise leaves as decimal strings; the mappers accept
 * numbers, bigints and such strings, and refuse anything beyond 2^53 as corrupt rather than round it.
 * Enum-like columns are plain text validated on the way out: a corrupt row fails loudly instead of leaking an
 * impossible value into the typed world.
 */
import type { Selectable } from 'kysely'
import { SpConnectError } from '../domain/errors.ts'
import { isAccountType, isRegion } from '../domain/regions.ts'
import type { ApiKeysTable } from './api-key-store.ts'
import type { LoginRequestsTable } from './login-request-store.ts'
import type { OperatorAccountsTable, OperatorSessionsTable } from './operator-store.ts'
import type { RateBucketsTable } from './rate-bucket-store.ts'
import type {
  AppSecretRecord,
  AuthStateRecord,
  ConnectionCiphertexts,
  ConnectionRecord,
  ConnectSessionRecord,
  DeliveryRecord,
  EventRecord,
} from './store.ts'
import { APP_SECRET_STATES, AUTH_FLOWS, CONNECTION_STATUSES, DELIVERY_STATUSES } from './store.ts'

/** One row per connected selling partner and region. */
export interface ConnectionsTable {
  id: string
  selling_partner_id: string
  region: string
  account_type: string
  tenant_id: string | null
  status: string
  status_reason: string | null
  refresh_token_ciphertext: string | null
  access_token_ciphertext: string | null
  access_token_expires_at: number | null
  authorized_at: number
  reauthorize_by: number
  last_refresh_at: number | null
  last_refresh_error: string | null
  failure_count: number
  lease_owner: string | null
  lease_until: number | null
  last_used_at: number | null
  refresh_not_before: number | null
  reauth_reminder_days: number | null
  account_fingerprint: string | null
  version: number
  created_at: number
  updated_at: number
}

/** One row per authorization attempt, keyed by the SHA-256 of its state value. */
export interface AuthStatesTable {
  state_hash: string
  flow: string
  region: string
  account_type: string
  tenant_id: string | null
  return_to: string | null
  browser_binding_hash: string
  selling_partner_id: string | null
  connection_id: string | null
  created_at: number
  expires_at: number
  consumed_at: number | null
}

/** One row per connect link, keyed by the SHA-256 of its token. */
export interface ConnectSessionsTable {
  token_hash: string
  tenant_id: string
  region: string
  account_type: string
  marketplace: string | null
  return_to: string | null
  connection_id: string | null
  created_at: number
  expires_at: number
}

/** The audit log. `data` is JSON text. */
export interface EventsTable {
  id: string
  type: string
  connection_id: string | null
  data: string
  created_at: number
}

/** LWA client secrets received through rotation, encrypted; several per client id while one is retiring. */
export interface AppSecretsTable {
  id: string
  client_id: string
  secret_ciphertext: string
  state: string
  created_at: number
  expires_at: number | null
}

/** The webhook outbox: one row per event and endpoint, claimed under a lease by whichever worker sends it. */
export interface WebhookDeliveriesTable {
  id: string
  event_id: string
  url: string
  status: string
  attempts: number
  next_attempt_at: number
  last_status_code: number | null
  last_error: string | null
  lease_owner: string | null
  lease_until: number | null
  created_at: number
  updated_at: number
  delivered_at: number | null
}

/** Bookkeeping of applied migrations. Prefixed so it cannot clash with an application's own table. */
export interface MigrationsTable {
  name: string
  applied_at: number
}

/** The name of the migrations bookkeeping table. */
export const MIGRATIONS_TABLE = 'sp_connect_migrations'

/** Every table sp-connect owns, as Kysely sees them. */
export interface Database {
  connections: ConnectionsTable
  auth_states: AuthStatesTable
  connect_sessions: ConnectSessionsTable
  login_requests: LoginRequestsTable
  events: EventsTable
  app_secrets: AppSecretsTable
  webhook_deliveries: WebhookDeliveriesTable
  api_keys: ApiKeysTable
  operator_accounts: OperatorAccountsTable
  operator_sessions: OperatorSessionsTable
  rate_buckets: RateBucketsTable
  sp_connect_migrations: MigrationsTable
}

export type ConnectionRow = Selectable<ConnectionsTable>
type AuthStateRow = Selectable<AuthStatesTable>
type ConnectSessionRow = Selectable<ConnectSessionsTable>
export type EventRow = Selectable<EventsTable>
export type AppSecretRow = Selectable<AppSecretsTable>
export type DeliveryRow = Selectable<WebhookDeliveriesTable>

function corrupt(table: string, column: string): SpConnectError {
  // The detail names the column, never its value: values may be hashes or ciphertext.
  return new SpConnectError('internal', { detail: `corrupt row in ${table}: column ${column}` })
}

function requireString(table: string, column: string, value: unknown): string {
  if (typeof value !== 'string') throw corrupt(table, column)
  return value
}

function optionalString(table: string, column: string, value: unknown): string | null {
  return value === null ? null : requireString(table, column, value)
}

/** Integers arrive as numbers (node:sqlite), bigints, or decimal strings (`pg` and BIGINT). */
function requireInteger(table: string, column: string, value: unknown): number {
  let n: number
  if (typeof value === 'number') n = value
  else if (typeof value === 'bigint') n = Number(value)
  else if (typeof value === 'string' && /^-?\d+$/.test(value)) n = Number(value)
  else throw corrupt(table, column)
  if (!Number.isSafeInteger(n)) throw corrupt(table, column)
  return n
}

function optionalInteger(table: string, column: string, value: unknown): number | null {
  return value === null ? null : requireInteger(table, column, value)
}

function oneOf<T extends string>(allowed: readonly T[], table: string, column: string, value: unknown): T {
  const found = allowed.find((candidate) => candidate === value)
  if (found === undefined) throw corrupt(table, column)
  return found
}

function region(table: string, value: unknown): ConnectionRecord['region'] {
  if (!isRegion(value)) throw corrupt(table, 'region')
  return value
}

function accountType(table: string, value: unknown): ConnectionRecord['accountType'] {
  if (!isAccountType(value)) throw corrupt(table, 'account_type')
  return value
}

/** Maps a `connections` row to a {@link ConnectionRecord}, or throws `internal` if the row is corrupt. */
export function toConnectionRecord(row: ConnectionRow): ConnectionRecord {
  const t = 'connections'
  return {
    id: requireString(t, 'id', row.id),
    sellingPartnerId: requireString(t, 'selling_partner_id', row.selling_partner_id),
    region: region(t, row.region),
    accountType: accountType(t, row.account_type),
    tenantId: optionalString(t, 'tenant_id', row.tenant_id),
    status: oneOf(CONNECTION_STATUSES, t, 'status', row.status),
    statusReason: optionalString(t, 'status_reason', row.status_reason),
    refreshTokenCiphertext: optionalString(t, 'refresh_token_ciphertext', row.refresh_token_ciphertext),
    accessTokenCiphertext: optionalString(t, 'access_token_ciphertext', row.access_token_ciphertext),
    accessTokenExpiresAt: optionalInteger(t, 'access_token_expires_at', row.access_token_expires_at),
    authorizedAt: requireInteger(t, 'authorized_at', row.authorized_at),
    reauthorizeBy: requireInteger(t, 'reauthorize_by', row.reauthorize_by),
    lastRefreshAt: optionalInteger(t, 'last_refresh_at', row.last_refresh_at),
    lastRefreshError: optionalString(t, 'last_refresh_error', row.last_refresh_error),
    failureCount: requireInteger(t, 'failure_count', row.failure_count),
    leaseOwner: optionalString(t, 'lease_owner', row.lease_owner),
    leaseUntil: optionalInteger(t, 'lease_until', row.lease_until),
    lastUsedAt: optionalInteger(t, 'last_used_at', row.last_used_at),
    refreshNotBefore: optionalInteger(t, 'refresh_not_before', row.refresh_not_before),
    reauthReminderDays: optionalInteger(t, 'reauth_reminder_days', row.reauth_reminder_days),
    // Absent on a schema before the ownership migration (a store reading during a rolling upgrade).
    accountFingerprint: optionalString(t, 'account_fingerprint', row.account_fingerprint ?? null),
    version: requireInteger(t, 'version', row.version),
    createdAt: requireInteger(t, 'created_at', row.created_at),
    updatedAt: requireInteger(t, 'updated_at', row.updated_at),
  }
}

/** The columns key rotation reads from `connections`. */
type ConnectionCiphertextsRow = Pick<
  ConnectionRow,
  'id' | 'version' | 'refresh_token_ciphertext' | 'access_token_ciphertext'
>

/** Maps the key-rotation columns of a `connections` row, or throws `internal` if they are corrupt. */
export function toConnectionCiphertexts(row: ConnectionCiphertextsRow): ConnectionCiphertexts {
  const t = 'connections'
  return {
    id: requireString(t, 'id', row.id),
    version: requireInteger(t, 'version', row.version),
    refreshTokenCiphertext: optionalString(t, 'refresh_token_ciphertext', row.refresh_token_ciphertext),
    accessTokenCiphertext: optionalString(t, 'access_token_ciphertext', row.access_token_ciphertext),
  }
}

/** Maps an `auth_states` row to an {@link AuthStateRecord}, or throws `internal` if the row is corrupt. */
export function toAuthStateRecord(row: AuthStateRow): AuthStateRecord {
  const t = 'auth_states'
  return {
    stateHash: requireString(t, 'state_hash', row.state_hash),
    flow: oneOf(AUTH_FLOWS, t, 'flow', row.flow),
    region: region(t, row.region),
    accountType: accountType(t, row.account_type),
    tenantId: optionalString(t, 'tenant_id', row.tenant_id),
    returnTo: optionalString(t, 'return_to', row.return_to),
    browserBindingHash: requireString(t, 'browser_binding_hash', row.browser_binding_hash),
    sellingPartnerId: optionalString(t, 'selling_partner_id', row.selling_partner_id),
    connectionId: optionalString(t, 'connection_id', row.connection_id),
    createdAt: requireInteger(t, 'created_at', row.created_at),
    expiresAt: requireInteger(t, 'expires_at', row.expires_at),
    consumedAt: optionalInteger(t, 'consumed_at', row.consumed_at),
  }
}

/** Maps a `connect_sessions` row to a {@link ConnectSessionRecord}, or throws `internal` if it is corrupt. */
export function toConnectSessionRecord(row: ConnectSessionRow): ConnectSessionRecord {
  const t = 'connect_sessions'
  return {
    tokenHash: requireString(t, 'token_hash', row.token_hash),
    tenantId: requireString(t, 'tenant_id', row.tenant_id),
    region: region(t, row.region),
    accountType: accountType(t, row.account_type),
    marketplace: optionalString(t, 'marketplace', row.marketplace),
    returnTo: optionalString(t, 'return_to', row.return_to),
    connectionId: optionalString(t, 'connection_id', row.connection_id),
    createdAt: requireInteger(t, 'created_at', row.created_at),
    expiresAt: requireInteger(t, 'expires_at', row.expires_at),
  }
}

/** Maps an `events` row to an {@link EventRecord}; `data` must be a JSON object. */
export function toEventRecord(row: EventRow): EventRecord {
  const t = 'events'
  let data: unknown
  try {
    data = JSON.parse(requireString(t, 'data', row.data))
  } catch {
    throw corrupt(t, 'data')
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw corrupt(t, 'data')
  return {
    id: requireString(t, 'id', row.id),
    type: requireString(t, 'type', row.type),
    connectionId: optionalString(t, 'connection_id', row.connection_id),
    data: data as Readonly<Record<string, unknown>>,
    createdAt: requireInteger(t, 'created_at', row.created_at),
  }
}

/** Maps an `app_secrets` row to an {@link AppSecretRecord}, or throws `internal` if the row is corrupt. */
export function toAppSecretRecord(row: AppSecretRow): AppSecretRecord {
  const t = 'app_secrets'
  return {
    id: requireString(t, 'id', row.id),
    clientId: requireString(t, 'client_id', row.client_id),
    secretCiphertext: requireString(t, 'secret_ciphertext', row.secret_ciphertext),
    state: oneOf(APP_SECRET_STATES, t, 'state', row.state),
    createdAt: requireInteger(t, 'created_at', row.created_at),
    expiresAt: optionalInteger(t, 'expires_at', row.expires_at),
  }
}

/** Maps a `webhook_deliveries` row to a {@link DeliveryRecord}, or throws `internal` if the row is corrupt. */
export function toDeliveryRecord(row: DeliveryRow): DeliveryRecord {
  const t = 'webhook_deliveries'
  return {
    id: requireString(t, 'id', row.id),
    eventId: requireString(t, 'event_id', row.event_id),
    url: requireString(t, 'url', row.url),
    status: oneOf(DELIVERY_STATUSES, t, 'status', row.status),
    attempts: requireInteger(t, 'attempts', row.attempts),
    nextAttemptAt: requireInteger(t, 'next_attempt_at', row.next_attempt_at),
    lastStatusCode: optionalInteger(t, 'last_status_code', row.last_status_code),
    lastError: optionalString(t, 'last_error', row.last_error),
    leaseOwner: optionalString(t, 'lease_owner', row.lease_owner),
    leaseUntil: optionalInteger(t, 'lease_until', row.lease_until),
    createdAt: requireInteger(t, 'created_at', row.created_at),
    updatedAt: requireInteger(t, 'updated_at', row.updated_at),
    deliveredAt: optionalInteger(t, 'delivered_at', row.delivered_at),
  }
}

/** Row-mapping helpers for the role stores that keep their tables in their own modules. */
export { corrupt as corruptRow }
