/**
 * One more sp-connect process asking for access tokens, for test/integration/multiprocess.test.ts.
 *
 * Run it with `fork()` (it talks over the IPC channel) and the deployment's environment: it opens a runtime
 * from that environment the way the server does, reports `ready`, waits for `go`, fires all its calls at once,
 * reports every outcome and exits. `--lease-ms N` makes it use a TokenManager with that lease time (built from
 * the runtime's own parts) instead of the runtime's, because the lease time is not configurable.
 *
 * The test imports only the message types from here (`import type`), so nothing below runs inside vitest.
 */
import { parseArgs } from 'node:util'
import { loadConfigFromEnv } from '../../src/config.ts'
import { defaultDeps } from '../../src/core/deps.ts'
import { TokenManager } from '../../src/core/tokens/manager.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'
import { openRuntime } from '../../src/runtime.ts'

/** Parent → worker: ask for tokens now. Caller `i` asks for `connectionIds[i % connectionIds.length]`. */
export interface GoMessage {
  readonly type: 'go'
  readonly connectionIds: readonly string[]
  readonly callers: number
}

/** One caller's outcome. Times are this process's `Date.now()` (the same clock as the test's). */
export type CallOutcome = {
  readonly connectionId: string
  readonly startedAt: number
  readonly finishedAt: number
  readonly durationMs: number
} & (
  | { readonly ok: true; readonly accessToken: string; readonly expiresAt: number }
  | { readonly ok: false; readonly code: string }
)

export type WorkerReport =
  /** `owner` is the lease owner this process writes, when it chose it (with `--lease-ms`). */
  | { readonly type: 'ready'; readonly pid: number; readonly owner: string | null }
  | { readonly type: 'result'; readonly pid: number; readonly calls: readonly CallOutcome[] }
  | { readonly type: 'fatal'; readonly message: string }

function send(report: WorkerReport): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('token-worker must be started with fork() (no IPC channel)'))
    process.send(report, (error: Error | null) => (error ? reject(error) : resolve()))
  })
}

function isGo(message: unknown): message is GoMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'go'
}

async function call(
  tokens: TokenManager,
  connectionId: string,
  startedAt: number,
  t0: number,
): Promise<CallOutcome> {
  try {
    const token = await tokens.getAccessToken(connectionId)
    const timing = { startedAt, finishedAt: Date.now(), durationMs: performance.now() - t0 }
    return { connectionId, ...timing, ok: true, accessToken: token.accessToken, expiresAt: token.expiresAt }
  } catch (error) {
    const timing = { startedAt, finishedAt: Date.now(), durationMs: performance.now() - t0 }
    return { connectionId, ...timing, ok: false, code: isSpConnectError(error) ? error.code : String(error) }
  }
}

async function main(): Promise<void> {
  // Orphaned (the test runner died): do not linger holding the database file open.
  process.on('disconnect', () => process.exit(1))
  const { values } = parseArgs({ options: { 'lease-ms': { type: 'string' } } })
  const leaseMs = values['lease-ms'] === undefined ? undefined : Number(values['lease-ms'])

  const runtime = await openRuntime(loadConfigFromEnv(process.env), defaultDeps())
  const owner = leaseMs === undefined ? null : `worker_${process.pid}`
  const tokens =
    leaseMs === undefined || owner === null
      ? runtime.tokens
      : new TokenManager(
          {
            store: runtime.store,
            keyring: runtime.keyring,
            lwa: runtime.lwa,
            events: runtime.events,
            refreshMarginMs: runtime.config.tokenRefreshMarginMs,
            leaseMs,
            owner,
          },
          runtime.deps,
        )

  const go = new Promise<GoMessage>((resolve) => {
    process.on('message', (message: unknown) => {
      if (isGo(message)) resolve(message)
    })
  })
  await send({ type: 'ready', pid: process.pid, owner })
  const { connectionIds, callers } = await go

  const calls = await Promise.all(
    Array.from({ length: callers }, (_, i) => {
      const connectionId = connectionIds[i % connectionIds.length] ?? ''
      return call(tokens, connectionId, Date.now(), performance.now())
    }),
  )
  await send({ type: 'result', pid: process.pid, calls })
  await runtime.close()
  process.exit(0)
}

main().catch(async (error: unknown) => {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  process.stderr.write(`token-worker: ${message}\n`)
  await send({ type: 'fatal', message }).catch(() => {})
  process.exit(1)
})
