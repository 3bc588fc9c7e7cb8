/**
 * A cluster of real `sp-connect serve` processes on one PostgreSQL database, with the Amazon simulator as a real
 * server and a round-robin load balancer in front (test/helpers/cluster.ts). The instances share only the
 * database and the (simulated) token endpoint, as they do in production; what keeps them consistent is the
 * store (leases with fencing versions, the migrator's advisory lock, state rows), never memory.
 *
 * Server: SP_CONNECT_TEST_DATABASE_URL, else the local default, with store-postgres.test.ts's rule (CI fails
 * loudly when it is missing or unreachable; locally an unreachable default server skips this file). This file
 * creates a database of its own and drops it at the end. The restart test never touches that shared server:
 * it starts a private PostgreSQL in a temp folder, restarts that, and deletes it afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openToken } from '../../src/core/tokens/sealed.ts'
import { MIGRATIONS, MIGRATIONS_TABLE } from '../../src/store/index.ts'
import { openStore } from '../../src/store/open.ts'
import type { ConnectionRecord, Store } from '../../src/store/store.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { runCli } from '../helpers/cli.ts'
import {
  type ApiAnswer,
  callApi,
  createTestDatabase,
  type Deployment,
  insertTokenlessConnection,
  killAllServe,
  type LoadBalancer,
  locateTestPostgres,
  type PrivatePostgres,
  prepareTokenlessConnection,
  privatePostgresUnavailable,
  type ServeProcess,
  startDeployment,
  startLoadBalancer,
  startPrivatePostgres,
  startServe,
  type TestDatabase,
  waitForHealthy,
  withClient,
} from '../helpers/cluster.ts'
import { answerConsent, randomSellingPartnerId } from '../helpers/flows.ts'

const server = await locateTestPostgres('the PostgreSQL cluster tests')
const inCi = process.env['CI'] === 'true'
const noPrivateServer = server.available ? privatePostgresUnavailable() : 'no PostgreSQL server'
if (server.available && noPrivateServer !== undefined) {
  if (inCi) throw new Error(`CI must run the PostgreSQL restart test, but ${noPrivateServer}`)
  console.warn(`Skipping the PostgreSQL restart test: ${noPrivateServer}.`)
}

/** Instances per cluster. */
const INSTANCES = 3
/** Shorter than the default so that a dead holder's lease runs out within a test. */
const LEASE_SECONDS = 4
/** Each instance's pool: the shared server has room for 100 connections, and other test files use it too. */
const POOL_SIZE = '5'

