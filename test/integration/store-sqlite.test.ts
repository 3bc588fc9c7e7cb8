import { spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { fileURLToPath } from 'node:url'
import { Kysely, sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import { isSpConnectError } from '../../src/domain/errors.ts'
import {
  createKyselyStore,
  type Database,
  MIGRATIONS,
  type Migration,
  migrateDown,
  migrateToLatest,
  NodeSqliteDialect,
  openSqliteDatabase,
  openSqliteStore,
  type Store,
} from '../../src/store/index.ts'
import { apiKeyConformanceSuite } from '../store/api-key-conformance.ts'
import { storeConformanceSuite } from '../store/conformance.ts'
import { operatorStoreConformanceSuite } from '../store/operator-conformance.ts'
import { rateBucketConformanceSuite } from '../store/rate-bucket-conformance.ts'

const dirs: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(`${tmpdir()}/sp-connect-`)
  dirs.push(dir)
  return dir
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A store on a fresh SQLite file, for every conformance suite; `openAnother` opens a second handle on it. */
async function sqliteFileUnderTest() {
  const dir = mkdtempSync(`${tmpdir()}/sp-connect-`)
  const path = join(dir, 'store.db')
  const store = await openSqliteStore({ path })
  return {
    store,
    openAnother: () => openSqliteStore({ path }),
    async cleanup() {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

operatorStoreConformanceSuite('SQLite file', sqliteFileUnderTest)
storeConformanceSuite('SQLite file', sqliteFileUnderTest)
apiKeyConformanceSuite('SQLite file', sqliteFileUnderTest)
rateBucketConformanceSuite('SQLite file', sqliteFileUnderTest)

const T0 = 1_800_000_000_000
const mode = (path: string) => statSync(path).mode & 0o777

function kyselyOn(path: string): Kysely<Database> {
  return new Kysely<Database>({ dialect: new NodeSqliteDialect(openSqliteDatabase(path)) })
}

async function tableNames(db: Kysely<Database>): Promise<string[]> {
  const result = await sql<{
    name: string
  }>`select name from sqlite_master where type = 'table' order by name`.execute(db)
  return result.rows.map((r) => r.name)
}

describe('SQLite store: files and pragmas', () => {
  it('creates the directory 0700 and the database and its WAL files 0600', async () => {
    const dir = join(tempDir(), 'nested', 'data')
    const path = join(dir, 'sp.db')
    const store = await openSqliteStore({ path })
    try {
      await store.migrate()
      expect(mode(dir)).toBe(0o700)
      expect(mode(path)).toBe(0o600)
      for (const sidecar of [`${path}-wal`, `${path}-shm`]) {
        if (existsSync(sidecar)) expect(mode(sidecar)).toBe(0o600)
      }
      expect(existsSync(`${path}-wal`)).toBe(true)
    } finally {
      await store.close()
    }
  })

  it('tightens an existing database file to 0600', async () => {
    const path = join(tempDir(), 'loose.db')
    writeFileSync(path, '')
    chmodSync(path, 0o644)
    const store = await openSqliteStore({ path })
    await store.close()
    expect(mode(path)).toBe(0o600)
  })

  it('sets WAL, busy_timeout, synchronous=NORMAL and foreign keys', () => {
    const db = openSqliteDatabase(join(tempDir(), 'pragmas.db'))
    try {
      expect(db.prepare('pragma journal_mode').get()).toEqual({ journal_mode: 'wal' })
      expect(db.prepare('pragma busy_timeout').get()).toEqual({ timeout: 5000 })
      expect(db.prepare('pragma synchronous').get()).toEqual({ synchronous: 1 })
      expect(db.prepare('pragma foreign_keys').get()).toEqual({ foreign_keys: 1 })
    } finally {
      db.close()
    }
  })

  it('works in memory for quick tests', async () => {
    const store = await openSqliteStore({ path: ':memory:' })
    try {
      await store.migrate()
      expect(await store.listConnections()).toEqual([])
    } finally {
      await store.close()
    }
  })

  it('closes cleanly even when never used, and twice', async () => {
    const path = join(tempDir(), 'idle.db')
    const store = await openSqliteStore({ path })
    await store.close()
    await store.close()
    // A closed handle leaves no WAL behind (SQLite removes it when the last connection closes).
    expect(existsSync(`${path}-wal`)).toBe(false)
  })
})

describe('SQLite store: transactions', () => {
  it('takes the write lock at BEGIN (IMMEDIATE), before any write', async () => {
    const path = join(tempDir(), 'immediate.db')
    const db = kyselyOn(path)
    const other = new DatabaseSync(path)
    try {
      other.exec('pragma busy_timeout = 0')
      await db.transaction().execute(async () => {
        // Our transaction has issued no statement yet, but already holds the single write lock.
        expect(() => other.exec('begin immediate')).toThrow(/locked|busy/i)
      })
      other.exec('begin immediate')
      other.exec('rollback')
    } finally {
      other.close()
      await db.destroy()
    }
  })

  it('waits for another handle in the same process without blocking the event loop', async () => {
    const path = join(tempDir(), 'wait.db')
    const a = kyselyOn(path)
    const b = kyselyOn(path)
    try {
      await sql`create table t (n integer)`.execute(a)
      let release = () => {}
      const held = new Promise<void>((resolve) => {
        release = resolve
      })
      let entered = () => {}
      const inside = new Promise<void>((resolve) => {
        entered = resolve
      })
      const first = a.transaction().execute(async (trx) => {
        await sql`insert into t values (1)`.execute(trx)
        entered()
        await held
      })
      await inside
      const second = b.transaction().execute(async (trx) => {
        await sql`insert into t values (2)`.execute(trx)
      })
      // b is now retrying BEGIN IMMEDIATE on timers; a can still finish because the loop is free.
      setTimeout(release, 20)
      await Promise.all([first, second])
      const rows = await sql<{ n: number }>`select n from t order by n`.execute(a)
      expect(rows.rows.map((r) => r.n)).toEqual([1, 2])
    } finally {
      await a.destroy()
      await b.destroy()
    }
  })
})

describe('SQLite store: waiting for the write lock', () => {
  it('makes a plain statement on another handle wait for a suspended transaction without blocking the loop', async () => {
    const path = join(tempDir(), 'autocommit-wait.db')
    const a = kyselyOn(path)
    const b = kyselyOn(path)
    try {
      await sql`create table t (n integer)`.execute(a)
      let release = () => {}
      const held = new Promise<void>((resolve) => {
        release = resolve
      })
      let entered = () => {}
      const inside = new Promise<void>((resolve) => {
        entered = resolve
      })
      const first = a.transaction().execute(async (trx) => {
        await sql`insert into t values (1)`.execute(trx)
        entered()
        await held
        await sql`insert into t values (2)`.execute(trx)
      })
      await inside
      // Not a transaction: SQLite's own busy handler would sleep here, synchronously, until it gave up.
      const second = sql`insert into t values (3)`.execute(b)
      setTimeout(release, 20)
      await Promise.all([first, second])
      const rows = await sql<{ n: number }>`select n from t order by rowid`.execute(a)
      expect(rows.rows.map((r) => r.n)).toEqual([1, 2, 3])
    } finally {
      await a.destroy()
      await b.destroy()
    }
  })

  it('gives up with SQLITE_BUSY after the busy timeout, waiting on timers', async () => {
    const path = join(tempDir(), 'busy.db')
    const db = new Kysely<Database>({ dialect: new NodeSqliteDialect(openSqliteDatabase(path), 30) })
    const other = new DatabaseSync(path)
    try {
      await sql`create table t (n integer)`.execute(db)
      other.exec('begin immediate')
      let turns = 0
      const ticker = setInterval(() => {
        turns++
      }, 1)
      const error = await sql`insert into t values (1)`.execute(db).then(
        () => undefined,
        (e: unknown) => e,
      )
      clearInterval(ticker)
      expect(String(error)).toMatch(/locked|busy/i)
      // The event loop kept turning while the statement waited.
      expect(turns).toBeGreaterThan(0)
      other.exec('rollback')
      await sql`insert into t values (2)`.execute(db)
      expect((await sql<{ n: number }>`select n from t`.execute(db)).rows).toEqual([{ n: 2 }])
    } finally {
      other.close()
      await db.destroy()
    }
  })

  it('does not retry a statement that fails for another reason', async () => {
    const db = kyselyOn(join(tempDir(), 'constraint.db'))
    try {
      await sql`create table t (n integer primary key)`.execute(db)
      await sql`insert into t values (1)`.execute(db)
      await expect(sql`insert into t values (1)`.execute(db)).rejects.toThrow(/UNIQUE/)
    } finally {
      await db.destroy()
    }
  })
})

describe('SQLite store: migrations', () => {
  it('creates the tables, reverts them with down, and re-applies', async () => {
    const db = kyselyOn(join(tempDir(), 'migrations.db'))
    try {
      const up = await migrateToLatest(db, MIGRATIONS, { dialect: 'sqlite', now: () => T0 })
      expect(up.map((r) => r.status)).toEqual(MIGRATIONS.map(() => 'applied'))
      expect(await tableNames(db)).toEqual([
        'api_keys',
        'app_secrets',
        'auth_states',
        'connect_sessions',
        'connections',
        'events',
        'login_requests',
        'operator_accounts',
        'operator_sessions',
        'rate_buckets',
        'sp_connect_migrations',
        'webhook_deliveries',
      ])
      const applied = await db.selectFrom('sp_connect_migrations').selectAll().execute()
      expect(applied).toEqual(MIGRATIONS.map((m) => ({ name: m.name, applied_at: T0 })))

      expect(await migrateDown(db, MIGRATIONS, { dialect: 'sqlite' })).toEqual(
        [...MIGRATIONS].reverse().map((m) => m.name),
      )
      expect(await tableNames(db)).toEqual(['sp_connect_migrations'])

      const again = await migrateToLatest(db, MIGRATIONS, { dialect: 'sqlite', now: () => T0 + 1 })
      expect(again.every((r) => r.status === 'applied')).toBe(true)
    } finally {
      await db.destroy()
    }
  })

  it('adds the token-lifecycle schema over existing rows and reverts to the initial one', async () => {
    // Exactly the first two migrations: later ones have tests of their own.
    const db = kyselyOn(join(tempDir(), 'lifecycle.db'))
    const [initial, lifecycle] = MIGRATIONS
    const columns = async (table: string) =>
      (
        await sql<{ name: string }>`select name from pragma_table_info(${table}) order by cid`.execute(db)
      ).rows.map((r) => r.name)
    const indexes = async () =>
      (
        await sql<{
          name: string
        }>`select name from sqlite_master where type = 'index' and name not like 'sqlite_%' order by name`.execute(
          db,
        )
      ).rows.map((r) => r.name)
    try {
      if (initial === undefined || lifecycle === undefined)
        throw new Error('expected the two first migrations')
      expect(lifecycle.name).toBe('2026-11-21T01-token-lifecycle')
      await migrateToLatest(db, [initial], { dialect: 'sqlite', now: () => T0 })
      const initialConnectionColumns = await columns('connections')
      const initialIndexes = await indexes()
      expect(await columns('app_secrets')).toEqual(['id', 'kind', 'ciphertext', 'created_at', 'expires_at'])
      await sql`insert into connections (id, selling_partner_id, region, account_type, status,
        refresh_token_ciphertext, authorized_at, reauthorize_by, created_at, updated_at)
        values ('con-old', 'A1', 'na', 'seller', 'active', 'r', ${T0}, ${T0 + 1}, ${T0}, ${T0})`.execute(db)

      const upToLifecycle = [initial, lifecycle]
      const up = await migrateToLatest(db, upToLifecycle, { dialect: 'sqlite', now: () => T0 + 1 })
      expect(up.map((r) => r.status)).toEqual(['already_applied', 'applied'])
      expect(await columns('connections')).toEqual([
        ...initialConnectionColumns,
        'last_used_at',
        'refresh_not_before',
        'reauth_reminder_days',
      ])
      expect(await columns('app_secrets')).toEqual([
        'id',
        'client_id',
        'secret_ciphertext',
        'state',
        'created_at',
        'expires_at',
      ])
      expect(await indexes()).toEqual(
        [
          ...initialIndexes,
          'app_secrets_client_created_idx',
          'connections_status_expires_idx',
          'connections_status_reauthorize_idx',
          'events_type_created_idx',
          'webhook_deliveries_event_idx',
          'webhook_deliveries_status_due_idx',
        ].sort(),
      )
      const store = createKyselyStore(db, { dialect: 'sqlite' })
      expect(await store.getConnection('con-old')).toMatchObject({
        id: 'con-old',
        lastUsedAt: null,
        refreshNotBefore: null,
        reauthReminderDays: null,
        version: 1,
      })

      expect(await migrateDown(db, upToLifecycle, { dialect: 'sqlite', steps: 1 })).toEqual([lifecycle.name])
      expect(await columns('connections')).toEqual(initialConnectionColumns)
      expect(await columns('app_secrets')).toEqual(['id', 'kind', 'ciphertext', 'created_at', 'expires_at'])
      expect(await tableNames(db)).not.toContain('webhook_deliveries')
      expect(await indexes()).toEqual(initialIndexes)
      const kept = await sql<{ id: string }>`select id from connections`.execute(db)
      expect(kept.rows).toEqual([{ id: 'con-old' }])
    } finally {
      await db.destroy()
    }
  })

  it('reports a failing migration, rolls it back, and stops there', async () => {
    const failing: Migration = {
      name: '2999-01-01T00-broken',
      async up(db) {
        await db.schema.createTable('half_done').addColumn('x', 'text').execute()
        throw new Error('boom')
      },
      async down() {},
    }
    const never: Migration = { name: '2999-01-02T00-never', up: async () => {}, down: async () => {} }
    const db = kyselyOn(join(tempDir(), 'failing.db'))
    const store = createKyselyStore(db, { dialect: 'sqlite', migrations: [...MIGRATIONS, failing, never] })
    try {
      const outcomes = await store.migrate()
      expect(outcomes.map((o) => [o.name, o.status])).toEqual([
        ...MIGRATIONS.map((m) => [m.name, 'applied']),
        [failing.name, 'failed'],
      ])
      expect(await tableNames(db)).not.toContain('half_done')
      const recorded = await db.selectFrom('sp_connect_migrations').select('name').execute()
      expect(recorded.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => m.name))
    } finally {
      await store.close()
    }
  })

  it('refuses a migration list out of order', async () => {
    const db = kyselyOn(':memory:')
    const a: Migration = { name: '2026-01-02', up: async () => {}, down: async () => {} }
    const b: Migration = { name: '2026-01-01', up: async () => {}, down: async () => {} }
    try {
      await expect(migrateToLatest(db, [a, b], { dialect: 'sqlite', now: () => T0 })).rejects.toThrow(/order/)
    } finally {
      await db.destroy()
    }
  })
})

describe('SQLite store: corrupt rows fail loudly', () => {
  it('rejects an unknown region, status or account type', async () => {
    const path = join(tempDir(), 'corrupt.db')
    const store = await openSqliteStore({ path })
    const raw = new DatabaseSync(path)
    try {
      await store.migrate()
      await store.insertConnection({
        id: 'con-1',
        sellingPartnerId: 'A1',
        region: 'na',
        accountType: 'seller',
        tenantId: null,
        refreshTokenCiphertext: 'r',
        accessTokenCiphertext: null,
        accessTokenExpiresAt: null,
        authorizedAt: T0,
        reauthorizeBy: T0 + 1,
        now: T0,
      })
      for (const [column, value, valid] of [
        ['region', 'mars', 'na'],
        ['status', 'revoked', 'active'],
        ['account_type', 'buyer', 'seller'],
      ] as const) {
        // Column names come from the constant list above; values are bound.
        const set = raw.prepare(`update connections set ${column} = ? where id = 'con-1'`)
        set.run(value)
        const error = await store.getConnection('con-1').then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(isSpConnectError(error, 'internal')).toBe(true)
        const detail = isSpConnectError(error) ? String(error.detail) : ''
        expect(detail).toContain(column)
        expect(detail).not.toContain(value)
        set.run(valid)
      }
      expect((await store.getConnection('con-1'))?.region).toBe('na')
    } finally {
      raw.close()
      await store.close()
    }
  })
})

describe('SQLite store: corrupt outbox and secret rows fail loudly', () => {
  it('rejects an unknown delivery status or app secret state', async () => {
    const path = join(tempDir(), 'corrupt-outbox.db')
    const store = await openSqliteStore({ path })
    const raw = new DatabaseSync(path)
    try {
      await store.migrate()
      await store.appendEvent({ id: 'evt-1', type: 't', connectionId: null, data: {}, createdAt: T0 }, [
        'https://app.example/hook',
      ])
      await store.insertAppSecret({
        id: 'sec-1',
        clientId: 'client',
        secretCiphertext: 'ct',
        state: 'active',
        createdAt: T0,
        expiresAt: null,
      })
      raw.prepare(`update webhook_deliveries set status = ?`).run('sent')
      raw.prepare(`update app_secrets set state = ?`).run('revoked')
      for (const [attempt, column] of [
        [() => store.listDeliveries(), 'webhook_deliveries: column status'],
        [() => store.listAppSecrets('client'), 'app_secrets: column state'],
      ] as const) {
        const error = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(isSpConnectError(error, 'internal')).toBe(true)
        const detail = isSpConnectError(error) ? String(error.detail) : ''
        expect(detail).toContain(column)
        expect(detail).not.toMatch(/sent|revoked/)
      }
    } finally {
      raw.close()
      await store.close()
    }
  })
})

/** A second Node process doing the same conditional writes on the same file. */
const CHILD_SCRIPT = `
import { existsSync, readFileSync } from 'node:fs'
const [storeModule, path, goFile, owner, countText] = process.argv.slice(2)
const { openSqliteStore } = await import(storeModule)
const store = await openSqliteStore({ path })
const count = Number(countText)
process.stdout.write('ready\\n')
while (!existsSync(goFile)) await new Promise((resolve) => setTimeout(resolve, 2))
// Every process spins until the same wall-clock instant, so they really do hit the same rows together.
const startAt = Number(readFileSync(goFile, 'utf8'))
while (Date.now() < startAt) {}
const consumed = []
const leased = []
const claimed = []
for (let i = 0; i < count; i++) {
  if (await store.consumeAuthState('state-' + i, ${T0})) consumed.push(i)
  if (await store.acquireLease('con-' + i, owner, ${T0 + 60_000}, ${T0})) leased.push(i)
  for (const d of await store.claimDueDeliveries(${T0}, owner, ${T0 + 60_000}, 1)) claimed.push(d.id)
}
await store.close()
process.stdout.write(JSON.stringify({ owner, consumed, leased, claimed }) + '\\n')
`

interface ChildResult {
  owner: string
  consumed: number[]
  leased: number[]
  claimed: string[]
}

function runChild(script: string, args: string[]): { ready: Promise<void>; done: Promise<ChildResult> } {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let onReady = () => {}
  const ready = new Promise<void>((resolve) => {
    onReady = resolve
  })
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    if (stdout.includes('ready\n')) onReady()
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => {
      onReady()
      if (code !== 0) return reject(new Error(`child exited with ${code}: ${stderr}`))
      const last = stdout.trim().split('\n').at(-1) ?? ''
      resolve(JSON.parse(last) as ChildResult)
    })
  })
  return { ready, done }
}

describe('SQLite store: across processes', () => {
  it('gives each state, lease and delivery to exactly one of several processes', async () => {
    const dir = tempDir()
    const path = join(dir, 'shared.db')
    const script = join(dir, 'child.ts')
    const goFile = join(dir, 'go')
    writeFileSync(script, CHILD_SCRIPT)
    const COUNT = 300
    const CHILDREN = 3
    const store: Store = await openSqliteStore({ path })
    try {
      await store.migrate()
      for (let i = 0; i < COUNT; i++) {
        await store.insertAuthState({
          stateHash: `state-${i}`,
          flow: 'website',
          region: 'na',
          accountType: 'seller',
          tenantId: null,
          returnTo: null,
          browserBindingHash: 'b',
          sellingPartnerId: null,
          connectionId: null,
          createdAt: T0,
          expiresAt: T0 + 600_000,
          consumedAt: null,
        })
        await store.insertConnection({
          id: `con-${i}`,
          sellingPartnerId: `A${i}`,
          region: 'na',
          accountType: 'seller',
          tenantId: null,
          refreshTokenCiphertext: 'r',
          accessTokenCiphertext: null,
          accessTokenExpiresAt: null,
          authorizedAt: T0,
          reauthorizeBy: T0 + 1,
          now: T0,
        })
      }
      // As many deliveries as each child makes claim attempts, so between them they claim every one.
      for (let i = 0; i < COUNT / 3; i++) {
        await store.appendEvent(
          { id: `evt-${i}`, type: 't', connectionId: null, data: {}, createdAt: T0 - i },
          ['https://a.example/hook', 'https://b.example/hook', 'https://c.example/hook'],
        )
      }
      const storeModule = fileURLToPath(new URL('../../src/store/index.ts', import.meta.url))
      const children = Array.from({ length: CHILDREN }, (_, n) =>
        runChild(script, [storeModule, path, goFile, `child-${n}`, String(COUNT)]),
      )
      await Promise.all(children.map((c) => c.ready))
      writeFileSync(goFile, String(Date.now() + 150))
      const results = await Promise.all(children.map((c) => c.done))

      const consumedBy = new Map<number, string[]>()
      const leasedBy = new Map<number, string[]>()
      for (const r of results) {
        for (const i of r.consumed) consumedBy.set(i, [...(consumedBy.get(i) ?? []), r.owner])
        for (const i of r.leased) leasedBy.set(i, [...(leasedBy.get(i) ?? []), r.owner])
      }
      for (let i = 0; i < COUNT; i++) {
        expect(consumedBy.get(i)).toHaveLength(1)
        expect(leasedBy.get(i)).toHaveLength(1)
        const row = await store.getConnection(`con-${i}`)
        expect(row?.leaseOwner).toBe(leasedBy.get(i)?.[0])
        expect((await store.getAuthState(`state-${i}`))?.consumedAt).toBe(T0)
      }
      const claims = results.flatMap((r) => r.claimed.map((id) => [id, r.owner] as const))
      expect(claims).toHaveLength(COUNT)
      expect(new Set(claims.map(([id]) => id)).size).toBe(COUNT)
      const owners = new Map(claims)
      const deliveries = await store.listDeliveries({ limit: COUNT })
      expect(deliveries).toHaveLength(COUNT)
      for (const d of deliveries) expect(d.leaseOwner).toBe(owners.get(d.id))
    } finally {
      await store.close()
    }
  })

  it('migrates concurrently from several processes, each migration applied once', async () => {
    const dir = tempDir()
    const path = join(dir, 'migrate.db')
    const script = join(dir, 'migrate.ts')
    writeFileSync(
      script,
      `const [storeModule, path] = process.argv.slice(2)
const { openSqliteStore } = await import(storeModule)
const store = await openSqliteStore({ path })
process.stdout.write(JSON.stringify(await store.migrate()) + '\\n')
await store.close()
`,
    )
    const storeModule = fileURLToPath(new URL('../../src/store/index.ts', import.meta.url))
    const outputs = await Promise.all(
      Array.from(
        { length: 3 },
        () =>
          new Promise<Array<{ name: string; status: string }>>((resolve, reject) => {
            const child = spawn(process.execPath, [script, storeModule, path], {
              stdio: ['ignore', 'pipe', 'pipe'],
            })
            let out = ''
            let err = ''
            child.stdout.setEncoding('utf8').on('data', (c: string) => {
              out += c
            })
            child.stderr.setEncoding('utf8').on('data', (c: string) => {
              err += c
            })
            child.on('error', reject)
            child.on('close', (code) =>
              code === 0 ? resolve(JSON.parse(out.trim())) : reject(new Error(`exit ${code}: ${err}`)),
            )
          }),
      ),
    )
    for (const [index, migration] of MIGRATIONS.entries()) {
      const statuses = outputs.map((o) => o[index]?.status).sort()
      expect(statuses).toEqual(['already_applied', 'already_applied', 'applied'])
      expect(outputs.every((o) => o[index]?.name === migration.name)).toBe(true)
    }
  })
})
