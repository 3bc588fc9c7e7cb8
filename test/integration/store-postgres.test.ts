/**
 * The PostgreSQL store: the same conformance suite as SQLite, then what only PostgreSQL has (lost
 * connections, statement timeouts, migrations and SKIP LOCKED claims across pools).
 *
 * Server: SP_CONNECT_TEST_DATABASE_URL (a database we may create databases from), else the local default.
 * In CI (CI=true) the variable must be set and the server reachable, or this file fails; locally an
 * unreachable default server skips it with a message. Isolation: each run creates its own database
 * `sp_connect_test_<random>` (collation C, dropped at the end), and every store opened here gets a fresh
 * schema in it, selected through the URL's `options=-c search_path=…`.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { sql } from 'kysely'
import { Client, escapeIdentifier } from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { isSpConnectError } from '../../src/domain/errors.ts'
import {
  isConnectionLostError,
  MIGRATIONS,
  type NewConnection,
  type OpenPostgresOptions,
  openPostgresKysely,
  openPostgresStore,
  type Store,
} from '../../src/store/index.ts'
import { openStore } from '../../src/store/open.ts'
import { locateTestPostgres } from '../helpers/cluster.ts'
import { apiKeyConformanceSuite } from '../store/api-key-conformance.ts'
import { storeConformanceSuite } from '../store/conformance.ts'
import { operatorStoreConformanceSuite } from '../store/operator-conformance.ts'
import { rateBucketConformanceSuite } from '../store/rate-bucket-conformance.ts'

// The same rule as the cluster tests: in CI the server must be configured and reachable, locally it may be absent.
const server = await locateTestPostgres('the PostgreSQL store tests')
const serverUrl = server.url
const available = server.available

const T0 = 1_800_000_000_000
const MINUTE = 60_000
/** sp-connect's migration advisory lock key (migrator.ts). */
const MIGRATION_LOCK_KEY = 0x5370_436e

const databaseName = `sp_connect_test_${randomBytes(6).toString('hex')}`
let databaseUrl = ''
/** A connection to the test database for setup and for watching the stores' backends. */
let admin: Client

function urlWith(base: string, params: Record<string, string>, database?: string): string {
  const u = new URL(base)
  if (database !== undefined) u.pathname = `/${database}`
  for (const [name, value] of Object.entries(params)) u.searchParams.set(name, value)
  return u.toString()
}

async function onServer<T>(work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: serverUrl })
  client.on('error', () => {})
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

beforeAll(async () => {
  if (!available) return
  // Identifiers cannot be bound as parameters; this one is generated from hex digits and quoted anyway.
  await onServer((server) =>
    server.query(
      `create database ${escapeIdentifier(databaseName)} template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'`,
    ),
  )
  databaseUrl = urlWith(serverUrl, {}, databaseName)
  admin = new Client({ connectionString: databaseUrl })
  admin.on('error', () => {})
  await admin.connect()
})

afterAll(async () => {
  if (!available) return
  await admin?.end()
  await onServer((server) =>
    server.query(`drop database if exists ${escapeIdentifier(databaseName)} with (force)`),
  )
})

let schemaSerial = 0

/** A new empty schema in the test database, and the URL of a store that works in it. */
async function freshSchema(): Promise<{ schema: string; url: (app: string) => string }> {
  const schema = `s${++schemaSerial}_${randomBytes(4).toString('hex')}`
  await admin.query(`create schema ${escapeIdentifier(schema)}`)
  return {
    schema,
    url: (app) => urlWith(databaseUrl, { options: `-c search_path=${schema}`, application_name: app }),
  }
}

async function dropSchema(schema: string): Promise<void> {
  await admin.query(`drop schema if exists ${escapeIdentifier(schema)} cascade`)
}

/**
 * A store in a fresh schema, for every conformance suite; `openAnother` opens a second handle (its own pool and
 * listening connection) on the same schema. `name` tells the suites' connections apart in pg_stat_activity.
 */
