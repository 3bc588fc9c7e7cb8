/**
 * One sp-connect instance of the limiter-fidelity benchmark (limiter-fidelity.ts forks three): its own runtime
 * (pool, keyring, token manager) on the shared PostgreSQL database, and an SpApiClient built as the runtime
 * builds it, over the same database-backed limiter, except that the limiter is told the seller's actual plan
 * for the operation (see PinnedPlanLimiter). On `go` it waits for the agreed instant, starts all its calls at
 * once through `SpApiClient.call`, and reports what each caller got. Exits when its parent goes away.
 */

import { SpApiClient } from '../../src/core/spapi/client.ts'
import type { CallLimiter } from '../../src/core/spapi/limiter.ts'
import { createStoreLimiter } from '../../src/core/spapi/limiter.ts'
import type { RatePlan } from '../../src/core/spapi/operations.ts'
import { SpConnectError } from '../../src/domain/errors.ts'
import type { Runtime } from '../../src/runtime.ts'
import { openBenchRuntime } from '../lib/harness.ts'
import { epochMs } from '../lib/stats.ts'

export type FidelityWorkerRequest =
  | {
      readonly op: 'init'
      readonly env: Record<string, string>
      /** The plan the seller has for the operation (the simulator enforces the same). */
      readonly plan: RatePlan
    }
  | {
      readonly op: 'go'
      readonly connectionId: string
      readonly path: string
      /** Epoch ms at which every instance starts its calls. */
      readonly startAt: number
      readonly calls: number
      /** Each call's deadline, from the start (queueing and retries included). */
      readonly timeoutMs: number
    }
  | { readonly op: 'close' }

export type FidelityWorkerReply =
  | { readonly type: 'ready' }
  | {
      readonly type: 'done'
      /** Per call: the HTTP status SP-API answered, or the SpConnectError code the call threw. */
      readonly outcomes: readonly string[]
      /** Per call: epoch ms when its answer (or error) came back. */
      readonly answeredAt: readonly number[]
    }
  | { readonly type: 'error'; readonly message: string }

/**
 * The database limiter, with the plan the seller actually has instead of the operation's published default.
 * sp-connect has no setting for a seller's plan: it starts from Amazon's published table and learns only the
 * rate from `x-amzn-RateLimit-Limit`, never the burst. This stands in for such a setting; everything else
 * (the shared reservation, the 429 hold-off, the learned rate) is the shipped code.
 */
class PinnedPlanLimiter implements CallLimiter {
  readonly #inner: CallLimiter
  readonly #plan: RatePlan

  constructor(inner: CallLimiter, plan: RatePlan) {
    this.#inner = inner
    this.#plan = plan
  }

  acquire(key: string, _plan: RatePlan, options: Parameters<CallLimiter['acquire']>[2]): Promise<void> {
    return this.#inner.acquire(key, this.#plan, options)
  }

  throttled(key: string, _plan: RatePlan, retryAfterMs?: number): Promise<void> {
    return this.#inner.throttled(key, this.#plan, retryAfterMs)
  }

  observedRate(key: string, _plan: RatePlan, rate: number): Promise<void> {
    return this.#inner.observedRate(key, this.#plan, rate)
  }
}

let runtime: Runtime | undefined
let client: SpApiClient | undefined

function send(reply: FidelityWorkerReply): void {
  process.send?.(reply)
}

async function oneCall(
  spapi: SpApiClient,
  message: Extract<FidelityWorkerRequest, { op: 'go' }>,
): Promise<string> {
  try {
    const response = await spapi.call(message.connectionId, {
      method: 'GET',
      path: message.path,
      timeoutMs: message.timeoutMs,
    })
    await response.text()
    return String(response.status)
  } catch (error) {
    return error instanceof SpConnectError ? error.code : `thrown: ${(error as Error).name}`
  }
}

async function go(spapi: SpApiClient, message: Extract<FidelityWorkerRequest, { op: 'go' }>): Promise<void> {
  const wait = message.startAt - epochMs()
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
  const answeredAt: number[] = new Array(message.calls)
  const outcomes = await Promise.all(
    Array.from({ length: message.calls }, async (_, i) => {
      const outcome = await oneCall(spapi, message)
      answeredAt[i] = epochMs()
      return outcome
    }),
  )
  send({ type: 'done', outcomes, answeredAt })
}

process.on('disconnect', () => {
  void (runtime?.close() ?? Promise.resolve()).finally(() => process.exit(0))
})

process.on('message', (message: FidelityWorkerRequest) => {
  void (async () => {
    try {
      if (message.op === 'init') {
        // The parent migrated the database already.
        runtime = await openBenchRuntime(message.env, false)
        const { config, store, tokens, deps } = runtime
        const limiter = createStoreLimiter(store.rateBuckets, deps, {
          ...(config.spapiMaxWaiting === undefined ? {} : { maxWaiting: config.spapiMaxWaiting }),
        })
        client = new SpApiClient(
          { store, tokens, endpoints: config.amazon, limiter: new PinnedPlanLimiter(limiter, message.plan) },
          deps,
        )
        send({ type: 'ready' })
      } else if (message.op === 'go') {
        if (!client) throw new Error('go before init')
        await go(client, message)
      } else {
        await runtime?.close()
        runtime = undefined
        process.disconnect()
      }
    } catch (error) {
      send({
        type: 'error',
        message: error instanceof Error ? (error.stack ?? error.message) : String(error),
      })
    }
  })()
})
