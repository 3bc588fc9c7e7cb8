/**
 * 5. Lease wake-up on PostgreSQL: how long callers in other processes wait after the lease holder has written the
 * new token, with LISTEN/NOTIFY (the store's default) and with polling alone (`notify: false`).
 *
 * A database of its own on the PostgreSQL server (SP_CONNECT_BENCH_DATABASE_URL, else
 * postgres://postgres@127.0.0.1:5432/postgres; created with the C collation, dropped at the end), the simulator
 * in a process of its own with a token endpoint answering after 20 ms, and four sp-connect processes
 * (lease-wakeup-worker.ts). Each round takes a new connection whose access token has expired: the holder process
 * asks for its token, so it takes the lease and calls the token endpoint; the moment it has the lease, the three
 * other processes start 200 concurrent callers each, which find the lease taken and wait for the row to change.
 * A caller's extra wait is its answer time minus the moment the holder's `updateTokens` returned (the commit, and
 * with it the NOTIFY, happened just before). Processes that had not started waiting before the write (they found
 * the token already there) are left out and counted.
 *
 * The two modes run in alternating blocks (notify, poll, notify, …), each block on freshly opened runtimes with
 * one untimed warm-up round, so drift on the shared machine hits both alike. Every store call of every process is
 * counted: the statements each mode costs.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { escapeIdentifier } from 'pg'
import {
  benchEnv,
  insertConnections,
  newEncryptionKey,
  openBenchRuntime,
  sellingPartnerId,
  withCleanup,
} from '../lib/harness.ts'
import { withClient } from '../lib/postgres.ts'
import { RemoteSimulator } from '../lib/remote-simulator.ts'
import { median, quantile, round } from '../lib/stats.ts'
import type { LeaseWakeupReply, LeaseWakeupRequest } from './lease-wakeup-worker.ts'

const WORKER = fileURLToPath(new URL('./lease-wakeup-worker.ts', import.meta.url))
const DEFAULT_SERVER_URL = 'postgres://postgres@127.0.0.1:5432/postgres'
const WAITER_PROCESSES = 3
const CALLERS_PER_PROCESS = 200
const TOKEN_LATENCY_MS = 20
/** Blocks per mode, and timed rounds per block (each block also has one untimed warm-up round). */
const BLOCKS_PER_MODE = 3
const ROUNDS_PER_BLOCK = 10
/** Pause between rounds, so one round's stragglers (lease release, usage writes) are done before the next. */
const ROUND_GAP_MS = 100
const MESSAGE_TIMEOUT_MS = 30_000
/** The store's poll bounds (manager.ts) and the listening connection's heartbeat (postgres.ts), for the report. */
const POLL_MIN_MS = 50
const POLL_MAX_MS = 500
const LISTEN_HEARTBEAT_SECONDS = 30

export type LeaseWakeupModeName = 'notify' | 'poll'

export interface LeaseWakeupRound {
  readonly tokenEndpointCalls: number
  readonly failed: number
  /** Waiter processes that were already waiting when the holder wrote (the others are left out). */
  readonly waitingProcesses: number
  readonly p50Ms: number
  readonly maxMs: number
  /** How long the holder's `updateTokens` took (the uncertainty of the write time). */
  readonly writeMs: number
}

export interface LeaseWakeupMode {
  readonly mode: LeaseWakeupModeName
  readonly rounds: readonly LeaseWakeupRound[]
  /** Callers whose extra wait was measured (those of waiting processes). */
  readonly samples: number
  /** Waiter processes left out because they had not started waiting before the write. */
  readonly excludedProcesses: number
  readonly maxTokenEndpointCalls: number
  readonly failed: number
  /** Each caller's answer time minus the holder's write time, over every round. */
  readonly extraWait: {
    readonly p50Ms: number
    readonly p99Ms: number
    readonly maxMs: number
    readonly meanMs: number
  }
  /** `waitForConnectionChange` calls per waiter process and round, and the share that a wake-up ended early. */
  readonly waitsPerProcessRound: number
  readonly wokenShare: number
  /** Store statements per round (each store call is one statement here), mean over rounds. */
  readonly statementsPerRound: { readonly holder: number; readonly waiters: number }
  /** The waiters' statements by store method, per round (mean). */
  readonly waiterStatementsByMethod: Readonly<Record<string, number>>
  /** The waiters' statements per second of waiting (from a process's start to its last answer). */
  readonly waiterStatementsPerWaitingSecond: number
  /** A waiter process's wait, start to last answer, median over processes and rounds. */
  readonly medianProcessWaitMs: number
}

