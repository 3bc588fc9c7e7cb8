/**
 * Wires one running sp-connect from its configuration: store, keyring, LWA client, authorization flows, token
 * manager and SP-API client. The server, the CLI and tests all start from here, so there is one way to build it.
 */
import type { AppConfig } from './config.ts'
import { SellersApiAccountIdentity } from './core/authorization/account-fingerprint.ts'
import { AuthorizationFlows } from './core/authorization/flows.ts'
import { LoginRequests } from './core/authorization/login-requests.ts'
import { IntegrityAlerts } from './core/crypto/integrity-alerts.ts'
import { Keyring } from './core/crypto/keyring.ts'
import { type Deps, platformFetch } from './core/deps.ts'
import { EventRecorder } from './core/events/events.ts'
import { LwaClient } from './core/lwa/client.ts'
import { NO_METRICS } from './core/metrics.ts'
import { requestContextLogger } from './core/request-context.ts'
import { ClientSecrets } from './core/secrets/client-secrets.ts'
import { SpApiClient } from './core/spapi/client.ts'
import { createStoreLimiter } from './core/spapi/limiter.ts'
import { nodeHttpTransport } from './core/spapi/transport.ts'
import { GrantlessTokens } from './core/tokens/grantless.ts'
import { TokenManager } from './core/tokens/manager.ts'
import { countDecryptionFailures } from './core/tokens/sealed.ts'
import { openStore } from './store/open.ts'
import type { Store } from './store/store.ts'

export interface Runtime {
  readonly config: AppConfig
  readonly deps: Deps
  readonly store: Store
  readonly keyring: Keyring
  readonly events: EventRecorder
  /** Alert events for stored ciphertexts the keyring cannot open (tampered, or under a missing key). */
  readonly integrityAlerts: IntegrityAlerts
  readonly lwa: LwaClient
  /** The LWA client secrets (configured + received by rotation): the LWA client's credential source. */
  readonly secrets: ClientSecrets
  readonly flows: AuthorizationFlows
  /** The Login-URI handoff to the app's sign-in (Appstore workflow, re-authorization). */
  readonly loginRequests: LoginRequests
  readonly tokens: TokenManager
  readonly grantless: GrantlessTokens
  readonly spapi: SpApiClient
  close(): Promise<void>
}

export async function openRuntime(
  config: AppConfig,
  givenDeps: Deps,
  options: { migrate?: boolean } = {},
): Promise<Runtime> {
  const deps = withRequestIds(givenDeps)
  const store = await openStore(config.database, { logger: deps.logger })
  try {
    if (options.migrate !== false) {
      const failed = (await store.migrate()).filter((outcome) => outcome.status === 'failed')
      if (failed.length > 0)
        throw new Error(`Database migration failed: ${failed.map((f) => f.name).join(', ')}`)
    }
    return buildRuntime(config, deps, store)
  } catch (error) {
    await store.close()
    throw error
  }
}

/** Every log line written while serving a request carries its id (src/core/request-context.ts). */
function withRequestIds(deps: Deps): Deps {
  const logger = requestContextLogger(deps.logger)
  return logger === deps.logger ? deps : Object.freeze({ ...deps, logger })
}

export function buildRuntime(config: AppConfig, givenDeps: Deps, store: Store): Runtime {
  const deps = withRequestIds(givenDeps)
  const keyring = new Keyring(config.keyring)
  countDecryptionFailures(keyring, deps.metrics ?? NO_METRICS)
  const events = new EventRecorder({ store, webhookUrls: config.webhooks.urls }, deps)
  const integrityAlerts = new IntegrityAlerts({ events }, deps)
  integrityAlerts.watch(keyring)
  const secrets = new ClientSecrets(
    { store, keyring, events, clientId: config.lwaClientId, configuredSecret: config.lwaClientSecret },
    deps,
  )
  const lwa = new LwaClient({ tokenUrl: config.amazon.lwaTokenUrl, credentials: secrets }, deps)
  const tokens = new TokenManager(
    {
      store,
      keyring,
      lwa,
      events,
      refreshMarginMs: config.tokenRefreshMarginMs,
      leaseMs: config.tokenLeaseMs,
      deadlineMs: config.tokenDeadlineMs,
    },
    deps,
  )
  const grantless = new GrantlessTokens(
    { lwa, marginMs: config.tokenRefreshMarginMs, deadlineMs: config.tokenDeadlineMs },
    deps,
  )
  // The limiter's buckets live in the database, so every instance on it shares Amazon's per-seller plans.
  const limiter = createStoreLimiter(store.rateBuckets, deps, {
    ...(config.spapiMaxWaiting === undefined ? {} : { maxWaiting: config.spapiMaxWaiting }),
  })
  // node:http with keep-alive costs ~190 us less CPU per SP-API call than fetch (decision 0016), but it does
  // not honour NODE_USE_ENV_PROXY, and an injected fetch (tests, proxies) must keep carrying the calls.
  const spapiTransport =
    deps.fetch === platformFetch && process.env['NODE_USE_ENV_PROXY'] !== '1'
      ? nodeHttpTransport()
      : undefined
  const spapi = new SpApiClient(
    {
      store,
      tokens,
      endpoints: config.amazon,
      limiter,
      ...(spapiTransport === undefined ? {} : { transport: spapiTransport }),
      ...(config.spapiDeadlineMs === undefined ? {} : { deadlineMs: config.spapiDeadlineMs }),
    },
    deps,
  )
  const flows = new AuthorizationFlows(
    {
      settings: {
        appId: config.appId,
        redirectUri: config.redirectUri,
        draftApp: config.draftApp,
        centralUrlTemplate: config.amazon.centralUrlTemplate,
        stateTtlMs: config.stateTtlMs,
      },
      store,
      keyring,
      lwa,
      events,
      identity: new SellersApiAccountIdentity({ spapi }),
    },
    deps,
  )
  const loginRequests = new LoginRequests(
    {
      settings: {
        signInUrl: config.appSignInUrl,
        // Confirmation links are under the base path, like every other URL of the service.
        publicUrl: `${config.publicUrl}${config.basePath ?? ''}`,
        centralUrlTemplate: config.amazon.centralUrlTemplate,
      },
      store,
      flows,
      events,
    },
    deps,
  )
  return {
    config,
    deps,
    store,
    keyring,
    events,
    integrityAlerts,
    lwa,
    secrets,
    flows,
    loginRequests,
    tokens,
    grantless,
    spapi,
    close: async () => {
      // Alerts still being written go in before the store closes under them.
      await integrityAlerts.settled()
      spapiTransport?.close()
      await store.close()
    },
  }
}
