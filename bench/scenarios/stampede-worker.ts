/**
 * One sp-connect process of the stampede (stampede.ts forks four): opens a runtime on the shared SQLite file,
 * then on each `go` waits for the agreed start time and fires N concurrent `getAccessToken` calls for one
 * connection, reporting each caller's wait. Exits when its parent goes away.
 */
import { createHash } from 'node:crypto'
import type { Runtime } from '../../src/runtime.ts'
import { openBenchRuntime } from '../lib/harness.ts'
import { epochMs, round } from '../lib/stats.ts'

export type WorkerRequest =
  | { readonly op: 'init'; readonly env: Record<string, string> }
  | { readonly op: 'go'; readonly connectionId: string; readonly startAt: number; readonly callers: number }
  | { readonly op: 'close' }

export type WorkerReply =
  | { readonly type: 'ready' }
  | {
      readonly type: 'done'
      /** Each caller's wait from the agreed start, in ms (rounded to µs), in completion order. */
      readonly waitsMs: readonly number[]
      readonly failures: Readonly<Record<string, number>>
      /** Short hashes of the distinct tokens handed out (never the tokens). */
      readonly tokens: readonly string[]
      /** How late this process started its callers after the agreed time, in ms. */
      readonly startSkewMs: number
    }
  | { readonly type: 'error'; readonly message: string }

let runtime: Runtime | undefined

function send(reply: WorkerReply): void {
  process.send?.(reply)
}

/** Sleeps until shortly before `at`, then spins, so all four processes start within a fraction of a ms. */
async function until(at: number): Promise<void> {
  const coarse = at - epochMs() - 3
  if (coarse > 0) await new Promise((resolve) => setTimeout(resolve, coarse))
  while (epochMs() < at) {
    // spin
  }
}

async function go(rt: Runtime, connectionId: string, startAt: number, callers: number): Promise<void> {
  await until(startAt)
  const started = epochMs()
  const waits: number[] = []
  const failures: Record<string, number> = {}
  const tokens = new Set<string>()
  const calls: Promise<void>[] = []
  for (let i = 0; i < callers; i++) {
    calls.push(
      rt.tokens.getAccessToken(connectionId).then(
        (token) => {
          waits.push(round(epochMs() - startAt, 3))
          tokens.add(createHash('sha256').update(token.accessToken).digest('hex').slice(0, 12))
        },
        (error: unknown) => {
          waits.push(round(epochMs() - startAt, 3))
          const code = error instanceof Error && 'code' in error ? String(error.code) : 'unknown'
          failures[code] = (failures[code] ?? 0) + 1
        },
      ),
    )
  }
  await Promise.all(calls)
  send({
    type: 'done',
    waitsMs: waits,
    failures,
    tokens: [...tokens],
    startSkewMs: round(started - startAt, 3),
  })
}

/** Closes the runtime once, however often asked (a `close` message and then the disconnect both ask). */
async function shutdown(): Promise<void> {
  const rt = runtime
  runtime = undefined
  await rt?.close()
}

process.on('disconnect', () => {
  void shutdown().finally(() => process.exit(0))
})

process.on('message', (message: WorkerRequest) => {
  const fail = (error: unknown) =>
    send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) })
  if (message.op === 'init') {
    openBenchRuntime(message.env, false).then((rt) => {
      runtime = rt
      send({ type: 'ready' })
    }, fail)
  } else if (message.op === 'go') {
    if (!runtime) return fail(new Error('go before init'))
    go(runtime, message.connectionId, message.startAt, message.callers).catch(fail)
  } else {
    void shutdown().finally(() => process.disconnect())
  }
})