export interface LeaseWakeupResult {
  readonly notify: LeaseWakeupMode
  readonly poll: LeaseWakeupMode
  readonly settings: {
    readonly waiterProcesses: number
    readonly callersPerProcess: number
    readonly tokenLatencyMs: number
    readonly roundsPerMode: number
    readonly blocksPerMode: number
    readonly pollMinMs: number
    readonly pollMaxMs: number
    /** What LISTEN costs when nothing happens: one connection per instance and a heartbeat statement. */
    readonly listenConnectionsPerInstance: number
    readonly listenHeartbeatSeconds: number
    readonly postgresVersion: string
  }
}

type Reply<T extends LeaseWakeupReply['type']> = Extract<LeaseWakeupReply, { type: T }>

/** A forked lease-wakeup-worker.ts: requests out, typed replies in (kept until asked for). */
class Worker {
  readonly child: ChildProcess
  readonly #inbox: LeaseWakeupReply[] = []
  readonly #waiting: Array<{
    type: string
    resolve: (r: LeaseWakeupReply) => void
    reject: (e: Error) => void
  }> = []
  #failure: Error | undefined

  constructor() {
    this.child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (reply: LeaseWakeupReply) => {
      if (reply.type === 'error') return this.#fail(new Error(reply.message))
      const index = this.#waiting.findIndex((w) => w.type === reply.type)
      const waiter = index >= 0 ? this.#waiting.splice(index, 1)[0] : undefined
      if (waiter) waiter.resolve(reply)
      else this.#inbox.push(reply)
    })
    this.child.on('exit', (code, signal) => this.#fail(new Error(`worker exited (${signal ?? code})`)))
  }

  #fail(error: Error): void {
    this.#failure ??= error
    for (const w of this.#waiting.splice(0)) w.reject(error)
  }

  send(request: LeaseWakeupRequest): void {
    this.child.send(request)
  }

  next<T extends LeaseWakeupReply['type']>(type: T, timeoutMs = MESSAGE_TIMEOUT_MS): Promise<Reply<T>> {
    const index = this.#inbox.findIndex((r) => r.type === type)
    if (index >= 0) return Promise.resolve(this.#inbox.splice(index, 1)[0] as Reply<T>)
    if (this.#failure) return Promise.reject(this.#failure)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiting.indexOf(entry)
        if (i >= 0) this.#waiting.splice(i, 1)
        reject(new Error(`lease-wakeup worker sent no '${type}' in time`))
      }, timeoutMs)
      const entry = {
        type,
        resolve: (r: LeaseWakeupReply) => {
          clearTimeout(timer)
          resolve(r as Reply<T>)
        },
        reject: (e: Error) => {
          clearTimeout(timer)
          reject(e)
        },
      }
      this.#waiting.push(entry)
    })
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000)
    if (this.child.connected) this.send({ op: 'close' })
    await exited
    clearTimeout(timer)
  }
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0)
const mean = (values: readonly number[]) => (values.length === 0 ? Number.NaN : sum(values) / values.length)
/** Store calls that are statements (a wait is not). */
const statements = (calls: Readonly<Record<string, number>>) =>
  sum(Object.entries(calls).flatMap(([method, n]) => (method === 'waitForConnectionChange' ? [] : [n])))