async function postgresUnderTest(name: string) {
  const { schema, url } = await freshSchema()
  const store = await openPostgresStore({ url: url(`${name}_${schema}`), poolSize: 5 })
  return {
    store,
    openAnother: () => openPostgresStore({ url: url(`${name}_${schema}_other`), poolSize: 5 }),
    async cleanup() {
      await store.close()
      await dropSchema(schema)
    },
  }
}

if (available) {
  operatorStoreConformanceSuite('PostgreSQL', () => postgresUnderTest('operators'))
  storeConformanceSuite('PostgreSQL', async () => ({
    ...(await postgresUnderTest('conformance')),
    wakesAcrossHandles: true,
  }))
  apiKeyConformanceSuite('PostgreSQL', () => postgresUnderTest('api_keys'))
  rateBucketConformanceSuite('PostgreSQL', () => postgresUnderTest('rate_buckets'))
} else {
  describe.skip('Store conformance: PostgreSQL (no server)', () => {
    it('needs a PostgreSQL server', () => {})
  })
}

/** Polls until `probe` yields something, failing the test if it never does. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 2000; i++) {
    const value = await check()
    if (value !== undefined) return value
    await delay(10)
  }
  throw new Error(`gave up waiting for ${what}`)
}

async function backends(app: string): Promise<Array<{ pid: number; waitEventType: string | null }>> {
  const result = await admin.query<{ pid: number; wait_event_type: string | null }>(
    'select pid, wait_event_type from pg_stat_activity where application_name = $1 and datname = current_database()',
    [app],
  )
  return result.rows.map((r) => ({ pid: r.pid, waitEventType: r.wait_event_type }))
}

/** The pid of a backend of `app` waiting for a lock, other than `except`. */
function lockWaiter(app: string, except: readonly number[] = []): Promise<number> {
  return waitFor(`a backend of ${app} waiting for a lock`, async () => {
    const found = (await backends(app)).find((b) => b.waitEventType === 'Lock' && !except.includes(b.pid))
    return found?.pid
  })
}

async function terminate(pids: readonly number[]): Promise<void> {
  await admin.query('select pg_terminate_backend(pid) from unnest($1::int[]) as pid', [pids])
  await waitFor('the terminated backends to exit', async () => {
    const left = await admin.query('select 1 from pg_stat_activity where pid = any($1::int[])', [pids])
    return left.rowCount === 0 ? true : undefined
  })
}

function connection(overrides: Partial<NewConnection> = {}): NewConnection {
  return {
    id: `con-${randomBytes(4).toString('hex')}`,
    sellingPartnerId: `A${randomBytes(4).toString('hex')}`,
    region: 'na',
    accountType: 'seller',
    tenantId: null,
    refreshTokenCiphertext: 'refresh-ct',
    accessTokenCiphertext: 'access-ct',
    accessTokenExpiresAt: T0 + 60 * MINUTE,
    authorizedAt: T0,
    reauthorizeBy: T0 + 365 * 24 * 60 * MINUTE,
    accountFingerprint: null,
    now: T0,
    ...overrides,
  }
}

function authState(stateHash: string) {
  return {
    stateHash,
    flow: 'website',
    region: 'na',
    accountType: 'seller',
    tenantId: null,
    returnTo: null,
    browserBindingHash: 'binding',
    sellingPartnerId: null,
    connectionId: null,
    createdAt: T0,
    expiresAt: T0 + 10 * MINUTE,
    consumedAt: null,
  } as const
}

/** A re-authorization (its `now` given by the caller). */
function reauth() {
  return {
    accountType: 'seller',
    tenantId: null,
    refreshTokenCiphertext: 'refresh-ct-2',
    accessTokenCiphertext: 'access-ct-2',
    accessTokenExpiresAt: T0 + 120 * MINUTE,
    authorizedAt: T0 + 1,
    reauthorizeBy: T0 + 365 * 24 * 60 * MINUTE,
    accountFingerprint: null,
  } as const
}

const settle = <T>(promise: Promise<T>) =>
  promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  )

