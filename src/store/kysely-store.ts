/**
 * The `Store` contract over Kysely, shared by SQLite and PostgreSQL: one handle composed of the role stores
 * (auth-state-store.ts, connection-store.ts, refresher-store.ts, event-store.ts, secret-store.ts,
 * rotation-store.ts, and the api-key, login-request and operator stores), all on the same Kysely instance.
 * Every rule that matters under concurrency is one conditional statement (`UPDATE … WHERE <condition>
 * RETURNING *`, `INSERT … ON CONFLICT DO NOTHING RETURNING *`): the database decides atomically, so no caller
 * ever reads, decides, then writes. Only portable SQL is used in the role stores; dialect-specific setup lives
 * in sqlite.ts and postgres.ts. The dialect branches in the queries are `FOR UPDATE SKIP LOCKED` in
 * `claimDueDeliveries` and in the claim of refresh candidates on PostgreSQL, the key-id extraction of
 * `listCiphertextKeyIds`, and the NOTIFY that PostgreSQL stores (`notify`) add to the writes waiters care about
 * (connection-store.ts).
 *
 * `updated_at` moves with `version`, i.e. with every write that changes tokens or status; lease bookkeeping,
 * usage, reminders and re-encryption change neither. Statements safe to repeat after a lost connection are
 * marked in kysely-common.ts.
 */
import type { Kysely } from 'kysely'
import { type ApiKeyStore, KyselyApiKeyStore } from './api-key-store.ts'
import { KyselyAuthStateStore } from './auth-state-store.ts'
import { ConnectionChangeWaiters } from './connection-changes.ts'
import { KyselyConnectionStore } from './connection-store.ts'
import { withStoreErrors } from './error-boundary.ts'
import { KyselyEventStore } from './event-store.ts'
import type { KyselyRoleContext } from './kysely-common.ts'
import { KyselyLoginRequestStore, type LoginRequestStore } from './login-request-store.ts'
import { MIGRATIONS } from './migrations/index.ts'
import { type Migration, migrateToLatest, type SqlDialectName } from './migrator.ts'
import { KyselyOperatorStore, type OperatorStore } from './operator-store.ts'
import { KyselyRateBucketStore, type RateBucketStore } from './rate-bucket-store.ts'
import { KyselyRefresherStore } from './refresher-store.ts'
import { KyselyKeyRotationStore } from './rotation-store.ts'
import { type Database, MIGRATIONS_TABLE } from './schema.ts'
import { KyselyAppSecretStore } from './secret-store.ts'
import type {
  AppSecretStore,
  AuthStateStore,
  ConnectionStore,
  EventStore,
  KeyRotationStore,
  MigrationOutcome,
  RefresherStore,
  Store,
  StoreLifecycle,
} from './store.ts'

export interface KyselyStoreOptions {
  readonly dialect: SqlDialectName
  /** Defaults to every sp-connect migration; tests may pass their own list. */
  readonly migrations?: readonly Migration[]
  /** Clock for migration bookkeeping; defaults to `Date.now`. */
  readonly now?: () => number
  /**
   * PostgreSQL only: send a NOTIFY on the connection-change channel (connection-changes.ts) from the writes
   * that wake waiters. Off by default (SQLite has no NOTIFY).
   */
  readonly notify?: boolean
  /**
   * This handle's waiters, when something else wakes them too (postgres-listener.ts's listening connection).
   * The store makes its own otherwise.
   */
  readonly waiters?: ConnectionChangeWaiters
  /** Runs first in `close()`, before the database is destroyed (postgres.ts stops its listening connection). */
  readonly onClose?: () => Promise<void>
}

/** Migrations and the end of the handle: `close()` releases the waiters, then destroys the database. */
class KyselyStoreLifecycle implements StoreLifecycle {
  readonly #db: Kysely<Database>
  readonly #dialect: SqlDialectName
  readonly #migrations: readonly Migration[]
  readonly #now: () => number
  readonly #waiters: ConnectionChangeWaiters
  readonly #onClose: (() => Promise<void>) | undefined
  #closed: Promise<void> | undefined

  constructor(
    context: KyselyRoleContext,
    options: KyselyStoreOptions & { readonly waiters: ConnectionChangeWaiters },
  ) {
    this.#db = context.db
    this.#dialect = context.dialect
    this.#migrations = options.migrations ?? MIGRATIONS
    this.#now = options.now ?? Date.now
    this.#waiters = options.waiters
    this.#onClose = options.onClose
  }

  migrate(): Promise<MigrationOutcome[]> {
    return migrateToLatest(this.#db, this.#migrations, { dialect: this.#dialect, now: this.#now })
  }

  async pendingMigrations(): Promise<string[]> {
    const tables = await this.#db.introspection.getTables()
    if (!tables.some((t) => t.name === MIGRATIONS_TABLE)) return this.#migrations.map((m) => m.name)
    const applied = new Set(
      (await this.#db.selectFrom(MIGRATIONS_TABLE).select('name').execute()).map((row) => row.name),
    )
    return this.#migrations.map((m) => m.name).filter((name) => !applied.has(name))
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#waiters.close()
      try {
        await this.#onClose?.()
      } finally {
        await this.#db.destroy()
      }
    })()
    return this.#closed
  }
}

/**
 * The public methods of a role store (own and inherited, not the constructor), bound to it, as the own
 * properties of a plain object: the pieces `Store` is assembled from. Private `#` members stay on the role.
 */
function methodsOf<Role extends object>(role: Role): Role {
  const methods: Record<string, unknown> = {}
  for (
    let proto = Object.getPrototypeOf(role);
    proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const value: unknown = Reflect.get(role, name)
      if (name !== 'constructor' && !(name in methods) && typeof value === 'function') {
        methods[name] = value.bind(role)
      }
    }
  }
  return methods as Role
}

/**
 * Builds the store over a Kysely instance the caller configured for `dialect`. The store owns `db` from now
 * on: `close()` destroys it.
 */
export function createKyselyStore(db: Kysely<Database>, options: KyselyStoreOptions): Store {
  const context: KyselyRoleContext = { db, dialect: options.dialect }
  const waiters = options.waiters ?? new ConnectionChangeWaiters()
  const store: Store = {
    ...methodsOf<StoreLifecycle>(new KyselyStoreLifecycle(context, { ...options, waiters })),
    ...methodsOf<AuthStateStore>(new KyselyAuthStateStore(context)),
    ...methodsOf<ConnectionStore>(
      new KyselyConnectionStore(context, { notify: options.notify === true, waiters }),
    ),
    ...methodsOf<RefresherStore>(new KyselyRefresherStore(context)),
    ...methodsOf<EventStore>(new KyselyEventStore(context)),
    ...methodsOf<AppSecretStore>(new KyselyAppSecretStore(context)),
    ...methodsOf<KeyRotationStore>(new KyselyKeyRotationStore(context)),
    apiKeys: new KyselyApiKeyStore(db) satisfies ApiKeyStore,
    loginRequests: new KyselyLoginRequestStore(db) satisfies LoginRequestStore,
    operators: new KyselyOperatorStore(db) satisfies OperatorStore,
    rateBuckets: new KyselyRateBucketStore(db) satisfies RateBucketStore,
  }
  // Driver failures leave the store as `store_unavailable` (error-boundary.ts), for every caller alike.
  return withStoreErrors(store)
}
