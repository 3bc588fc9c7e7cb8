/**
 * Several real sp-connect processes on one SQLite file: each child (test/helpers/token-worker.ts) opens its own
 * runtime from the deployment's environment and asks for access tokens, so the only things they share are the
 * database file and the (simulated) LWA token endpoint, as separate instances do in production. What keeps them
 * from refreshing a token twice is the store lease and the fencing version, not anything in memory.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { newId } from '../../src/core/encoding.ts'
import { openToken, sealToken } from '../../src/core/tokens/sealed.ts'
import type { ConnectionRecord } from '../../src/store/store.ts'
import { randomSellingPartnerId } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'
import type { CallOutcome, GoMessage, WorkerReport } from '../helpers/token-worker.ts'

const WORKER_PATH = join(import.meta.dirname, '..', 'helpers', 'token-worker.ts')
const YEAR_MS = 365 * 24 * 60 * 60 * 1000

type Ready = Extract<WorkerReport, { type: 'ready' }>
type Result = Extract<WorkerReport, { type: 'result' }>

interface Worker {
  readonly child: ChildProcess
  readonly ready: Promise<Ready>
  readonly result: Promise<Result>
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  go(connectionIds: readonly string[], callers: number): void
  output(): string
}

/** Every child still running; afterEach kills them whatever happened. */
const live = new Set<ChildProcess>()

async function killAll(): Promise<void> {
  await Promise.all(
    [...live].map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        live.delete(child)
        return
      }
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }),
  )
}

/** Forks a token worker with exactly the deployment's environment (plus PATH/HOME). */
function startWorker(stack: Stack, args: readonly string[] = []): Worker {
  const child = fork(WORKER_PATH, [...args], {
    // Node 24 runs the .ts file itself; vitest's own execArgv (loaders, inspector) must not leak in.
    execPath: process.execPath,
    execArgv: [],
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...stack.env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  live.add(child)
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child)
      resolve({ code, signal })
    })
  })
  const report = <T extends WorkerReport['type']>(type: T) => {
    const promise = new Promise<Extract<WorkerReport, { type: T }>>((resolve, reject) => {
      child.on('message', (message: WorkerReport) => {
        if (message.type === type) resolve(message as Extract<WorkerReport, { type: T }>)
        else if (message.type === 'fatal') reject(new Error(`worker ${child.pid} failed: ${message.message}`))
      })
      void exited.then(({ code, signal }) =>
        reject(new Error(`worker ${child.pid} exited (${code ?? signal}) before '${type}':\n${output}`)),
      )
    })
    // Marked handled: a worker killed on purpose never reports, and nobody awaits that.
    promise.catch(() => {})
    return promise
  }
  return {
    child,
    ready: report('ready'),
    result: report('result'),
    exited,
    go(connectionIds, callers) {
      const message: GoMessage = { type: 'go', connectionIds, callers }
      child.send(message)
    },
    output: () => output,
  }
}

/**
 * Active connections with a live grant at the simulator but no access token yet, so the first caller must
 * refresh. (A stored token cannot be made to look expired: `updateTokens` never moves an expiry backwards, and
 * the children use the real clock, so the stack's clock cannot be advanced for them.)
 */
async function insertTokenlessConnections(stack: Stack, count: number): Promise<ConnectionRecord[]> {
  const rows: ConnectionRecord[] = []
  for (let i = 0; i < count; i++) {
    const id = newId('con', (size) => new Uint8Array(randomBytes(size)))
    const sellingPartnerId = randomSellingPartnerId()
    const refreshToken = stack.simulator.selfAuthorize(stack.app.appId, sellingPartnerId, 'na')
    const now = Date.now()
    const row = await stack.runtime.store.insertConnection({
      id,
      sellingPartnerId,
      region: 'na',
      accountType: 'seller',
      tenantId: 'multiprocess',
      refreshTokenCiphertext: sealToken(stack.runtime.keyring, id, 'refresh_token', refreshToken),
      accessTokenCiphertext: null,
      accessTokenExpiresAt: null,
      authorizedAt: now,
      reauthorizeBy: now + YEAR_MS,
      now,
    })
    if (!row) throw new Error('connection not inserted')
    rows.push(row)
  }
  return rows
}