interface RoundData {
  readonly summary: LeaseWakeupRound
  readonly extraWaits: readonly number[]
  readonly excluded: number
  readonly holderStatements: number
  readonly waiterCalls: readonly Readonly<Record<string, number>>[]
  readonly waits: number
  readonly woken: number
  readonly processWaitsMs: readonly number[]
}

function summarize(mode: LeaseWakeupModeName, data: readonly RoundData[]): LeaseWakeupMode {
  const extra = data.flatMap((d) => d.extraWaits)
  const waiterCalls = data.flatMap((d) => d.waiterCalls)
  const byMethod: Record<string, number> = {}
  for (const calls of waiterCalls) {
    for (const [method, n] of Object.entries(calls)) byMethod[method] = (byMethod[method] ?? 0) + n
  }
  for (const method of Object.keys(byMethod))
    byMethod[method] = round((byMethod[method] ?? 0) / data.length, 2)
  const waits = sum(data.map((d) => d.waits))
  const waitingSeconds = sum(data.flatMap((d) => d.processWaitsMs)) / 1000
  const waiterStatements = sum(waiterCalls.map(statements))
  return {
    mode,
    rounds: data.map((d) => d.summary),
    samples: extra.length,
    excludedProcesses: sum(data.map((d) => d.excluded)),
    maxTokenEndpointCalls: Math.max(...data.map((d) => d.summary.tokenEndpointCalls)),
    failed: sum(data.map((d) => d.summary.failed)),
    extraWait: {
      p50Ms: round(quantile(extra, 0.5), 2),
      p99Ms: round(quantile(extra, 0.99), 2),
      maxMs: round(Math.max(...extra), 2),
      meanMs: round(mean(extra), 2),
    },
    waitsPerProcessRound: round(waits / waiterCalls.length, 2),
    wokenShare: round(waits === 0 ? 0 : sum(data.map((d) => d.woken)) / waits, 3),
    statementsPerRound: {
      holder: round(mean(data.map((d) => d.holderStatements)), 2),
      waiters: round(waiterStatements / data.length, 2),
    },
    waiterStatementsByMethod: byMethod,
    waiterStatementsPerWaitingSecond: round(waiterStatements / waitingSeconds, 1),
    medianProcessWaitMs: round(median(data.flatMap((d) => d.processWaitsMs)), 2),
  }
}

