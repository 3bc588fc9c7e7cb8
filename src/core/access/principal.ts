/**
 * Who is calling the API, and what it may do. A principal is an API key: its scopes say which kinds of
 * operation it may perform, its tenants which connections it may see and act on (OWASP API1, BOLA: the token
 * API checks *which* seller each caller may get). Bootstrap keys (`SP_CONNECT_API_KEYS`, the dev key) have every
 * scope and every tenant; keys from the database have what they were created with.
 *
 * - `read`: GETs (connections, events, deliveries, keys are `manage`).
 * - `tokens`: access tokens for connections, grantless tokens.
 * - `manage`: disconnecting, connect sessions and login requests, API keys, notifications.
 */
import { SpConnectError } from '../../domain/errors.ts'
import { isScope, SCOPES, type Scope } from '../../domain/scopes.ts'

// The scope vocabulary lives in src/domain (the store needs it too); its callers here keep importing it from here.
export { isScope, SCOPES, type Scope }

/** The caller of an API request, set by the /v1 authentication middleware. */
export interface Principal {
  readonly kind: 'api_key'
  /** `key_…` for keys from the database, `bootstrap:<name>` for configured ones. */
  readonly keyId: string
  readonly name: string
  readonly scopes: ReadonlySet<Scope>
  /** The tenants whose connections the key may see; null: every tenant (and connections without one). */
  readonly tenants: readonly string[] | null
}

/** Throws `forbidden` unless the principal holds `scope`. */
export function requireScope(principal: Principal, scope: Scope): void {
  if (!principal.scopes.has(scope)) throw new SpConnectError('forbidden', { detail: `needs scope ${scope}` })
}

/**
 * Whether the principal may see things of `tenantId`. A tenant-scoped key never sees tenantless connections:
 * nobody said they belong to its tenants.
 */
export function canSeeTenant(principal: Principal, tenantId: string | null): boolean {
  if (principal.tenants === null) return true
  return tenantId !== null && principal.tenants.includes(tenantId)
}

/** Throws `forbidden` unless the principal may act for `tenantId` (creating things for that tenant). */
export function requireTenant(principal: Principal, tenantId: string): void {
  if (!canSeeTenant(principal, tenantId))
    throw new SpConnectError('forbidden', { detail: 'tenant not allowed' })
}

/** Throws `forbidden` unless the principal is an all-tenant key (app-wide data and operations). */
export function requireAllTenants(principal: Principal): void {
  if (principal.tenants !== null) throw new SpConnectError('forbidden', { detail: 'needs an all-tenant key' })
}

/**
 * Whether a key with `scopes` and `tenants` gives no more than `principal` has: every scope is the
 * principal's, and its tenants are a subset of the principal's (an all-tenant key only from an all-tenant one).
 */
export function isWithin(
  principal: Principal,
  scopes: Iterable<Scope>,
  tenants: readonly string[] | null,
): boolean {
  for (const scope of scopes) if (!principal.scopes.has(scope)) return false
  if (principal.tenants === null) return true
  if (tenants === null) return false
  const own = principal.tenants
  return tenants.every((tenant) => own.includes(tenant))
}

/** The principal of a bootstrap key: every scope, every tenant. */
export function bootstrapPrincipal(name: string): Principal {
  return { kind: 'api_key', keyId: `bootstrap:${name}`, name, scopes: new Set(SCOPES), tenants: null }
}
