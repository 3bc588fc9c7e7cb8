/**
 * Creating, resolving and revoking API keys kept in the database. A key is `spc_` + 256 random bits in
 * base64url; only its SHA-256 is stored, so it is shown once, when created. The CLI and the API both create
 * keys here, so both apply the same rules (at least one scope, valid tenants, a printable name).
 */
import { SpConnectError } from '../../domain/errors.ts'
import type { ApiKeyRecord } from '../../store/api-key-store.ts'
import type { Store } from '../../store/store.ts'
import type { Deps } from '../deps.ts'
import { base64url, newId, sha256 } from '../encoding.ts'
import type { EventRecorder } from '../events/events.ts'
import { isTenantId } from '../ids.ts'
import { isScope, type Principal, SCOPES, type Scope } from './principal.ts'

/** Prefix of keys made here, so they are recognisable in a leak scanner or a config file. */
const API_KEY_PREFIX = 'spc_'
/** How many tenants one key may name. */
const MAX_KEY_TENANTS = 100
/** A key records its use at most this often (a write per request would make every read a write). */
export const KEY_TOUCH_INTERVAL_MS = 5 * 60_000

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/** What a new key may do. */
interface ApiKeySpec {
  readonly name: string
  readonly scopes: readonly string[]
  /** Null or absent: every tenant. */
  readonly tenants?: readonly string[] | null | undefined
  /** `cli` or `api:<key id>`. */
  readonly createdBy: string
}

/** Checks a key spec; throws `invalid_request` naming what is wrong (never echoing values). */
export function validateApiKeySpec(spec: ApiKeySpec): {
  name: string
  scopes: Scope[]
  tenants: string[] | null
} {
  const name = spec.name.trim()
  if (name.length < 1 || name.length > 100 || CONTROL.test(name) || !name.isWellFormed()) {
    throw new SpConnectError('invalid_request', { detail: 'name: 1-100 printable characters' })
  }
  if (spec.scopes.length === 0) {
    throw new SpConnectError('invalid_request', {
      detail: `scopes: give at least one of ${SCOPES.join(', ')} (no default, so no key gets more than asked)`,
    })
  }
  if (!spec.scopes.every(isScope)) {
    throw new SpConnectError('invalid_request', {
      detail: `scopes: each must be one of ${SCOPES.join(', ')}`,
    })
  }
  // Kept in the table's order, without repeats.
  const scopes = SCOPES.filter((scope) => spec.scopes.includes(scope))
  let tenants: string[] | null = null
  if (spec.tenants !== undefined && spec.tenants !== null) {
    if (spec.tenants.length === 0) {
      throw new SpConnectError('invalid_request', {
        detail: 'tenants: empty; omit it (or null) for a key of every tenant',
      })
    }
    if (spec.tenants.length > MAX_KEY_TENANTS || !spec.tenants.every(isTenantId)) {
      throw new SpConnectError('invalid_request', {
        detail: `tenants: at most ${MAX_KEY_TENANTS} ids of 1-256 printable characters`,
      })
    }
    tenants = [...new Set(spec.tenants)]
  }
  return { name, scopes, tenants }
}

/** Creates a key; returns its record and the key itself, which nothing keeps. */
export async function createApiKey(
  store: Store,
  deps: Pick<Deps, 'now' | 'randomBytes'>,
  events: EventRecorder,
  spec: ApiKeySpec,
): Promise<{ record: ApiKeyRecord; key: string }> {
  const { name, scopes, tenants } = validateApiKeySpec(spec)
  const key = `${API_KEY_PREFIX}${base64url(deps.randomBytes(32))}`
  const record: ApiKeyRecord = {
    id: newId('key', deps.randomBytes),
    name,
    hash: sha256(key),
    scopes,
    tenants,
    createdAt: deps.now(),
    lastUsedAt: null,
    revokedAt: null,
    createdBy: spec.createdBy,
  }
  await store.apiKeys.insert(record)
  await events.record('api_key.created', null, {
    key_id: record.id,
    name: record.name,
    scopes: record.scopes,
    tenants: record.tenants,
    created_by: record.createdBy,
  })
  return { record, key }
}

/** Revokes a key; returns it as revoked, or undefined if there is none. */
export async function revokeApiKey(
  store: Store,
  deps: Pick<Deps, 'now'>,
  events: EventRecorder,
  id: string,
  by: string,
): Promise<ApiKeyRecord | undefined> {
  const before = await store.apiKeys.get(id)
  if (!before) return undefined
  const after = await store.apiKeys.revoke(id, deps.now())
  if (after && before.revokedAt === null) await events.record('api_key.revoked', null, { key_id: id, by })
  return after
}

/** The principal of a stored key. */
export function principalOf(record: ApiKeyRecord): Principal {
  return {
    kind: 'api_key',
    keyId: record.id,
    name: record.name,
    scopes: new Set(record.scopes),
    tenants: record.tenants,
  }
}

/** The public view of a key: never its value or hash. */
export function apiKeyJson(record: ApiKeyRecord) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())
  return {
    id: record.id,
    name: record.name,
    scopes: [...record.scopes],
    tenants: record.tenants === null ? null : [...record.tenants],
    created_at: iso(record.createdAt),
    created_by: record.createdBy,
    last_used_at: iso(record.lastUsedAt),
    revoked_at: iso(record.revokedAt),
  }
}
