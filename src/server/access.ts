/**
 * Object-level access for the /v1 API (OWASP API1, BOLA): which key is calling, and whether it may see the
 * connection it names. A connection the key may not see answers exactly like a missing one (404
 * `connection_not_found`), so a key cannot probe other tenants' ids; the refusal is audited as
 * `access.denied`, at most once per key and connection per minute, so a flood of refusals cannot grow the
 * events table without bound. Issued access tokens are audited as `token.issued` once per new token per key and
 * connection. Both audit events stay in the audit log and are not sent to webhooks.
 */
import type { Context } from 'hono'
import { KEY_TOUCH_INTERVAL_MS, principalOf } from '../core/access/api-keys.ts'
import { bootstrapPrincipal, canSeeTenant, type Principal } from '../core/access/principal.ts'
import { newId, sha256 } from '../core/encoding.ts'
import type { EventType } from '../core/events/events.ts'
import { isConnectionId, requireId } from '../core/ids.ts'
import { SpConnectError } from '../domain/errors.ts'
import type { Runtime } from '../runtime.ts'
import type { ConnectionRecord } from '../store/store.ts'
import { findApiKey } from './api-keys.ts'
import type { ServerEnv } from './context.ts'

/** An `access.denied` event per key and connection at most this often. */
const DENIAL_AUDIT_INTERVAL_MS = 60_000
/**
 * At most this many `access.denied` events per key per minute, however many connections it probes: the
 * per-connection memory is bounded, so without this a key cycling through more connections than it holds could
 * still write one event per request. Refusals beyond it are logged, not stored.
 */
export const DENIAL_AUDITS_PER_KEY_PER_MINUTE = 30

/** A bounded map that forgets its oldest entries (insertion order) beyond its limit. */
class BoundedMemory<V> {
  readonly #entries = new Map<string, V>()
  readonly #limit: number

  constructor(limit: number) {
    this.#limit = limit
  }

  get(key: string): V | undefined {
    return this.#entries.get(key)
  }

  set(key: string, value: V): void {
    // Re-inserting moves the key to the end, so the least recently written go first.
    this.#entries.delete(key)
    this.#entries.set(key, value)
    if (this.#entries.size > this.#limit) {
      const oldest = this.#entries.keys().next()
      if (!oldest.done) this.#entries.delete(oldest.value)
    }
  }
}

/** What one runtime remembers about recent audits and key use (per process; the database stays the truth). */
interface AccessMemory {
  readonly denials: BoundedMemory<number>
  /** Per key: the start of its current one-minute window and the denials audited in it. */
  readonly denialWindows: BoundedMemory<{ start: number; count: number }>
  readonly issuedTokens: BoundedMemory<number>
  readonly touches: BoundedMemory<number>
  /**
   * Per connection read from the store: its tenant (null for none). A connection never moves between tenants
   * and is never deleted (connection-store.ts), so this stays true; see {@link requireVisibleConnectionId}.
   */
  readonly tenants: BoundedMemory<string | null>
}

const memories = new WeakMap<Runtime, AccessMemory>()

function memoryOf(runtime: Runtime): AccessMemory {
  let memory = memories.get(runtime)
  if (!memory) {
    memory = {
      denials: new BoundedMemory(10_000),
      denialWindows: new BoundedMemory(10_000),
      // One entry per key and connection used: room for large fleets, each entry a few dozen bytes.
      issuedTokens: new BoundedMemory(100_000),
      touches: new BoundedMemory(10_000),
      tenants: new BoundedMemory(100_000),
    }
    memories.set(runtime, memory)
  }
  return memory
}

/**
 * The principal of a presented key: a bootstrap key (compared in constant time), else a key from the database
 * found by its hash and not revoked. Undefined for anything else. Records the key's use at most every few
 * minutes.
 */
export async function authenticateApiKey(
  runtime: Runtime,
  presented: string | undefined,
): Promise<Principal | undefined> {
  if (!presented || presented.length > 512) return undefined
  const bootstrap = findApiKey(runtime.config.apiKeys, presented)
  if (bootstrap) return bootstrapPrincipal(bootstrap.name)
  const record = await runtime.store.apiKeys.findByHash(sha256(presented))
  if (!record || record.revokedAt !== null) return undefined
  const now = runtime.deps.now()
  const touches = memoryOf(runtime).touches
  const last = touches.get(record.id)
  if (last === undefined || now - last >= KEY_TOUCH_INTERVAL_MS) {
    touches.set(record.id, now)
    try {
      await runtime.store.apiKeys.touch(record.id, now, KEY_TOUCH_INTERVAL_MS)
    } catch (error) {
      // Usage bookkeeping must not fail the request it describes.
      runtime.deps.logger.warn({ keyId: record.id, errorName: (error as Error).name }, 'api key touch failed')
    }
  }
  return principalOf(record)
}