function defined<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not set up`)
  return value
}

/** Runs every step even when some fail, then throws the first failure. */
async function cleanup(steps: readonly (() => Promise<unknown> | undefined)[]): Promise<void> {
  const failures: unknown[] = []
  for (const step of steps) {
    try {
      await step()
    } catch (error) {
      failures.push(error)
    }
  }
  if (failures.length > 0) throw failures[0]
}

function accessTokenPath(connectionId: string): string {
  return `/v1/connections/${connectionId}/access-token`
}

async function row(store: Store, id: string): Promise<ConnectionRecord> {
  const found = await store.getConnection(id)
  if (!found) throw new Error(`connection ${id} vanished`)
  return found
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** How many times each value occurs, for compact assertion messages. */
function tally(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1
  return counts
}

/** A failure, summarised for an assertion message: status and code only (never a token). */
function failure(answer: ApiAnswer): string {
  return `${answer.status} ${answer.code ?? ''}`.trim()
}

describe.skipIf(!server.available)('three sp-connect serve processes on one PostgreSQL database', () => {
  let database: TestDatabase | undefined
  let balancer: LoadBalancer | undefined
  let deployment: Deployment | undefined
  /** The test's own store on the cluster's database: inserts connections and reads rows. */
  let store: Store | undefined
  let env: Record<string, string> = {}
  /** Instance i sits at the balancer's place i; a replacement takes its predecessor's index. */
  const instances: ServeProcess[] = []

  beforeAll(async () => {
    database = await createTestDatabase(server.url, 'cluster')
    balancer = await startLoadBalancer()
    deployment = await startDeployment(balancer.url)
    env = deployment.env(database.url, {
      SP_CONNECT_TOKEN_LEASE_SECONDS: String(LEASE_SECONDS),
      SP_CONNECT_DB_POOL_SIZE: POOL_SIZE,
    })
    // All at once on the empty database: each migrates as it opens, racing the others for the advisory lock.
    const started = await Promise.all(Array.from({ length: INSTANCES }, () => startServe(env)))
    started.forEach((instance, i) => {
      instances[i] = instance
      balancer?.setTarget(i, instance.url)
    })
    store = await openStore({ kind: 'postgres', url: database.url, poolSize: 3 })
  })

  afterAll(() =>
    cleanup([
      killAllServe,
      () => balancer?.close(),
      () => deployment?.close(),
      () => store?.close(),
      () => database?.drop(),
    ]),
  )

  function parts() {
    return {
      d: defined(deployment, 'the deployment'),
      lb: defined(balancer, 'the load balancer'),
      s: defined(store, 'the store'),
      at: (i: number) => defined(instances[i], `instance ${i}`),
    }
  }

  it('three instances started at once on an empty database apply each migration once, and all serve', async () => {
    const { at } = parts()
    const applied = await withClient(defined(database, 'the database').url, (client) =>
      client.query<{ name: string }>(`select name from ${MIGRATIONS_TABLE} order by name`),
    )
    expect(applied.rows.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => m.name))
    for (let i = 0; i < INSTANCES; i++) expect(at(i).running()).toBe(true)

    // `sp-connect migrate` on the same environment afterwards finds nothing left to do.
    const migrate = await runCli(['migrate'], { env })
    expect(migrate.stderr).toBe('')
    expect(migrate.code).toBe(0)
    for (const { name } of MIGRATIONS) {
      expect(migrate.stdout).toMatch(new RegExp(`^${escapeRegExp(name)}\\s+already_applied$`, 'm'))
    }
  })

  it('1,000 concurrent token requests over 3 instances for 50 expired connections: exactly 50 refreshes', async () => {
    const { d, s, at } = parts()
    const connections = await Promise.all(
      Array.from({ length: 50 }, () => insertTokenlessConnection(d, s, 'cluster-burst')),
    )
    // Slow answers, so every instance is still being asked while each connection's one refresh is in flight.
    d.simulator.setFaults({ latencyMs: 100 })
    d.simulator.resetCounters()
    let answers: (ApiAnswer & { connectionId: string; instance: number })[]
    try {
      answers = await Promise.all(
        Array.from({ length: 1000 }, async (_, i) => {
          const { row: connection } = defined(connections[i % connections.length], 'connection')
          // Straight to the instances, not through the balancer: each really gets a third of the requests.
          const instance = i % INSTANCES
          const answer = await callApi(d, at(instance).url, 'POST', accessTokenPath(connection.id))
          return { ...answer, connectionId: connection.id, instance }
        }),
      )
    } finally {
      d.simulator.setFaults({})
    }

    expect(tally(answers.filter((a) => a.status !== 200).map(failure))).toEqual({})
    const counters = d.simulator.counters()
    expect(counters.byGrant.refresh_token).toBe(50)
    expect(counters.total).toBe(50)
    expect(counters.byOutcome).toEqual({ ok: 50, error: 0, fault: 0 })

    const tokens = new Set<string>()
    for (const { row: before } of connections) {
      const mine = answers.filter((a) => a.connectionId === before.id)
      expect(mine).toHaveLength(20)
      // Every instance was asked for this connection, and all answered with one token: the one stored.
      expect(new Set(mine.map((a) => a.instance))).toEqual(new Set([0, 1, 2]))
      const distinct = new Set(mine.map((a) => String(a.json['access_token'])))
      expect(distinct.size).toBe(1)
      const token = [...distinct][0] ?? ''
      tokens.add(token)
      const after = await row(s, before.id)
      expect(after).toMatchObject({
        status: 'active',
        version: before.version + 1,
        leaseOwner: null,
        failureCount: 0,
      })
      expect(openToken(d.keyring, before.id, 'access_token', after.accessTokenCiphertext ?? '')).toBe(token)
    }
    // One token per connection, none shared between connections.
    expect(tokens.size).toBe(50)
  })

  it('the consent flow started on one instance, opened on a second and completed on a third', async () => {
    const { d, lb, at } = parts()
    const browser = new BrowserClient()
    const lbHost = new URL(lb.url).host
    const first = lb.log.length

    lb.pinNext(0)
    const session = await callApi(d, lb.url, 'POST', '/v1/connect-sessions', {
      tenant_id: 'cluster-consent',
      region: 'na',
      account_type: 'seller',
    })
    expect(session.status).toBe(201)
    const link = String(session.json['url'])
    expect(link.startsWith(`${lb.url}/connect/s/`)).toBe(true)

    // The browser opens the link: another instance finds the session in the database and sends it to Amazon.
    lb.pinNext(1)
    const start = await browser.get(link)
    expect(start.status).toBe(303)
    expect(start.location?.startsWith(d.simulatorUrl)).toBe(true)
    expect(browser.cookie(lbHost, '__Host-sp-connect-binding')).toBeTruthy()
    const consent = await browser.get(start.location ?? '')
    expect(consent.status).toBe(200)
    const sellingPartnerId = randomSellingPartnerId()
    const callbackUrl = await answerConsent(browser, consent, { sellingPartnerId })
    expect(callbackUrl.startsWith(`${lb.url}/callback?`)).toBe(true)

    // Amazon's redirect lands on the third instance, which checks state and cookie from the database.
    lb.pinNext(2)
    const landing = await browser.get(callbackUrl)
    expect(landing.status).toBe(303)
    expect(landing.location).toBe('/connected')

    expect(lb.log.slice(first)).toEqual([
      { target: 0, method: 'POST', path: '/v1/connect-sessions', status: 201 },
      { target: 1, method: 'GET', path: new URL(link).pathname, status: 303 },
      { target: 2, method: 'GET', path: '/callback', status: 303 },
    ])

    // Every instance lists it, active, and any of them hands out its token.
    let connectionId = ''
    for (let i = 0; i < INSTANCES; i++) {
      const listed = await callApi(d, at(i).url, 'GET', '/v1/connections?tenant_id=cluster-consent')
      expect(listed.status).toBe(200)
      const data = listed.json['data'] as { id: string; selling_partner_id: string; status: string }[]
      expect(data).toHaveLength(1)
      expect(data[0]).toMatchObject({ selling_partner_id: sellingPartnerId, status: 'active' })
      connectionId = data[0]?.id ?? ''
    }
    const tokens = await Promise.all(
      Array.from({ length: INSTANCES }, (_, i) =>
        callApi(d, at(i).url, 'POST', accessTokenPath(connectionId)),
      ),
    )
    expect(tokens.map((t) => t.status)).toEqual([200, 200, 200])
    expect(new Set(tokens.map((t) => t.json['access_token'])).size).toBe(1)
  })

  it('an instance SIGKILLed while holding the lease mid-refresh: another completes once that lease expired', async () => {
    const { d, lb, s, at } = parts()
    const { row: connection } = await insertTokenlessConnection(d, s, 'cluster-sigkill')
    const [a, b] = [at(0), at(1)]

    // A takes the lease, then hangs in the token endpoint.
    d.simulator.setFaults({ latencyMs: 10_000 })
    const askedA = callApi(d, a.url, 'POST', accessTokenPath(connection.id)).then(
      (answer) => answer,
      (error: unknown) => error,
    )
    let held: ConnectionRecord | undefined
    for (let i = 0; i < 1000 && held === undefined; i++) {
      const current = await row(s, connection.id)
      if (current.leaseOwner !== null) held = current
      else await sleep(10)
    }
    if (held === undefined) throw new Error(`instance A never took the lease:\n${a.output()}`)
    const aLeaseUntil = held.leaseUntil ?? Number.NaN

    expect(await a.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' })
    // A's caller lost its connection with A; A never wrote, and its lease is left behind.
    expect(await askedA).toBeInstanceOf(Error)
    expect(await row(s, connection.id)).toMatchObject({
      version: connection.version,
      accessTokenCiphertext: null,
      leaseOwner: held.leaseOwner,
      leaseUntil: aLeaseUntil,
    })

    d.simulator.setFaults({})
    const answer = await callApi(d, b.url, 'POST', accessTokenPath(connection.id))
    expect(failure(answer)).toBe('200')

    // The order of facts: B refreshed only after A's lease had expired, and wrote once.
    const after = await row(s, connection.id)
    expect(after.lastRefreshAt).toBeGreaterThanOrEqual(aLeaseUntil)
    expect(after).toMatchObject({
      status: 'active',
      version: connection.version + 1,
      leaseOwner: null,
      failureCount: 0,
    })
    expect(openToken(d.keyring, connection.id, 'access_token', after.accessTokenCiphertext ?? '')).toBe(
      answer.json['access_token'],
    )
    expect(Date.parse(String(answer.json['expires_at']))).toBe(after.accessTokenExpiresAt)
    expect(after.accessTokenExpiresAt).toBeGreaterThan(Date.now())

    // A replacement takes A's place behind the balancer and serves the token B stored.
    const replacement = await startServe(env)
    instances[0] = replacement
    lb.setTarget(0, replacement.url)
    const again = await callApi(d, replacement.url, 'POST', accessTokenPath(connection.id))
    expect(failure(again)).toBe('200')
    expect(again.json['access_token']).toBe(answer.json['access_token'])
  })

  describe.skipIf(noPrivateServer !== undefined)('PostgreSQL restarted during a run', () => {
    let postgres: PrivatePostgres | undefined
    let privateStore: Store | undefined
    let privateEnv: Record<string, string> = {}
    const privateInstances: ServeProcess[] = []

    beforeAll(async () => {
      const { d } = parts()
      postgres = await startPrivatePostgres()
      await withClient(postgres.url(), (client) => client.query('create database sp_connect_restart'))
      const url = postgres.url('sp_connect_restart')
      privateEnv = d.env(url, {
        SP_CONNECT_TOKEN_LEASE_SECONDS: String(LEASE_SECONDS),
        SP_CONNECT_DB_POOL_SIZE: POOL_SIZE,
      })
      // This time the schema comes first from `sp-connect migrate`, as a deployment pipeline would run it.
      const migrate = await runCli(['migrate'], { env: privateEnv })
      if (migrate.code !== 0)
        throw new Error(`sp-connect migrate failed:\n${migrate.stdout}${migrate.stderr}`)
      privateInstances.push(
        ...(await Promise.all(Array.from({ length: INSTANCES }, () => startServe(privateEnv)))),
      )
      // Its lost-connection warnings during the restart are expected; the instances' are in their output.
      privateStore = await openStore({ kind: 'postgres', url, poolSize: 2 }, { logger: { warn() {} } })
    })

    afterAll(() =>
      cleanup([
        () => Promise.all(privateInstances.map((instance) => instance.kill('SIGKILL'))),
        () => privateStore?.close(),
        () => postgres?.destroy(),
      ]),
    )

    it('instances recover, no refresh token is lost, no connection is wrongly marked for re-authorization', async () => {
      const { d } = parts()
      const pg = defined(postgres, 'the private PostgreSQL')
      const s = defined(privateStore, 'the private store')
      /** Every connection we tried to insert, with the refresh token the simulator issued for it. */
      const issued = new Map<string, string>()
      const ids: string[] = []
      const insert = async () => {
        const prepared = prepareTokenlessConnection(d, 'cluster-restart')
        // Remembered first: an insert whose answer is lost with the connection may still have committed.
        issued.set(prepared.connection.id, prepared.refreshToken)
        await s.insertConnection(prepared.connection)
        ids.push(prepared.connection.id)
      }
      for (let i = 0; i < 12; i++) await insert()

      type Phase = 'before' | 'outage' | 'recovering' | 'after'
      let phase: Phase = 'before'
      let stopping = false
      const outcomes: { started: Phase; ended: Phase; answer: ApiAnswer | undefined; error?: string }[] = []

      // Slow token answers keep refreshes in flight, so the restart catches some between LWA and the write.
      d.simulator.setFaults({ latencyMs: 50 })
      // Load: new tokenless connections keep arriving (each needs one refresh), and callers keep asking every
      // instance for new and old ones (old ones come from memory, re-checked against the database every 5 s).
      const creator = (async () => {
        for (let i = 0; i < 2000 && !stopping; i++) {
          // During the outage an insert fails (or its answer is lost): the connection is checked below anyway.
          await insert().catch(() => {})
          await sleep(50)
        }
      })()
      const callers = Array.from({ length: 6 }, async (_, w) => {
        for (let i = 0; i < 10_000 && !stopping; i++) {
          const recent = i % 2 === 0
          const id = recent ? ids[ids.length - 1 - (w % 3)] : ids[Math.floor(Math.random() * ids.length)]
          const instance = defined(privateInstances[(w + i) % privateInstances.length], 'instance')
          const started = phase
          try {
            const answer = await callApi(d, instance.url, 'POST', accessTokenPath(id ?? ''))
            outcomes.push({ started, ended: phase, answer })
          } catch (error) {
            outcomes.push({ started, ended: phase, answer: undefined, error: String(error) })
          }
          await sleep(10)
        }
      })

      let recovered = false
      try {
        await sleep(1500)
        phase = 'outage'
        await pg.stop()
        await sleep(2000)
        await pg.start()
        phase = 'recovering'
        // Every instance answers /healthz again within a bounded number of polls (waitForHealthy throws).
        for (const instance of privateInstances) {
          expect(await waitForHealthy(instance.url, () => instance.running(), 200)).toBe(true)
        }
        recovered = true
        phase = 'after'
        await sleep(2000)
      } finally {
        stopping = true
        await Promise.all([creator, ...callers])
        d.simulator.setFaults({})
      }
      expect(recovered).toBe(true)

      for (const instance of privateInstances) expect(instance.running()).toBe(true)
      // Nothing failed at the HTTP level: the instances never went away, only their database did.
      expect(outcomes.filter((o) => o.answer === undefined).map((o) => o.error)).toEqual([])
      const statusOf = (o: (typeof outcomes)[number]) => (o.answer ? failure(o.answer) : 'none')
      // Before the restart everything worked.
      const before = outcomes.filter((o) => o.started === 'before' && o.ended === 'before')
      expect(before.length).toBeGreaterThan(0)
      expect(tally(before.map(statusOf).filter((st) => st !== '200'))).toEqual({})
      // During it, a request either got its token (from memory) or a 503 store_unavailable, never a 500.
      const during = outcomes.filter((o) => o.ended !== 'before' && o.started !== 'after')
      expect(during.length).toBeGreaterThan(0)
      expect(
        tally(during.map(statusOf).filter((st) => st !== '200' && st !== '503 store_unavailable')),
      ).toEqual({})
      // Once every instance was healthy again, every request succeeded.
      const after = outcomes.filter((o) => o.started === 'after')
      expect(after.length).toBeGreaterThan(0)
      expect(tally(after.map(statusOf).filter((st) => st !== '200'))).toEqual({})

      // Every connection in the database: still active, still holding the refresh token Amazon issued, and
      // every instance can get its access token (refreshing the ones that never got one).
      const rows = await s.listConnections({ tenantId: 'cluster-restart', limit: 1000 })
      expect(rows.length).toBeGreaterThanOrEqual(ids.length)
      expect(rows.length).toBeLessThanOrEqual(issued.size)
      for (const r of rows) {
        expect(r.status).toBe('active')
        expect(openToken(d.keyring, r.id, 'refresh_token', r.refreshTokenCiphertext ?? '')).toBe(
          issued.get(r.id),
        )
      }
      const tokens = await Promise.all(
        rows.flatMap((r) =>
          privateInstances.map((instance) => callApi(d, instance.url, 'POST', accessTokenPath(r.id))),
        ),
      )
      expect(tally(tokens.map(failure).filter((st) => st !== '200'))).toEqual({})
      expect(await s.listEvents({ type: 'connection.needs_reauthorization', limit: 1000 })).toEqual([])
      expect(await s.listConnections({ status: 'needs_reauthorization', limit: 1000 })).toEqual([])
    })
  })
})
