/**
 * API keys as managed objects: the sub-store behind `Store.apiKeys`. A key is stored as the SHA-256 of its
 * value (base64url, like every other hashed secret), never the value; it is found by that hash. Scopes and
 * tenants are JSON arrays in text columns (portable to SQLite and PostgreSQL); tenants NULL means every tenant.
 * Times are milliseconds since the epoch.
 */
import type { Kysely, Selectable } from 'kysely'
import { SpConnectError } from '../domain/errors.ts'
import { isScope, type Scope } from '../domain/scopes.ts'
import type { Database } from './schema.ts'

/** One row per API key created with the CLI or the API (bootstrap keys live in the configuration). */
export interface ApiKeysTable {
  id: string
  name: string
  /** SHA-256 of the key, base64url; unique. */
  hash: string
  /** JSON array of scopes. */
  scopes: string
  /** JSON array of tenant ids, or NULL for every tenant. */
  tenants: string | null
  created_at: number
  last_used_at: number | null
  revoked_at: number | null
  /** Who created it: `cli`, or `api:<key id>`. */
  created_by: string
}

/** A stored API key (its hash, never its value). */
export interface ApiKeyRecord {
  readonly id: string
  readonly name: string
  readonly hash: string
  readonly scopes: readonly Scope[]
  /** Null: every tenant. Never an empty array. */
  readonly tenants: readonly string[] | null
  readonly createdAt: number
  readonly lastUsedAt: number | null
  readonly revokedAt: number | null
  readonly createdBy: string
}

/** A key to insert: the record without its usage and revocation. */
export type NewApiKey = Omit<ApiKeyRecord, 'lastUsedAt' | 'revokedAt'>

/** The API-key part of the storage contract. */
export interface ApiKeyStore {
  /** Inserts a key; ids and hashes are unique (a clash is an error: both come from 256-bit randomness). */
  insert(key: NewApiKey): Promise<void>
  /** The key with this hash, revoked or not (the caller refuses revoked ones). */
  findByHash(hash: string): Promise<ApiKeyRecord | undefined>
  get(id: string): Promise<ApiKeyRecord | undefined>
  /** Every key, revoked ones included, oldest first (by created_at, id). */
  list(): Promise<ApiKeyRecord[]>
  /**
   * Revokes the key if it is not revoked yet (the first revocation time stays). Returns the key as it is
   * afterwards, or undefined when there is no such key.
   */
  revoke(id: string, now: number): Promise<ApiKeyRecord | undefined>
  /**
   * Records use at `now` if the last recorded use is older than `minIntervalMs` (or there is none), so a busy
   * key writes at most once per interval however many processes use it. True if it wrote.
   */
  touch(id: string, now: number, minIntervalMs: number): Promise<boolean>
}

type ApiKeyRow = Selectable<ApiKeysTable>

function corrupt(column: string): SpConnectError {
  // The column, never its value.
  return new SpConnectError('internal', { detail: `corrupt row in api_keys: column ${column}` })
}

function integer(column: string, value: unknown): number {
  const n =
    typeof value === 'number'
      ? value
      : typeof value === 'bigint' || (typeof value === 'string' && /^-?\d+$/.test(value))
        ? Number(value)
        : Number.NaN
  if (!Number.isSafeInteger(n)) throw corrupt(column)
  return n
}

function optionalInteger(column: string, value: unknown): number | null {
  return value === null ? null : integer(column, value)
}

function string(column: string, value: unknown): string {
  if (typeof value !== 'string') throw corrupt(column)
  return value
}

function jsonStrings(column: string, value: string): string[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    throw corrupt(column)
  }
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) throw corrupt(column)
  return parsed
}

/** Maps an `api_keys` row to an {@link ApiKeyRecord}, or throws `internal` if the row is corrupt. */
function toApiKeyRecord(row: ApiKeyRow): ApiKeyRecord {
  const scopes = jsonStrings('scopes', string('scopes', row.scopes))
  if (!scopes.every(isScope)) throw corrupt('scopes')
  const tenants = row.tenants === null ? null : jsonStrings('tenants', string('tenants', row.tenants))
  // An empty list would read as "no tenant" to some and "every tenant" to others: the store never writes one.
  if (tenants !== null && tenants.length === 0) throw corrupt('tenants')
  return {
    id: string('id', row.id),
    name: string('name', row.name),
    hash: string('hash', row.hash),
    scopes: scopes.filter(isScope),
    tenants,
    createdAt: integer('created_at', row.created_at),
    lastUsedAt: optionalInteger('last_used_at', row.last_used_at),
    revokedAt: optionalInteger('revoked_at', row.revoked_at),
    createdBy: string('created_by', row.created_by),
  }
}

/** {@link ApiKeyStore} over Kysely: portable statements only, for SQLite and PostgreSQL alike. */
export class KyselyApiKeyStore implements ApiKeyStore {
  readonly #db: Kysely<Database>

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  async insert(key: NewApiKey): Promise<void> {
    if (key.tenants !== null && key.tenants.length === 0) {
      throw new SpConnectError('invalid_request', { detail: 'tenants: empty (use null for every tenant)' })
    }
    await this.#db
      .insertInto('api_keys')
      .values({
        id: key.id,
        name: key.name,
        hash: key.hash,
        scopes: JSON.stringify(key.scopes),
        tenants: key.tenants === null ? null : JSON.stringify(key.tenants),
        created_at: key.createdAt,
        last_used_at: null,
        revoked_at: null,
        created_by: key.createdBy,
      })
      .execute()
  }

  async findByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const row = await this.#db.selectFrom('api_keys').selectAll().where('hash', '=', hash).executeTakeFirst()
    return row && toApiKeyRecord(row)
  }

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    const row = await this.#db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst()
    return row && toApiKeyRecord(row)
  }

  async list(): Promise<ApiKeyRecord[]> {
    const rows = await this.#db
      .selectFrom('api_keys')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .execute()
    return rows.map(toApiKeyRecord)
  }

  async revoke(id: string, now: number): Promise<ApiKeyRecord | undefined> {
    // Conditional, so a second revocation keeps the first time; then read what is there either way.
    await this.#db
      .updateTable('api_keys')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute()
    return this.get(id)
  }

  async touch(id: string, now: number, minIntervalMs: number): Promise<boolean> {
    const result = await this.#db
      .updateTable('api_keys')
      .set({ last_used_at: now })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', now - minIntervalMs)]))
      .executeTakeFirst()
    return result.numUpdatedRows > 0n
  }
}
