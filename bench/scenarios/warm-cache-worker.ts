/**
 * The warm-cache memory measurement of many-connections.ts, in a fresh process (forked with --expose-gc) so
 * the baseline holds nothing left over from the refresher runs: open a runtime on the refreshed database, read
 * the heap after forced GC, hand out every connection's token once, read it again.
 */
import { openBenchRuntime } from '../lib/harness.ts'
import { round, settledHeapUsed } from '../lib/stats.ts'

export interface WarmCacheRequest {
  readonly env: Record<string, string>
  readonly ids: readonly string[]
}

export interface WarmCacheReply {
  readonly heapBeforeBytes: number
  readonly heapAfterBytes: number
  readonly rssBeforeMiB: number
  readonly rssAfterMiB: number
  readonly fillSeconds: number
}

// Without a parent there is nobody to report to.
process.on('disconnect', () => process.exit(1))

process.once('message', (request: WarmCacheRequest) => {
  measure(request).then(
    (reply) => process.send?.(reply, () => process.exit(0)),
    (error: unknown) => {
      console.error(error)
      process.exit(1)
    },
  )
})

async function measure({ env, ids }: WarmCacheRequest): Promise<WarmCacheReply> {
  const runtime = await openBenchRuntime(env, false)
  try {
    const first = ids[0]
    if (first === undefined) throw new Error('no connections')
    // Statements prepared and code paths compiled before the baseline (the connection is served again below).
    await runtime.store.getConnection(first)
    const heapBeforeBytes = await settledHeapUsed()
    const rssBeforeMiB = round(process.memoryUsage().rss / 2 ** 20, 1)
    const start = performance.now()
    for (const id of ids) await runtime.tokens.getAccessToken(id)
    const fillSeconds = round((performance.now() - start) / 1000, 2)
    // Usage writes are fire-and-forget; a query queued behind them on the one connection returns after them.
    await runtime.store.getConnection(first)
    const heapAfterBytes = await settledHeapUsed()
    return {
      heapBeforeBytes,
      heapAfterBytes,
      rssBeforeMiB,
      rssAfterMiB: round(process.memoryUsage().rss / 2 ** 20, 1),
      fillSeconds,
    }
  } finally {
    await runtime.close()
  }
}