/** Appends an audit-only event (no webhook deliveries) and logs it. */
async function audit(
  runtime: Runtime,
  type: EventType,
  connectionId: string | null,
  data: Record<string, unknown>,
): Promise<void> {
  const id = newId('evt', runtime.deps.randomBytes)
  await runtime.store.appendEvent({ id, type, connectionId, data, createdAt: runtime.deps.now() }, [])
  const level = type === 'access.denied' ? 'warn' : 'info'
  runtime.deps.logger[level]({ event: type, eventId: id, connectionId, ...data }, 'event')
}

/**
 * Records `access.denied` for the key and what it was refused (a connection, or acting for a tenant) unless one
 * was recorded for the same pair in the last minute.
 */
export async function recordAccessDenied(
  runtime: Runtime,
  principal: Principal,
  connectionId: string | null,
  action: string,
  details: { tenantId?: string } = {},
): Promise<void> {
  const now = runtime.deps.now()
  const memory = memoryOf(runtime)
  const key = `${principal.keyId}\u0000${connectionId ?? `${action}\u0000${details.tenantId ?? ''}`}`
  const last = memory.denials.get(key)
  if (last !== undefined && now - last < DENIAL_AUDIT_INTERVAL_MS) return
  memory.denials.set(key, now)
  let window = memory.denialWindows.get(principal.keyId)
  if (window === undefined || now - window.start >= DENIAL_AUDIT_INTERVAL_MS)
    window = { start: now, count: 0 }
  window.count++
  memory.denialWindows.set(principal.keyId, window)
  if (window.count > DENIAL_AUDITS_PER_KEY_PER_MINUTE) {
    runtime.deps.logger.warn(
      { keyId: principal.keyId, connectionId },
      'access denied (audit suppressed: too many)',
    )
    return
  }
  await audit(runtime, 'access.denied', connectionId, {
    key_id: principal.keyId,
    key_name: principal.name,
    action,
    ...(details.tenantId !== undefined ? { tenant_id: details.tenantId } : {}),
  })
}

/**
 * Throws `forbidden` unless the calling key may act for `tenantId` (creating a connect link or approving a
 * login request for it); the refusal is audited like a hidden connection.
 */
export async function requireTenantAudited(c: Context<ServerEnv>, tenantId: string): Promise<void> {
  const { runtime, principal } = c.var
  if (canSeeTenant(principal, tenantId)) return
  await recordAccessDenied(runtime, principal, null, `${c.req.method} ${c.req.routePath}`, { tenantId })
  throw new SpConnectError('forbidden', { detail: 'tenant not allowed' })
}

/**
 * The connection `id` names, if the calling key may see it: 400 for a malformed id, 404
 * `connection_not_found` for a missing one and, identically, for one of another tenant (audited).
 */
export async function loadVisibleConnection(c: Context<ServerEnv>, id: string): Promise<ConnectionRecord> {
  requireId(isConnectionId, id, 'connection id')
  const { runtime, principal } = c.var
  const row = await runtime.store.getConnection(id)
  if (!row) throw new SpConnectError('connection_not_found')
  memoryOf(runtime).tenants.set(row.id, row.tenantId)
  if (!canSeeTenant(principal, row.tenantId)) {
    await recordAccessDenied(runtime, principal, row.id, `${c.req.method} ${c.req.routePath}`)
    throw new SpConnectError('connection_not_found', { detail: 'not visible to this key' })
  }
  return row
}

/**
 * The id of a connection the calling key may see, for a route that needs nothing else from the row and leaves
 * the connection's status to the token manager (which re-checks it against the store every few seconds and
 * refuses a disconnected one; a disconnect on this instance takes effect at once). Once a connection has been
 * read, its tenant is checked from memory, without a store read per request; a connection not seen yet, or
 * not visible to this key, goes through {@link loadVisibleConnection} (404, audited refusal) as before.
 */
export async function requireVisibleConnectionId(c: Context<ServerEnv>, id: string): Promise<string> {
  requireId(isConnectionId, id, 'connection id')
  const runtime = c.get('runtime')
  const tenant = memoryOf(runtime).tenants.get(id)
  if (tenant !== undefined && canSeeTenant(c.get('principal'), tenant)) return id
  return (await loadVisibleConnection(c, id)).id
}

/**
 * Records `token.issued` for a key and connection once per access token (a new expiry means a new token), so a
 * caller asking every second for a cached token adds one event per token lifetime, not one per request.
 */
export async function recordTokenIssued(
  runtime: Runtime,
  principal: Principal,
  connectionId: string,
  expiresAt: number,
  kind: 'access_token' | 'restricted_data_token' = 'access_token',
): Promise<void> {
  const issued = memoryOf(runtime).issuedTokens
  // Per kind: an RDT handed out must not reset the memo of the access token, nor hide behind it.
  const key = `${principal.keyId}\u0000${connectionId}\u0000${kind}`
  if (issued.get(key) === expiresAt) return
  issued.set(key, expiresAt)
  await audit(runtime, 'token.issued', connectionId, {
    key_id: principal.keyId,
    key_name: principal.name,
    expires_at: new Date(expiresAt).toISOString(),
    // Access tokens keep their original shape; only an RDT says what it was.
    ...(kind === 'restricted_data_token' ? { kind } : {}),
  })
}