async function row(stack: Stack, id: string): Promise<ConnectionRecord> {
  const found = await stack.runtime.store.getConnection(id)
  if (!found) throw new Error(`connection ${id} vanished`)
  return found
}

/** Polls until `probe` yields a value; fails at once if `worker` dies meanwhile (the test timeout bounds it). */
async function until<T>(worker: Worker, probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (worker.child.exitCode !== null || worker.child.signalCode !== null) {
      throw new Error(`worker ${worker.child.pid} exited while we waited:\n${worker.output()}`)
    }
    await sleep(10)
  }
}

function tokensOf(calls: readonly CallOutcome[]): string[] {
  return calls.map((c) => (c.ok ? c.accessToken : `error:${c.code}`))
}

describe('several real processes sharing one SQLite file', () => {
  let stack: Stack | undefined

  // A fresh deployment per test: a request a killed child left at the simulator must not count in the next test.
  beforeEach(async () => {
    stack = await startStack({ env: { SP_CONNECT_REFRESHER: 'off' } })
  })
  afterEach(async () => {
    await killAll()
    await stack?.close()
    stack = undefined
  })
  afterAll(killAll)

  function current(): Stack {
    if (!stack) throw new Error('no stack')
    return stack
  }

  it('4 processes × 200 callers on 5 expired connections: one refresh per connection, one token for all', async () => {
    const s = current()
    const connections = await insertTokenlessConnections(s, 5)
    const ids = connections.map((c) => c.id)
    // Slow answers, so every process is still asking while the first refresh of a connection is in flight.
    s.simulator.setFaults({ latencyMs: 200 })
    s.simulator.resetCounters()

    const workers = Array.from({ length: 4 }, () => startWorker(s))
    await Promise.all(workers.map((w) => w.ready))
    for (const w of workers) w.go(ids, 200)
    const results = await Promise.all(workers.map((w) => w.result))

    const all = results.flatMap((r) => r.calls)
    expect(all).toHaveLength(4 * 200)
    // Every caller in every process got a token.
    expect(all.filter((c) => !c.ok)).toEqual([])

    // Each connection had no token, so each needed at least one refresh; 5 in total means exactly one each.
    const counters = s.simulator.counters()
    expect(counters.byGrant.refresh_token).toBe(5)
    expect(counters.total).toBe(5)
    expect(counters.byOutcome).toEqual({ ok: 5, error: 0, fault: 0 })

    for (const before of connections) {
      const calls = all.filter((c) => c.connectionId === before.id)
      expect(calls).toHaveLength(4 * 40)
      // All callers of one connection, whatever their process, got the same token: the one stored.
      const tokens = new Set(tokensOf(calls))
      expect(tokens.size).toBe(1)
      const after = await row(s, before.id)
      expect(after.version).toBe(before.version + 1)
      expect(after).toMatchObject({ status: 'active', failureCount: 0, leaseOwner: null })
      expect(openToken(s.runtime.keyring, before.id, 'access_token', after.accessTokenCiphertext ?? '')).toBe(
        [...tokens][0],
      )
    }
    // One token per connection, and no two connections share one.
    expect(new Set(tokensOf(all)).size).toBe(5)
    for (const w of workers) expect(await w.exited).toEqual({ code: 0, signal: null })
  })

  it('a process killed while holding the lease: another gets a token only after that lease expired', async () => {
    const s = current()
    const [connection] = await insertTokenlessConnections(s, 1)
    if (!connection) throw new Error('no connection')
    const leaseArgs = ['--lease-ms', '2000']
    s.simulator.setFaults({ latencyMs: 5_000 })

    const first = startWorker(s, leaseArgs)
    // Started now, so it is ready to ask the moment the first dies, well inside the dead lease.
    const second = startWorker(s, leaseArgs)
    const [firstReady, secondReady] = await Promise.all([first.ready, second.ready])
    first.go([connection.id], 1)

    // The first process takes the lease and then hangs in the (slow) token endpoint.
    const held = await until(first, async () => {
      const r = await row(s, connection.id)
      return r.leaseOwner === null ? undefined : r
    })
    expect(held.leaseOwner).toBe(firstReady.owner)
    const firstLeaseUntil = held.leaseUntil ?? Number.NaN
    first.child.kill('SIGKILL')
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' })

    // Dead, and it never wrote: same version, no token, and its lease left behind.
    const orphaned = await row(s, connection.id)
    expect(orphaned).toMatchObject({
      version: connection.version,
      accessTokenCiphertext: null,
      leaseOwner: firstReady.owner,
      leaseUntil: firstLeaseUntil,
    })

    s.simulator.setFaults({})
    second.go([connection.id], 1)
    const [call] = (await second.result).calls
    if (!call?.ok) throw new Error(`second process got no token: ${JSON.stringify(call)}`)

    // The order of facts: the second asked while the dead lease was live, and refreshed only once it expired.
    const after = await row(s, connection.id)
    expect(call.startedAt).toBeLessThan(firstLeaseUntil)
    expect(after.lastRefreshAt).toBeGreaterThanOrEqual(firstLeaseUntil)
    expect(call.finishedAt).toBeGreaterThanOrEqual(after.lastRefreshAt ?? Number.POSITIVE_INFINITY)

    // The row holds the second process's valid token, written once (the first never wrote), lease released.
    expect(after).toMatchObject({
      status: 'active',
      version: connection.version + 1,
      leaseOwner: null,
      failureCount: 0,
    })
    expect(
      openToken(s.runtime.keyring, connection.id, 'access_token', after.accessTokenCiphertext ?? ''),
    ).toBe(call.accessToken)
    expect(after.accessTokenExpiresAt).toBe(call.expiresAt)
    expect(call.expiresAt).toBeGreaterThan(Date.now())
    // (No count of token-endpoint calls here: the dead process's request is still being answered, slowly.)
    expect(secondReady.owner).not.toBe(firstReady.owner)
    expect(await second.exited).toEqual({ code: 0, signal: null })
  })

  it('a revoked seller asked for by 3 processes at once: one token-endpoint call, one event', async () => {
    const s = current()
    const [connection] = await insertTokenlessConnections(s, 1)
    if (!connection) throw new Error('no connection')
    s.simulator.revoke(connection.sellingPartnerId)
    s.simulator.setFaults({ latencyMs: 200 })
    s.simulator.resetCounters()

    const workers = Array.from({ length: 3 }, () => startWorker(s))
    await Promise.all(workers.map((w) => w.ready))
    for (const w of workers) w.go([connection.id], 20)
    const all = (await Promise.all(workers.map((w) => w.result))).flatMap((r) => r.calls)

    expect(all).toHaveLength(3 * 20)
    expect(new Set(tokensOf(all))).toEqual(new Set(['error:connection_needs_reauthorization']))
    expect(s.simulator.counters().byGrant.refresh_token).toBe(1)
    expect(s.simulator.counters().total).toBe(1)

    const after = await row(s, connection.id)
    expect(after).toMatchObject({
      status: 'needs_reauthorization',
      statusReason: 'lwa_invalid_grant',
      leaseOwner: null,
    })
    const events = await s.runtime.store.listEvents({
      connectionId: connection.id,
      type: 'connection.needs_reauthorization',
    })
    expect(events).toHaveLength(1)
    for (const w of workers) expect(await w.exited).toEqual({ code: 0, signal: null })
  })
})