describe.runIf(available)('PostgreSQL store', () => {
  const opened: Array<{ close(): Promise<unknown> }> = []
  const schemas: string[] = []

  afterEach(async () => {
    for (const handle of opened.splice(0).reverse()) await handle.close()
    for (const schema of schemas.splice(0)) await dropSchema(schema)
  })

  /** A schema of its own, and a function that opens stores on it (each a separate pool and application name). */
  async function workspace() {
    const { schema, url } = await freshSchema()
    schemas.push(schema)
    let n = 0
    return {
      schema,
      url,
      async open(options: Omit<OpenPostgresOptions, 'url'> = {}) {
        const app = `${schema}_${++n}`
        // Lost-connection warnings are expected here; tests that check them pass their own logger.
        const store = await openPostgresStore({ url: url(app), logger: { warn() {} }, ...options })
        opened.push(store)
        return { store, app }
      },
      /** A plain client in the schema, for holding locks. */
      async client(): Promise<Client> {
        const client = new Client({ connectionString: url(`${schema}_locker`) })
        client.on('error', () => {})
        await client.connect()
        opened.push({ close: () => client.end() })
        return client
      },
    }
  }

  describe('configuration', () => {
    it('sets statement_timeout on every pooled connection and names them sp-connect by default', async () => {
      const { url } = await workspace()
      const base = new URL(url('unused'))
      base.searchParams.delete('application_name')
      const db = openPostgresKysely({ url: base.toString(), statementTimeoutMs: 1234, poolSize: 2 })
      opened.push({ close: () => db.destroy() })
      const rows = await Promise.all(
        Array.from({ length: 4 }, () =>
          sql<{ timeout: string; app: string }>`select current_setting('statement_timeout') as timeout,
            current_setting('application_name') as app, pg_sleep(0.05)`.execute(db),
        ),
      )
      for (const result of rows)
        expect(result.rows[0]).toMatchObject({ timeout: '1234ms', app: 'sp-connect' })
    })

    it('cancels a statement that runs past the timeout, and the connection stays usable', async () => {
      const { url } = await workspace()
      const db = openPostgresKysely({ url: url('timeout-kysely'), statementTimeoutMs: 200, poolSize: 1 })
      opened.push({ close: () => db.destroy() })
      await expect(sql`select pg_sleep(30)`.execute(db)).rejects.toMatchObject({ code: '57014' })
      expect((await sql<{ one: number }>`select 1 as one`.execute(db)).rows).toEqual([{ one: 1 }])
    })

    it('times out a store write stuck behind a row lock (configured through openStore)', async () => {
      const ws = await workspace()
      const store = await openStore({
        kind: 'postgres',
        url: ws.url('timeout-store'),
        poolSize: 2,
        statementTimeoutMs: 200,
      })
      opened.push(store)
      await store.migrate()
      const row = await store.insertConnection(connection())
      if (row === undefined) throw new Error('insert failed')
      const locker = await ws.client()
      await locker.query('begin')
      await locker.query('select 1 from connections where id = $1 for update', [row.id])
      const update = { accessTokenCiphertext: 'new', accessTokenExpiresAt: T0 + 90 * MINUTE, now: T0 + 1 }
      // The store's boundary reports our code; the driver's statement timeout is its cause.
      await expect(store.updateTokens(row.id, row.version, update)).rejects.toMatchObject({
        code: 'store_unavailable',
        cause: { code: '57014' },
      })
      await locker.query('rollback')
      expect(await store.getConnection(row.id)).toEqual(row)
      expect((await store.updateTokens(row.id, row.version, update))?.accessTokenCiphertext).toBe('new')
    })

    it('keeps the pool at its size however many callers wait', async () => {
      const ws = await workspace()
      // The pool alone: the listening connection (one more backend) is tested under 'connection changes'.
      const { store, app } = await ws.open({ poolSize: 2, notify: false })
      await store.migrate()
      const locker = await ws.client()
      await locker.query('begin')
      await locker.query('lock table connections in access exclusive mode')
      const reads = Promise.all(Array.from({ length: 12 }, () => store.listConnections()))
      await waitFor('both pooled connections to wait', async () => {
        const waiting = (await backends(app)).filter((b) => b.waitEventType === 'Lock')
        return waiting.length === 2 ? true : undefined
      })
      expect(await backends(app)).toHaveLength(2)
      await locker.query('rollback')
      expect(await reads).toHaveLength(12)
      expect((await backends(app)).length).toBeLessThanOrEqual(2)
    })

    it('refuses a bad pool size or timeout, and fails at open when the server cannot be reached', async () => {
      await expect(openPostgresStore({ url: serverUrl, poolSize: 0 })).rejects.toThrow(RangeError)
      await expect(openPostgresStore({ url: serverUrl, statementTimeoutMs: 1.5 })).rejects.toThrow(RangeError)
      const secret = `pw-${randomBytes(8).toString('hex')}`
      const error = await openPostgresStore({ url: `postgres://sp:${secret}@127.0.0.1:1/none` }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(Error)
      expect(String(error)).not.toContain(secret)
    })
  })

  describe('BIGINT', () => {
    it('reads times as numbers up to 2^53 - 1 and refuses larger ones as corrupt', async () => {
      const ws = await workspace()
      const { store } = await ws.open()
      await store.migrate()
      const row = await store.insertConnection(connection({ accessTokenExpiresAt: Number.MAX_SAFE_INTEGER }))
      if (row === undefined) throw new Error('insert failed')
      expect(row.accessTokenExpiresAt).toBe(Number.MAX_SAFE_INTEGER)
      expect(typeof row.version).toBe('number')
      await admin.query(
        `update ${escapeIdentifier(ws.schema)}.connections set access_token_expires_at = $1 where id = $2`,
        ['9007199254740993', row.id],
      )
      const error = await store.getConnection(row.id).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(isSpConnectError(error, 'internal')).toBe(true)
      expect(isSpConnectError(error) ? String(error.detail) : '').toContain('access_token_expires_at')
    })
  })

  describe('lost connections', () => {
    it('recovers after every pooled connection is terminated: the next call succeeds, then writes', async () => {
      const ws = await workspace()
      const warnings: object[] = []
      // The pool alone: the listening connection's own recovery is tested under 'connection changes'.
      const { store, app } = await ws.open({
        poolSize: 3,
        notify: false,
        logger: { warn: (obj) => warnings.push(obj) },
      })
      await store.migrate()
      const row = await store.insertConnection(connection())
      if (row === undefined) throw new Error('insert failed')
      await Promise.all(Array.from({ length: 6 }, () => store.listConnections()))
      const before = (await backends(app)).map((b) => b.pid)
      expect(before.length).toBeGreaterThan(0)
      await terminate(before)

      // A read: whether or not the pool has noticed yet, it runs (again) on a connection opened after the loss.
      expect(await store.getConnection(row.id)).toEqual(row)
      // By now every connection from before the loss is discarded, so writes are not exposed to it.
      await store.insertAuthState(authState('after-loss'))
      expect(await store.consumeAuthState('after-loss', T0 + 1)).toBe(true)
      const burst = await Promise.all(
        Array.from({ length: 9 }, (_, i) =>
          i % 3 === 0 ? store.touchConnection(row.id, T0 + i) : store.listConnections(),
        ),
      )
      expect(burst).toHaveLength(9)
      const after = (await backends(app)).map((b) => b.pid)
      expect(after.length).toBeGreaterThan(0)
      expect(after.length).toBeLessThanOrEqual(3)
      expect(after.filter((pid) => before.includes(pid))).toEqual([])
      expect(warnings.length).toBeGreaterThan(0)
      for (const w of warnings) expect(w).toMatchObject({ event: 'postgres.connection_lost' })
    })

    it('survives idle connections dying with nobody using the store', async () => {
      const ws = await workspace()
      const warnings: object[] = []
      const { store, app } = await ws.open({ poolSize: 2, logger: { warn: (obj) => warnings.push(obj) } })
      await store.migrate()
      await terminate((await backends(app)).map((b) => b.pid))
      // The idle clients' errors arrive on their own; unheard, they would crash this process.
      await waitFor('the pool to notice', async () => (warnings.length > 0 ? true : undefined))
      expect(await store.listConnections()).toEqual([])
    })

    it('repeats a plain read whose connection died while it waited', async () => {
      const ws = await workspace()
      const { store, app } = await ws.open({ poolSize: 2 })
      await store.migrate()
      const row = await store.insertConnection(connection())
      const locker = await ws.client()
      await locker.query('begin')
      await locker.query('lock table connections in access exclusive mode')
      const read = settle(store.getConnection(row?.id ?? ''))
      const first = await lockWaiter(app)
      await terminate([first])
      await lockWaiter(app, [first])
      await locker.query('rollback')
      expect(await read).toEqual({ ok: true, value: row })
    })

    it('repeats a repeat-safe write (acquireLease) whose connection died mid-statement', async () => {
      const ws = await workspace()
      const { store, app } = await ws.open({ poolSize: 2 })
      await store.migrate()
      const row = await store.insertConnection(connection())
      if (row === undefined) throw new Error('insert failed')
      const locker = await ws.client()
      await locker.query('begin')
      await locker.query('select 1 from connections where id = $1 for update', [row.id])
      const lease = settle(store.acquireLease(row.id, 'worker-1', T0 + MINUTE, T0))
      const first = await lockWaiter(app)
      await terminate([first])
      // The retry runs on another connection and waits for the same row.
      await lockWaiter(app, [first])
      await locker.query('rollback')
      const outcome = await lease
      expect(outcome.ok && outcome.value).toMatchObject({ leaseOwner: 'worker-1', leaseUntil: T0 + MINUTE })
    })

    it('does not repeat a conditional write that was in flight; it fails and changed nothing', async () => {
      const ws = await workspace()
      const { store, app } = await ws.open({ poolSize: 2 })
      await store.migrate()
      await store.insertAuthState(authState('in-flight'))
      const locker = await ws.client()
      await locker.query('begin')
      await locker.query('select 1 from auth_states where state_hash = $1 for update', ['in-flight'])
      const consume = settle(store.consumeAuthState('in-flight', T0 + 1))
      await terminate([await lockWaiter(app)])
      const outcome = await consume
      expect(outcome.ok).toBe(false)
      expect(!outcome.ok && isSpConnectError(outcome.error, 'store_unavailable')).toBe(true)
      expect(!outcome.ok && isConnectionLostError((outcome.error as Error).cause)).toBe(true)
      await locker.query('rollback')
      // The statement died before committing, and nobody ran it again: the state is still there, once.
      expect((await store.getAuthState('in-flight'))?.consumedAt).toBeNull()
      expect(await store.consumeAuthState('in-flight', T0 + 2)).toBe(true)
      expect(await store.consumeAuthState('in-flight', T0 + 3)).toBe(false)
    })

    it('fails a transaction whose connection died, rolled back as a whole', async () => {
      const ws = await workspace()
      const { store, app } = await ws.open({ poolSize: 2 })
      await store.migrate()
      const locker = await ws.client()
      await locker.query('begin')
      // appendEvent inserts the event, then its deliveries; the deliveries wait behind this lock.
      await locker.query('lock table webhook_deliveries in access exclusive mode')
      const append = settle(
        store.appendEvent({ id: 'evt-1', type: 't', connectionId: null, data: {}, createdAt: T0 }, [
          'https://app.example/hook',
        ]),
      )
      await terminate([await lockWaiter(app)])
      const outcome = await append
      expect(outcome.ok).toBe(false)
      await locker.query('rollback')
      expect(await store.getEvent('evt-1')).toBeUndefined()
      await store.appendEvent({ id: 'evt-1', type: 't', connectionId: null, data: {}, createdAt: T0 }, [
        'https://app.example/hook',
      ])
      expect(await store.listDeliveries({ eventId: 'evt-1' })).toHaveLength(1)
    })
  })

  describe('connection changes (LISTEN/NOTIFY)', () => {
    const CHANNEL = 'sp_connect_connection_changed'

    /** A plain client listening on the channel, collecting payloads in arrival order. */
    async function listen(ws: Awaited<ReturnType<typeof workspace>>): Promise<string[]> {
      const client = await ws.client()
      const payloads: string[] = []
      client.on('notification', (message) => {
        if (message.channel === CHANNEL) payloads.push(message.payload ?? '')
      })
      await client.query(`listen ${CHANNEL}`)
      return payloads
    }

    /** The store's listening backend: the one of `app` whose last statement was LISTEN. */
    async function listenerPid(app: string, except: readonly number[] = []): Promise<number> {
      return waitFor(`a listening backend of ${app}`, async () => {
        const result = await admin.query<{ pid: number }>(
          `select pid from pg_stat_activity where application_name = $1 and datname = current_database()
             and query = $2`,
          [app, `listen ${CHANNEL}`],
        )
        return result.rows.map((r) => r.pid).find((pid) => !except.includes(pid))
      })
    }

    it('notifies exactly the writes that changed a row, with the connection id, once each', async () => {
      const ws = await workspace()
      const { store } = await ws.open()
      await store.migrate()
      const payloads = await listen(ws)
      const a = await store.insertConnection(connection())
      const b = await store.insertConnection(connection())
      if (a === undefined || b === undefined) throw new Error('insert failed')
      // Writes that change nothing: a stale version, another owner's release, unknown ids, and the writes that
      // never notify (lease taking, usage, re-encryption).
      const update = { accessTokenCiphertext: 'x', accessTokenExpiresAt: T0 + 90 * MINUTE, now: T0 + 1 }
      expect(await store.updateTokens(a.id, a.version + 1, update)).toBeUndefined()
      expect(
        await store.recordRefreshFailure(a.id, a.version + 1, { error: 'e', now: T0 + 1 }),
      ).toBeUndefined()
      await store.acquireLease(a.id, 'holder', T0 + MINUTE, T0)
      await store.releaseLease(a.id, 'someone-else')
      await store.touchConnection(a.id, T0 + 5)
      await store.replaceConnectionCiphertexts(a.id, a.version, {
        refreshTokenCiphertext: 'r2',
        accessTokenCiphertext: 'a2',
      })
      expect(await store.disconnectConnection('no-such-id', T0)).toBeUndefined()
      expect(await store.reauthorizeConnection('no-such-id', { ...reauth(), now: T0 })).toBeUndefined()
      // Then writes that do change rows: b's marks where a's notifications, had there been any, would be.
      expect(await store.updateTokens(b.id, b.version, update)).toBeDefined()
      await waitFor('the first notification', async () => (payloads.length > 0 ? true : undefined))
      expect(payloads).toEqual([b.id])
      await store.releaseLease(a.id, 'holder')
      expect(await store.recordRefreshFailure(b.id, b.version + 1, { error: 'e', now: T0 + 2 })).toBeDefined()
      expect(await store.reauthorizeConnection(a.id, { ...reauth(), now: T0 + 3 })).toBeDefined()
      expect(await store.disconnectConnection(b.id, T0 + 4)).toBeDefined()
      await waitFor('four more notifications', async () => (payloads.length >= 5 ? true : undefined))
      // A marker last, so nothing that was still on its way is missed.
      await store.updateTokens(a.id, (await store.getConnection(a.id))?.version ?? 0, {
        ...update,
        accessTokenExpiresAt: T0 + 500 * MINUTE,
      })
      await waitFor('the marker', async () => (payloads.length >= 6 ? true : undefined))
      expect(payloads).toEqual([b.id, a.id, b.id, a.id, b.id, a.id])
    })

    it('sends no notification from a write whose statement failed', async () => {
      const ws = await workspace()
      const { store } = await ws.open({ statementTimeoutMs: 200 })
      await store.migrate()
      const payloads = await listen(ws)
      const row = await store.insertConnection(connection())
      if (row === undefined) throw new Error('insert failed')
      const locker = await ws.client()
      await locker.query('begin')
      await locker.query('select 1 from connections where id = $1 for update', [row.id])
      const update = { accessTokenCiphertext: 'new', accessTokenExpiresAt: T0 + 90 * MINUTE, now: T0 + 1 }
      // The store's boundary reports our code; the driver's statement timeout is its cause.
      await expect(store.updateTokens(row.id, row.version, update)).rejects.toMatchObject({
        code: 'store_unavailable',
        cause: { code: '57014' },
      })
      await locker.query('rollback')
      const other = await store.insertConnection(connection())
      await store.disconnectConnection(other?.id ?? '', T0 + 2)
      await waitFor('the marker', async () => (payloads.length > 0 ? true : undefined))
      expect(payloads).toEqual([other?.id])
    })

    it('keeps one listening connection per store, outside the pool, and reopens it when it is lost', async () => {
      const ws = await workspace()
      const warnings: object[] = []
      const { store, app } = await ws.open({ poolSize: 2, logger: { warn: (obj) => warnings.push(obj) } })
      const { store: writer } = await ws.open()
      await store.migrate()
      const row = await store.insertConnection(connection())
      if (row === undefined) throw new Error('insert failed')
      const first = await listenerPid(app)

      await terminate([first])
      // While it is down (or before it notices), a wait still ends, at its timeout: never an error.
      await expect(store.waitForConnectionChange(row.id, 50)).resolves.toBeUndefined()
      await listenerPid(app, [first])
      expect(warnings).toEqual([expect.objectContaining({ event: 'postgres.listen_lost' })])

      // Listening again: another store's write wakes a wait that would otherwise last ten minutes.
      const waiting = store.waitForConnectionChange(row.id, 10 * MINUTE)
      await writer.disconnectConnection(row.id, T0 + 1)
      await waiting
      // The pool was not disturbed.
      expect(await store.getConnection(row.id)).toMatchObject({ status: 'disconnected' })
    })

    it('notify: false opens no listening connection and sends no notification; waits run to their timeout', async () => {
      const ws = await workspace()
      const { store, app } = await ws.open({ notify: false })
      await store.migrate()
      const payloads = await listen(ws)
      const row = await store.insertConnection(connection())
      if (row === undefined) throw new Error('insert failed')
      await expect(store.waitForConnectionChange(row.id, 20)).resolves.toBeUndefined()
      await store.disconnectConnection(row.id, T0 + 1)
      // The same handle's writes still wake its own waiters.
      const waiting = store.waitForConnectionChange(row.id, 10 * MINUTE)
      await store.reauthorizeConnection(row.id, { ...reauth(), now: T0 + 2 })
      await waiting
      // A notifying store's write is the marker: nothing from the silent one arrived before it.
      const { store: notifying } = await ws.open()
      await notifying.disconnectConnection(row.id, T0 + 3)
      await waitFor('the marker', async () => (payloads.length > 0 ? true : undefined))
      expect(payloads).toEqual([row.id])
      const listening = await admin.query(
        'select 1 from pg_stat_activity where application_name = $1 and query = $2',
        [app, `listen ${CHANNEL}`],
      )
      expect(listening.rowCount).toBe(0)
    })
  })

  describe('migrations', () => {
    it('applies each migration once when four pools migrate at once', async () => {
      const ws = await workspace()
      const stores = await Promise.all(Array.from({ length: 4 }, () => ws.open({ poolSize: 2 })))
      const outcomes = await Promise.all(stores.map(({ store }) => store.migrate()))
      for (const [index, migration] of MIGRATIONS.entries()) {
        const statuses = outcomes.map((o) => o[index]?.status).sort()
        expect(statuses).toEqual(['already_applied', 'already_applied', 'already_applied', 'applied'])
        expect(outcomes.every((o) => o[index]?.name === migration.name)).toBe(true)
      }
      const applied = await admin.query(
        `select name from ${escapeIdentifier(ws.schema)}.sp_connect_migrations order by name`,
      )
      expect(applied.rows.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => m.name))
    })

    it('waits for another instance’s migration longer than the statement timeout', async () => {
      const ws = await workspace()
      const { store, app } = await ws.open({ poolSize: 1, statementTimeoutMs: 100 })
      const holder = await ws.client()
      await holder.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
      const migrating = settle(store.migrate())
      // Still waiting well past its 100 ms statement timeout, rather than cancelled.
      await waitFor('the migration to wait past the statement timeout', async () => {
        const result = await admin.query(
          `select 1 from pg_stat_activity where application_name = $1 and wait_event = 'advisory'
             and now() - query_start > interval '500 milliseconds'`,
          [app],
        )
        return result.rowCount === 1 ? true : undefined
      })
      await holder.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
      const outcome = await migrating
      expect(outcome.ok && outcome.value.map((o) => o.status)).toEqual(MIGRATIONS.map(() => 'applied'))
    })
  })

  describe('webhook outbox claims', () => {
    const HOOKS = ['https://app.example/a', 'https://app.example/b']

    it('never gives a delivery to two of twelve claimers spread over three pools', async () => {
      const ws = await workspace()
      const pools = await Promise.all(Array.from({ length: 3 }, () => ws.open({ poolSize: 4 })))
      const [first] = pools
      if (first === undefined) throw new Error('no pool')
      await first.store.migrate()
      const EVENTS = 150
      for (let i = 0; i < EVENTS; i++) {
        await first.store.appendEvent(
          { id: `evt-${i}`, type: 't', connectionId: null, data: {}, createdAt: T0 + (i % 17) },
          HOOKS,
        )
      }
      const claimed: Array<{ id: string; owner: string }> = []
      const worker = async (store: Store, owner: string) => {
        for (;;) {
          const batch = await store.claimDueDeliveries(T0 + MINUTE, owner, T0 + 60 * MINUTE, 7)
          // Empty means every remaining delivery is leased or being leased by another claimer right now.
          if (batch.length === 0) return
          for (const d of batch) {
            expect(d.leaseOwner).toBe(owner)
            claimed.push({ id: d.id, owner })
          }
        }
      }
      await Promise.all(
        pools.flatMap(({ store }, p) => Array.from({ length: 4 }, (_, w) => worker(store, `p${p}-w${w}`))),
      )
      expect(claimed).toHaveLength(EVENTS * HOOKS.length)
      expect(new Set(claimed.map((c) => c.id)).size).toBe(EVENTS * HOOKS.length)
      const owners = new Map(claimed.map((c) => [c.id, c.owner]))
      const stored = await first.store.listDeliveries({ limit: 1000 })
      expect(stored).toHaveLength(EVENTS * HOOKS.length)
      for (const d of stored) expect(d.leaseOwner).toBe(owners.get(d.id))
      // More than one pool did real work.
      expect(new Set(claimed.map((c) => c.owner.slice(0, 2))).size).toBeGreaterThan(1)
    })

    it('skips a delivery another transaction has locked instead of waiting for it', async () => {
      const ws = await workspace()
      const { store } = await ws.open({ poolSize: 2, statementTimeoutMs: 2000 })
      await store.migrate()
      await store.appendEvent({ id: 'evt-1', type: 't', connectionId: null, data: {}, createdAt: T0 }, HOOKS)
      const [locked, free] = await store.listDeliveries({ eventId: 'evt-1' })
      if (locked === undefined || free === undefined) throw new Error('deliveries missing')
      const locker = await ws.client()
      await locker.query('begin')
      await locker.query('select 1 from webhook_deliveries where id = $1 for update', [locked.id])
      // Without SKIP LOCKED this would wait for the lock and hit the statement timeout.
      const claimed = await store.claimDueDeliveries(T0, 'worker', T0 + MINUTE, 10)
      expect(claimed.map((d) => d.id)).toEqual([free.id])
      await locker.query('rollback')
      expect((await store.claimDueDeliveries(T0, 'worker', T0 + MINUTE, 10)).map((d) => d.id)).toEqual([
        locked.id,
      ])
    })
  })
})
