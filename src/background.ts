/**
 * The background work of a running service: the token refresher (warm tokens, daily health checks,
 * re-authorization reminders) and the webhook outbox worker. `serve` and `dev` start it; tests and the CLI,
 * which work on the same database, do not.
 */
import { WebhookDeliveryWorker } from './core/events/delivery-worker.ts'
import { BackgroundRefresher } from './core/tokens/refresher.ts'
import type { Runtime } from './runtime.ts'

export interface Background {
  readonly refresher: BackgroundRefresher | undefined
  readonly webhooks: WebhookDeliveryWorker | undefined
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
  refresher?.start()
  webhooks?.start()
  return {
    refresher,
    webhooks,
    async stop() {
      await Promise.all([refresher?.stop(), webhooks?.stop()])
    },
  }
}
