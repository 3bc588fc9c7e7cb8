/**
 * What the library counts, as an interface: core code records events here and never touches prom-client, so
 * tests and tools can run without metrics and the server decides how they are exported (src/server/metrics.ts).
 * No method takes an id, a token or a tenant name: labels stay low-cardinality and free of secrets.
 */

export type LwaGrant = 'refresh_token' | 'authorization_code' | 'client_credentials'

export interface Metrics {
  /** A caller asked for an access token: served from cache, refreshed by this call, waited on another's refresh, or failed. */
  tokenRequest(outcome: 'cached' | 'refreshed' | 'waited' | 'error'): void
  /** A refresh-token grant finished, by what triggered it and how it ended. */
  refresh(trigger: 'caller' | 'background' | 'forced', outcome: 'ok' | 'invalid_grant' | 'error'): void
  /** One call to the LWA token endpoint: its grant, HTTP status (or 'network' | 'timeout') and duration. */
  lwaCall(grant: LwaGrant, status: string /* HTTP status or 'network' | 'timeout' */, seconds: number): void
  /** A token-endpoint call that is a retry of an earlier attempt. */
  lwaRetry(grant: LwaGrant): void
  /** The LWA circuit breaker's state, whenever it changes. */
  breakerState(state: 'closed' | 'open' | 'half_open'): void
  /** Retries the retry budget allows right now. */
  retryBudget(available: number): void
  /** Time a caller waited for another holder's refresh lease. */
  leaseWait(seconds: number): void
  /** A stored ciphertext could not be opened: it failed authentication, or its key is not in the keyring. */
  decryptionFailure(reason: 'tampered' | 'key_unavailable'): void
  /** A request answered 429 by our own rate limits, by limit scope (never the address or key). */
  rateLimited(scope: string): void
}

/**
 * Webhook delivery attempts by outcome. Kept apart from {@link Metrics} (whose shape other code implements):
 * an implementation may offer it too, and the delivery worker records through it when present.
 */
export interface WebhookMetrics {
  webhookDelivery(outcome: 'delivered' | 'retried' | 'failed'): void
}

/** `metrics` as {@link WebhookMetrics}, if it records webhook deliveries. */
export function webhookMetricsOf(metrics: Metrics | undefined): WebhookMetrics | undefined {
  return metrics !== undefined &&
    'webhookDelivery' in metrics &&
    typeof metrics.webhookDelivery === 'function'
    ? (metrics as Metrics & WebhookMetrics)
    : undefined
}

/** Metrics that go nowhere: the default when none are configured. */
export const NO_METRICS: Metrics = Object.freeze({
  tokenRequest() {},
  refresh() {},
  lwaCall() {},
  lwaRetry() {},
  breakerState() {},
  retryBudget() {},
  leaseWait() {},
  decryptionFailure() {},
  rateLimited() {},
})
