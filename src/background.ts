/**
 * The background work of a running service: the token refresher (warm tokens, daily health checks,
 * re-authorization reminders), the webhook outbox worker, and the sweeper that deletes rows whose time is over.
 * `serve` and `dev` start it; tests and the CLI, which work on the same database, do not.
 */
import { WebhookDeliveryWorker } from './core/events/delivery-worker.ts'
import { type Sweep, Sweeper } from './core/maintenance/sweeper.ts'
import { BackgroundRefresher } from './core/tokens/refresher.ts'
import type { Runtime } from './runtime.ts'
import type { Store } from './store/store.ts'

/** Average pause between sweeps (jittered by the sweeper). */
const SWEEP_INTERVAL_MS = 5 * 60 * 1000

/**
 * How long used or expired authorization states are kept after their time is over, so a seller who comes back
 * to an old tab within the hour is told "already used" or "expired" rather than "not valid".
 */
export const AUTH_STATE_GRACE_MS = 60 * 60 * 1000

/**
 * Everything the sweeper deletes. Each sweep deletes rows no request can use any more; add new kinds of
 * short-lived rows here.
 */
export function builtInSweeps(store: Store): Sweep[] {
  return [
    {
      name: 'auth_states.expired',
      run: (now) => store.deleteExpiredAuthStates(now - AUTH_STATE_GRACE_MS),
    },
    {
      name: 'auth_states.consumed',
      run: (now) => store.deleteConsumedAuthStates(now - AUTH_STATE_GRACE_MS),
    },
    { name: 'connect_sessions.expired', run: (now) => store.deleteExpiredConnectSessions(now) },
    { name: 'login_requests.expired', run: (now) => store.loginRequests.deleteExpired(now) },
    { name: 'operator_sessions.expired', run: (now) => store.operators.deleteExpiredSessions(now) },
    // Usage-plan buckets full for a day: forgetting one loses only a reported rate, which comes back.
    { name: 'rate_buckets.idle', run: (now) => store.rateBuckets.sweepIdle(now - 24 * 60 * 60 * 1000) },
  ]
}

export interface Background {
  readonly refresher: BackgroundRefresher | undefined
  readonly webhooks: WebhookDeliveryWorker | undefined
  readonly sweeper: Sweeper
  stop(): Promise<void>
}

export function startBackground(runtime: Runtime): Background {
  const { config, store, tokens, events, deps } = runtime
  const refresher = config.refresher.enabled
    ? new BackgroundRefresher(
        {
          store,
          tokens,
          events,
          concurrency: config.refresher.concurrency,
          ratePerSecond: config.refresher.ratePerSecond,
        },
        deps,
      )
    : undefined
  const secret = config.webhooks.secret
  const webhooks =
    config.webhooks.urls.length > 0 && secret !== null
      ? new WebhookDeliveryWorker({ store, secret, batchSize: 8 }, deps)
      : undefined
  const sweeper = new Sweeper({ sweeps: builtInSweeps(store), intervalMs: SWEEP_INTERVAL_MS }, deps)
  refresher?.start()
  webhooks?.start()
  sweeper.start()
  return {
    refresher,
    webhooks,
    sweeper,
    async stop() {
      await Promise.all([refresher?.stop(), webhooks?.stop(), sweeper.stop()])
    },
  }
}
