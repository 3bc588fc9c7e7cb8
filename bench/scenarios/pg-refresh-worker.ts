/**
 * One sp-connect instance of the PostgreSQL refresher benchmark (pg-refresh.ts forks one or three): its own
 * runtime (pool, keyring, LWA client, TokenManager) on the shared database and its own BackgroundRefresher,
 * built as `serve` builds it (background.ts), anew for each run with the rate and concurrency given. On `go` it
 * waits for the agreed instant, runs refresher rounds back to back for the run's duration, then stops the
 * refresher the way `stop()` does (the round's signal is aborted: refreshes in flight finish, claimed connections
 * not yet started are released). Exits when its parent goes away.
 */
import { BackgroundRefresher } from '../../src/core/tokens/refresher.ts'
import type { Runtime } from '../../src/runtime.ts'
import type { Store } from '../../src/store/store.ts'
import { openBenchRuntime } from '../lib/harness.ts'
import { epochMs, round } from '../lib/stats.ts'

export type RefreshWorkerRequest =
  | { readonly op: 'init'; readonly env: Record<string, string> }
  | {
      readonly op: 'go'
      /** Epoch ms at which every instance of the run starts. */
      readonly startAt: number
      /** The refresher's settings for this run (SP_CONNECT_REFRESH_RATE_PER_SECOND, _CONCURRENCY). */
      readonly ratePerSecond: number
      readonly concurrency: number
      /** The refresher is stopped (its round aborted, as `stop()` does) this long after the start. */
      readonly durationMs: number
    }
  | { readonly op: 'close' }

export type RefreshWorkerReply =
  | { readonly type: 'ready' }
  | {
      readonly type: 'done'
      readonly rounds: number
      readonly refreshed: number
      readonly failed: number
      readonly throttled: boolean
      /** Epoch ms when the last round returned (after the stop: in-flight refreshes finish first). */
      readonly endedAt: number
      /** True when a round found nothing due before the stop. */
      readonly ranOut: boolean
      /** CPU-seconds this process used during the run. */
      readonly cpuSeconds: number
      /** The refresher's claim queries (`claimRefreshCandidates`) during the run: how many, how long each took. */
      readonly claims: number
      readonly claimMsMean: number
      readonly claimMsMax: number
    }
  | { readonly type: 'error'; readonly message: string }

let runtime: Runtime | undefined

function send(reply: RefreshWorkerReply): void {
  process.send?.(reply)
}

/** The store, with the time of each `claimRefreshCandidates` call recorded (the refresher waits on them). */
function timedClaims(store: Store): { store: Store; times: number[] } {
  const times: number[] = []
  const proxy = new Proxy(store, {
    get(target, key) {
      if (key === 'claimRefreshCandidates') {
        return async (...args: Parameters<Store['claimRefreshCandidates']>) => {
          const start = performance.now()
          try {
            return await target.claimRefreshCandidates(...args)
          } finally {
            times.push(performance.now() - start)
          }
        }
      }
      const value: unknown = Reflect.get(target, key)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return { store: proxy, times }
}

async function go(rt: Runtime, message: Extract<RefreshWorkerRequest, { op: 'go' }>): Promise<void> {
  // A new refresher per run, as a restarted instance would have, with this run's rate and concurrency.
  const claims = timedClaims(rt.store)
  const refresher = new BackgroundRefresher(
    {
      store: claims.store,
      tokens: rt.tokens,
      events: rt.events,
      concurrency: message.concurrency,
      ratePerSecond: message.ratePerSecond,
    },
    rt.deps,
  )
  const wait = message.startAt - epochMs()
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
  const cpuBefore = process.cpuUsage()
  const stop = new AbortController()
  const timer = setTimeout(() => stop.abort(), message.startAt + message.durationMs - epochMs())
  const totals = { rounds: 0, refreshed: 0, failed: 0, throttled: false }
  let ranOut = false
  try {
    while (!stop.signal.aborted) {
      const r = await refresher.runOnce(stop.signal)
      const handled = r.refreshed + r.failed + r.needsReauthorization
      totals.rounds++
      totals.refreshed += r.refreshed
      totals.failed += r.failed + r.needsReauthorization
      totals.throttled ||= r.throttled
      if (handled === 0 && !stop.signal.aborted) {
        ranOut = true
        break
      }
    }
  } finally {
    clearTimeout(timer)
  }
  const endedAt = epochMs()
  const cpu = process.cpuUsage(cpuBefore)
  send({
    type: 'done',
    ...totals,
    endedAt: round(endedAt, 3),
    ranOut,
    cpuSeconds: round((cpu.user + cpu.system) / 1e6, 2),
    claims: claims.times.length,
    claimMsMean: round(claims.times.reduce((a, b) => a + b, 0) / Math.max(1, claims.times.length), 1),
    claimMsMax: round(Math.max(0, ...claims.times), 1),
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

process.on('message', (message: RefreshWorkerRequest) => {
  const fail = (error: unknown) =>
    send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) })
  if (message.op === 'init') {
    openBenchRuntime(message.env, false).then((rt) => {
      runtime = rt
      send({ type: 'ready' })
    }, fail)
  } else if (message.op === 'go') {
    if (!runtime) return fail(new Error('go before init'))
    go(runtime, message).catch(fail)
  } else {
    void shutdown().finally(() => process.disconnect())
  }
})
