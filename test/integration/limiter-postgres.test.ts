/**
 * Three real processes share one usage plan through PostgreSQL: each (test/helpers/limiter-worker.ts) opens its
 * own store and limiter on the real clock, and all their callers want a turn for the same key at once. Only the
 * `rate_buckets` row is shared. The assertions are about the schedule the database handed out (every grant's
 * send time), not about how fast the machine ran it: the schedule must keep to the plan in every window, and
 * every caller must get exactly one turn.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RatePlan } from '../../src/core/spapi/operations.ts'
import { openPostgresStore } from '../../src/store/index.ts'
import { createTestDatabase, locateTestPostgres, type TestDatabase } from '../helpers/cluster.ts'
import type { LimiterGo, LimiterWorkerReport } from '../helpers/limiter-worker.ts'
import { planViolation } from '../helpers/rate-conformance.ts'

const WORKER_PATH = join(import.meta.dirname, '..', 'helpers', 'limiter-worker.ts')
const PROCESSES = 3
const CALLERS_PER_PROCESS = 20
const PLAN: RatePlan = { rate: 5, burst: 10 }

const server = await locateTestPostgres('the multi-instance limiter test')

type Result = Extract<LimiterWorkerReport, { type: 'result' }>

const live = new Set<ChildProcess>()
let database: TestDatabase | undefined

function startWorker(url: string) {
  const child = fork(WORKER_PATH, [], {
    // Node 24 runs the .ts file itself; vitest's own execArgv must not leak in.
    execPath: process.execPath,
    execArgv: [],
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', DATABASE_URL: url },
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
  child.once('exit', () => live.delete(child))
  const report = <T extends LimiterWorkerReport['type']>(type: T) =>
    new Promise<Extract<LimiterWorkerReport, { type: T }>>((resolve, reject) => {
      child.on('message', (message: LimiterWorkerReport) => {
        if (message.type === type) resolve(message as Extract<LimiterWorkerReport, { type: T }>)
        else if (message.type === 'fatal') reject(new Error(`worker failed: ${message.message}`))
      })
      child.once('exit', (code) => reject(new Error(`worker exited (${code}) before '${type}':\n${output}`)))
    })
  const ready = report('ready')
  const result = report('result')
  ready.catch(() => {})
  result.catch(() => {})
  return {
    ready,
    result,
    go: (message: LimiterGo) => child.send(message),
  }
}

beforeAll(async () => {
  if (!server.available) return
  database = await createTestDatabase(server.url, 'limiter')
  const store = await openPostgresStore({ url: database.url, poolSize: 2 })
  try {
    await store.migrate()
  } finally {
    await store.close()
  }
})

afterAll(async () => {
  await Promise.all(
    [...live].map(async (child) => {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }),
  )
  await database?.drop()
})

describe.runIf(server.available)('call limiter across processes on PostgreSQL', () => {
  it(`keeps ${PROCESSES} processes × ${CALLERS_PER_PROCESS} concurrent callers on one key within rate 5, burst 10`, async () => {
    const url = database?.url ?? ''
    const workers = Array.from({ length: PROCESSES }, () => startWorker(url))
    await Promise.all(workers.map((w) => w.ready))
    const key = 'con_shared:getOrders'
    // Ample: the last of 60 turns comes (60 - 10) / 5 = 10 s after the first, however busy the machine is.
    const go: LimiterGo = {
      type: 'go',
      key,
      plan: PLAN,
      callers: CALLERS_PER_PROCESS,
      deadline: Date.now() + 10 * 60_000,
    }
    for (const w of workers) w.go(go)
    const results: Result[] = await Promise.all(workers.map((w) => w.result))

    const calls = PROCESSES * CALLERS_PER_PROCESS
    expect(results.flatMap((r) => r.failed)).toEqual([])
    expect(results.reduce((sum, r) => sum + r.passed, 0)).toBe(calls)
    const grants = results.flatMap((r) => r.grants)
    expect(grants).toHaveLength(calls)
    // One grant per caller in every process: none went through without a reservation, none took two.
    for (const r of results) expect(r.grants).toHaveLength(CALLERS_PER_PROCESS)
    expect(planViolation(grants, PLAN)).toBeUndefined()
  }, 120_000)
})