export async function run(): Promise<LeaseWakeupResult> {
  return withCleanup(async (defer) => {
    const serverUrl = process.env['SP_CONNECT_BENCH_DATABASE_URL'] || DEFAULT_SERVER_URL
    const databaseName = `sp_connect_bench_wakeup_${randomBytes(6).toString('hex')}`
    const postgresVersion = await withClient(serverUrl, async (server) => {
      // Identifiers cannot be bound as parameters; this one is generated from hex digits and quoted anyway.
      await server.query(
        `create database ${escapeIdentifier(databaseName)} template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'`,
      )
      const version = await server.query<{ server_version: string }>('show server_version')
      return version.rows[0]?.server_version ?? 'unknown'
    })
    defer(() =>
      withClient(serverUrl, (server) =>
        server.query(`drop database if exists ${escapeIdentifier(databaseName)} with (force)`),
      ),
    )
    const databaseUrl = new URL(serverUrl)
    databaseUrl.pathname = `/${databaseName}`

    const sim = await RemoteSimulator.start()
    defer(() => sim.close())
    const env = benchEnv(sim.target, databaseUrl.toString(), newEncryptionKey())

    // One expired connection per round, warm-ups included; inserted (and the schema migrated) up front.
    const roundsInAll = 2 * BLOCKS_PER_MODE * (ROUNDS_PER_BLOCK + 1)
    const setup = await openBenchRuntime(env)
    let ids: string[]
    try {
      const spids = Array.from({ length: roundsInAll }, (_, i) => sellingPartnerId(i + 1, 'AW'))
      const refreshTokens = await sim.selfAuthorize(spids)
      const expiredAt = setup.deps.now() - 60_000
      ids = await insertConnections(
        setup,
        spids.map((sp, i) => ({
          sellingPartnerId: sp,
          refreshToken: refreshTokens[i] ?? '',
          accessToken: { token: `Atza|expired-${i}`, expiresAt: expiredAt },
        })),
      )
    } finally {
      await setup.close()
    }
    const nextId = (() => {
      let i = 0
      return () => ids[i++] ?? ''
    })()

    const holder = new Worker()
    const waiters = Array.from({ length: WAITER_PROCESSES }, () => new Worker())
    const all = [holder, ...waiters]
    for (const worker of all) defer(() => worker.close())
    await sim.setFaults({ latencyMs: TOKEN_LATENCY_MS })

    const oneRound = async (connectionId: string): Promise<RoundData> => {
      await sim.resetCounters()
      const held = holder.next('held')
      holder.send({ op: 'hold', connectionId })
      await holder.next('leased')
      const waited = waiters.map((w) => w.next('waited'))
      for (const w of waiters) w.send({ op: 'wait', connectionId, callers: CALLERS_PER_PROCESS })
      const [h, ...ws] = await Promise.all([held, ...waited])
      const counters = await sim.counters()
      if (h.failure !== null) throw new Error(`the lease holder failed: ${h.failure}`)
      const writeAt = h.writeAt
      const waiting = ws.filter((w) => w.firstWaitAt !== null && w.firstWaitAt < writeAt)
      const extraWaits = waiting.flatMap((w) => w.answersAt.map((t) => round(t - writeAt, 3)))
      const failed = sum(ws.flatMap((w) => Object.values(w.failures)))
      return {
        summary: {
          tokenEndpointCalls: counters.byGrant.refresh_token,
          failed,
          waitingProcesses: waiting.length,
          p50Ms: round(quantile(extraWaits, 0.5), 2),
          maxMs: round(extraWaits.length === 0 ? Number.NaN : Math.max(...extraWaits), 2),
          writeMs: round(h.writeAt - h.writeStartAt, 2),
        },
        extraWaits,
        excluded: ws.length - waiting.length,
        holderStatements: statements(h.storeCalls),
        waiterCalls: ws.map((w) => w.storeCalls),
        waits: sum(ws.map((w) => w.waits)),
        woken: sum(ws.map((w) => w.woken)),
        processWaitsMs: ws.map((w) => round(Math.max(...w.answersAt) - w.startedAt, 3)),
      }
    }

    const collected: Record<LeaseWakeupModeName, RoundData[]> = { notify: [], poll: [] }
    const order: LeaseWakeupModeName[] = Array.from({ length: 2 * BLOCKS_PER_MODE }, (_, i) =>
      i % 2 === 0 ? 'notify' : 'poll',
    )
    for (const mode of order) {
      for (const worker of all) worker.send({ op: 'init', env, notify: mode === 'notify' })
      await Promise.all(all.map((w) => w.next('ready')))
      // Warm-up: JIT, prepared pool connections, the HTTP agent; not counted.
      await oneRound(nextId())
      for (let r = 0; r < ROUNDS_PER_BLOCK; r++) {
        await new Promise((resolve) => setTimeout(resolve, ROUND_GAP_MS))
        collected[mode].push(await oneRound(nextId()))
      }
    }

    return {
      notify: summarize('notify', collected.notify),
      poll: summarize('poll', collected.poll),
      settings: {
        waiterProcesses: WAITER_PROCESSES,
        callersPerProcess: CALLERS_PER_PROCESS,
        tokenLatencyMs: TOKEN_LATENCY_MS,
        roundsPerMode: BLOCKS_PER_MODE * ROUNDS_PER_BLOCK,
        blocksPerMode: BLOCKS_PER_MODE,
        pollMinMs: POLL_MIN_MS,
        pollMaxMs: POLL_MAX_MS,
        listenConnectionsPerInstance: 1,
        listenHeartbeatSeconds: LISTEN_HEARTBEAT_SECONDS,
        postgresVersion,
      },
    }
  })
}
