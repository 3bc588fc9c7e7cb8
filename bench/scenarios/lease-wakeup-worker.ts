/**
 * One sp-connect process of the lease wake-up benchmark (lease-wakeup.ts forks four): a runtime built the way
 * `openRuntime` builds it, on the shared PostgreSQL database, except that the store is opened here so LISTEN/NOTIFY
 * can be switched off (`notify: false`: the store neither listens nor notifies, and waiters poll), and every store
 * call is counted. One process plays the lease holder (`hold`), the others the waiters (`wait`). Exits when its
 * parent goes away.
 */
import { loadConfigFromEnv } from '../../src/config.ts'
import { defaultDeps } from '../../src/core/deps.ts'
import { buildRuntime, type Runtime } from '../../src/runtime.ts'
import { openPostgresStore } from '../../src/store/index.ts'
import type { Store } from '../../src/store/store.ts'
import { epochMs, round } from '../lib/stats.ts'

export type LeaseWakeupRequest =
  | { readonly op: 'init'; readonly env: Record<string, string>; readonly notify: boolean }
  | { readonly op: 'hold'; readonly connectionId: string }
  | { readonly op: 'wait'; readonly connectionId: string; readonly callers: number }
  | { readonly op: 'close' }

export type LeaseWakeupReply =
  | { readonly type: 'ready' }
  /** The holder took the lease (sent at once, before it asks the token endpoint). */
  | { readonly type: 'leased'; readonly at: number }
  | {
      readonly type: 'held'
      /** When the holder's `updateTokens` was called, and when it returned (the write committed before). */
      readonly writeStartAt: number
      readonly writeAt: number
      readonly storeCalls: Readonly<Record<string, number>>
      readonly failure: string | null
    }
  | {
      readonly type: 'waited'
      /** When the callers started, and when the process first began waiting for the row to change. */
      readonly startedAt: number
      readonly firstWaitAt: number | null
      /** Each caller's answer time (epoch ms, µs resolution), in completion order. */
      readonly answersAt: readonly number[]
      readonly failures: Readonly<Record<string, number>>
      readonly storeCalls: Readonly<Record<string, number>>
      /** `waitForConnectionChange` calls, and how many of them ended before their timeout (woken). */
      readonly waits: number
      readonly woken: number
    }
  | { readonly type: 'error'; readonly message: string }

let runtime: Runtime | undefined
/** Store calls by method since the last reset. */
let calls: Record<string, number> = {}
/** Waits and wake-ups since the last reset. */
let waits = { count: 0, woken: 0, firstAt: null as number | null }
/** Set while this process is the holder: told when the lease is taken and when the tokens are written. */
let holderHooks: { onLeased(at: number): void; onWrite(startAt: number, endAt: number): void } | undefined

function send(reply: LeaseWakeupReply): void {
  process.send?.(reply)
}

/** The store with every call counted, and the holder's lease and write timed. */
function instrumented(store: Store): Store {
  return new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver)
      if (typeof value !== 'function') return value
      // The store keeps its state in private fields, so every method runs on the store itself.
      if (key === 'close' || key === 'migrate') return value.bind(target)
      const name = String(key)
      if (name === 'waitForConnectionChange') {
        return async (id: string, timeoutMs: number, signal?: AbortSignal) => {
          calls[name] = (calls[name] ?? 0) + 1
          const start = epochMs()
          waits.count++
          waits.firstAt ??= start
          await target.waitForConnectionChange(id, timeoutMs, signal)
          // Ended more than a millisecond before its timeout: something woke it.
          if (epochMs() - start < timeoutMs - 1) waits.woken++
        }
      }
      return async (...args: unknown[]) => {
        calls[name] = (calls[name] ?? 0) + 1
        const startAt = epochMs()
        const result: unknown = await value.apply(target, args)
        const endAt = epochMs()
        if (name === 'acquireLease' && result !== undefined) holderHooks?.onLeased(endAt)
        if (name === 'updateTokens' && result !== undefined) holderHooks?.onWrite(startAt, endAt)
        return result
      }
    },
  })
}

async function init(env: Record<string, string>, notify: boolean): Promise<void> {
  await shutdown()
  const config = loadConfigFromEnv(env)
  if (config.database.kind !== 'postgres') throw new Error('lease-wakeup needs a postgres:// DATABASE_URL')
  const deps = defaultDeps()
  const store = await openPostgresStore({ url: config.database.url, notify, logger: deps.logger })
  runtime = buildRuntime(config, deps, instrumented(store))
}

function reset(): void {
  calls = {}
  waits = { count: 0, woken: 0, firstAt: null }
}

function errorCode(error: unknown): string {
  return error instanceof Error && 'code' in error ? String(error.code) : 'unknown'
}

async function hold(rt: Runtime, connectionId: string): Promise<void> {
  reset()
  let write = { startAt: Number.NaN, endAt: Number.NaN }
  holderHooks = {
    onLeased: (at) => send({ type: 'leased', at }),
    onWrite: (startAt, endAt) => {
      write = { startAt, endAt }
    },
  }
  let failure: string | null = null
  try {
    await rt.tokens.getAccessToken(connectionId)
  } catch (error) {
    failure = errorCode(error)
  } finally {
    holderHooks = undefined
  }
  send({
    type: 'held',
    writeStartAt: round(write.startAt, 3),
    writeAt: round(write.endAt, 3),
    storeCalls: calls,
    failure,
  })
}

async function wait(rt: Runtime, connectionId: string, callers: number): Promise<void> {
  reset()
  const startedAt = epochMs()
  const answersAt: number[] = []
  const failures: Record<string, number> = {}
  await Promise.all(
    Array.from({ length: callers }, () =>
      rt.tokens.getAccessToken(connectionId).then(
        () => {
          answersAt.push(round(epochMs(), 3))
        },
        (error: unknown) => {
          answersAt.push(round(epochMs(), 3))
          const code = errorCode(error)
          failures[code] = (failures[code] ?? 0) + 1
        },
      ),
    ),
  )
  send({
    type: 'waited',
    startedAt: round(startedAt, 3),
    firstWaitAt: waits.firstAt === null ? null : round(waits.firstAt, 3),
    answersAt,
    failures,
    storeCalls: calls,
    waits: waits.count,
    woken: waits.woken,
  })
}

/** Closes the runtime once, however often asked. */
async function shutdown(): Promise<void> {
  const rt = runtime
  runtime = undefined
  await rt?.close()
}

process.on('disconnect', () => {
  void shutdown().finally(() => process.exit(0))
})

process.on('message', (message: LeaseWakeupRequest) => {
  const fail = (error: unknown) =>
    send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) })
  if (message.op === 'init') {
    init(message.env, message.notify).then(() => send({ type: 'ready' }), fail)
  } else if (message.op === 'hold' || message.op === 'wait') {
    const rt = runtime
    if (!rt) return fail(new Error(`${message.op} before init`))
    const work =
      message.op === 'hold' ? hold(rt, message.connectionId) : wait(rt, message.connectionId, message.callers)
    work.catch(fail)
  } else {
    void shutdown().finally(() => process.disconnect())
  }
})
