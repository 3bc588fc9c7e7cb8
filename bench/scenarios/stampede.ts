/**
 * 2. Stampede: 1,000 concurrent callers in each of 4 real processes (stampede-worker.ts) ask for the token of
 * one connection whose access token has expired; the processes share one SQLite file, and the simulator runs
 * as a real HTTP server on loopback in a process of its own, its token endpoint answering after 20 ms.
 *
 * Measured per round: token-endpoint calls (the simulator's counters; target 1), and each caller's wait from
 * the agreed start time (p50, p99, slowest). Every round uses a new expired connection, so no process has it
 * cached, and an untimed warm-up round comes first. The same is then done with one process, the shape of the
 * peers' row 2.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import {
  benchEnv,
  insertConnections,
  newEncryptionKey,
  openBenchRuntime,
  sellingPartnerId,
  tempDir,
  withCleanup,
} from '../lib/harness.ts'
import { RemoteSimulator } from '../lib/remote-simulator.ts'
import { epochMs, median, quantile, round } from '../lib/stats.ts'
import type { WorkerReply, WorkerRequest } from './stampede-worker.ts'

const WORKER = fileURLToPath(new URL('./stampede-worker.ts', import.meta.url))
const PROCESSES = 4
const CALLERS_PER_PROCESS = 1_000
const ROUNDS = 10
const TOKEN_LATENCY_MS = 20
/** Time between sending `go` and the agreed start, so every process is waiting when it comes. */
const START_DELAY_MS = 500
const ROUND_TIMEOUT_MS = 60_000

export interface StampedeRound {
  readonly processes: number
  readonly callers: number
  readonly tokenEndpointCalls: number
  readonly failed: number
  readonly failures: Readonly<Record<string, number>>
  readonly distinctTokens: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly slowestMs: number
  /** The slowest caller of each process. */
  readonly slowestPerProcessMs: readonly number[]
  /** Latest start of a process after the agreed time. */
  readonly maxStartSkewMs: number
}

export interface StampedeSummary {
  readonly rounds: readonly StampedeRound[]
  /** Highest token-endpoint call count of any round (target 1). */
  readonly maxTokenEndpointCalls: number
  readonly totalFailed: number
  readonly medianP50Ms: number
  readonly medianSlowestMs: number
  readonly worstSlowestMs: number
}

export interface StampedeResult {
  readonly multiProcess: StampedeSummary
  readonly singleProcess: StampedeSummary
  readonly settings: {
    processes: number
    callersPerProcess: number
    rounds: number
    tokenLatencyMs: number
  }
}

class Worker {
  readonly child: ChildProcess
  #waiting: ((reply: WorkerReply) => void) | undefined

  constructor() {
    this.child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (reply: WorkerReply) => {
      const waiting = this.#waiting
      this.#waiting = undefined
      waiting?.(reply)
    })
  }

  request(message: WorkerRequest, timeoutMs = ROUND_TIMEOUT_MS): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('stampede worker did not answer in time')), timeoutMs)
      this.#waiting = (reply) => {
        clearTimeout(timer)
        if (reply.type === 'error') reject(new Error(reply.message))
        else resolve(reply)
      }
      this.child.send(message)
    })
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000)
    if (this.child.connected) this.child.send({ op: 'close' } satisfies WorkerRequest)
    await exited
    clearTimeout(timer)
  }
}

function summarize(rounds: StampedeRound[]): StampedeSummary {
  return {
    rounds,
    maxTokenEndpointCalls: Math.max(...rounds.map((r) => r.tokenEndpointCalls)),
    totalFailed: rounds.reduce((sum, r) => sum + r.failed, 0),
    medianP50Ms: median(rounds.map((r) => r.p50Ms)),
    medianSlowestMs: median(rounds.map((r) => r.slowestMs)),
    worstSlowestMs: Math.max(...rounds.map((r) => r.slowestMs)),
  }
}

export async function run(): Promise<StampedeResult> {
  return withCleanup(async (defer) => {
    const dir = tempDir('stampede')
    defer(() => dir.dispose())
    const sim = await RemoteSimulator.start()
    defer(() => sim.close())
    const env = benchEnv(sim.target, `${dir.path}/shared.db`, newEncryptionKey())
    const runtime = await openBenchRuntime(env)
    defer(() => runtime.close())

    // One expired connection per round, and one for an untimed warm-up round of each shape.
    const spids = Array.from({ length: 2 * (ROUNDS + 1) }, (_, i) => sellingPartnerId(i + 1))
    const refreshTokens = await sim.selfAuthorize(spids)
    const expiredAt = runtime.deps.now() - 60_000
    const ids = await insertConnections(
      runtime,
      spids.map((sp, i) => ({
        sellingPartnerId: sp,
        refreshToken: refreshTokens[i] ?? '',
        accessToken: { token: `Atza|expired-${i}`, expiresAt: expiredAt },
      })),
    )

    const workers = Array.from({ length: PROCESSES }, () => new Worker())
    for (const worker of workers) defer(() => worker.close())
    await Promise.all(workers.map((w) => w.request({ op: 'init', env }, 30_000)))
    await sim.setFaults({ latencyMs: TOKEN_LATENCY_MS })

    const stampede = async (connectionId: string, group: Worker[]): Promise<StampedeRound> => {
      await sim.resetCounters()
      const startAt = epochMs() + START_DELAY_MS
      const replies = await Promise.all(
        group.map((w) => w.request({ op: 'go', connectionId, startAt, callers: CALLERS_PER_PROCESS })),
      )
      const counters = await sim.counters()
      const done = replies.flatMap((r) => (r.type === 'done' ? [r] : []))
      const waits = done.flatMap((r) => r.waitsMs)
      const failures: Record<string, number> = {}
      for (const r of done) {
        for (const [code, n] of Object.entries(r.failures)) failures[code] = (failures[code] ?? 0) + n
      }
      return {
        processes: group.length,
        callers: waits.length,
        tokenEndpointCalls: counters.byGrant.refresh_token,
        failed: Object.values(failures).reduce((a, b) => a + b, 0),
        failures,
        distinctTokens: new Set(done.flatMap((r) => r.tokens)).size,
        p50Ms: round(quantile(waits, 0.5), 2),
        p99Ms: round(quantile(waits, 0.99), 2),
        slowestMs: round(Math.max(...waits), 2),
        slowestPerProcessMs: done.map((r) => round(Math.max(...r.waitsMs), 2)),
        maxStartSkewMs: round(Math.max(...done.map((r) => r.startSkewMs)), 3),
      }
    }

    const next = (() => {
      let i = 0
      return () => ids[i++] ?? ''
    })()
    const rounds = async (group: Worker[]): Promise<StampedeRound[]> => {
      // The first round warms up JIT, SQLite statements and the HTTP pool, and is not counted.
      await stampede(next(), group)
      const timed: StampedeRound[] = []
      for (let r = 0; r < ROUNDS; r++) timed.push(await stampede(next(), group))
      return timed
    }
    const multi = await rounds(workers)
    const single = await rounds(workers.slice(0, 1))
    return {
      multiProcess: summarize(multi),
      singleProcess: summarize(single),
      settings: {
        processes: PROCESSES,
        callersPerProcess: CALLERS_PER_PROCESS,
        rounds: ROUNDS,
        tokenLatencyMs: TOKEN_LATENCY_MS,
      },
    }
  })
}
