/**
 * Wires one running sp-connect from its configuration: store, keyring, LWA client, authorization flows, token
 * manager and SP-API client. The server, the CLI and tests all start from here, so there is one way to build it.
 */
import type { AppConfig } from './config.ts'
import { AuthorizationFlows } from './core/authorization/flows.ts'
import { Keyring } from './core/crypto/keyring.ts'
import type { Deps } from './core/deps.ts'
import { LwaClient } from './core/lwa/client.ts'
import { SpApiClient } from './core/spapi/client.ts'
import { TokenManager } from './core/tokens/manager.ts'
import { openStore } from './store/open.ts'
import type { Store } from './store/store.ts'

export interface Runtime {
  readonly config: AppConfig
  readonly deps: Deps
  readonly store: Store
  readonly keyring: Keyring
  readonly lwa: LwaClient
  readonly flows: AuthorizationFlows
  readonly tokens: TokenManager
  readonly spapi: SpApiClient
  close(): Promise<void>
}

export async function openRuntime(
  config: AppConfig,
  deps: Deps,
  options: { migrate?: boolean } = {},
): Promise<Runtime> {
  const store = await openStore(config.database)
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

export function buildRuntime(config: AppConfig, deps: Deps, store: Store): Runtime {
  const keyring = new Keyring(config.keyring)
  const credentials = Object.freeze({ clientId: config.lwaClientId, clientSecret: config.lwaClientSecret })
  const lwa = new LwaClient({ tokenUrl: config.amazon.lwaTokenUrl, credentials: () => credentials }, deps)
  const flows = new AuthorizationFlows(
    {
      appId: config.appId,
      redirectUri: config.redirectUri,
      draftApp: config.draftApp,
      centralUrlTemplate: config.amazon.centralUrlTemplate,
      stateTtlMs: config.stateTtlMs,
    },
    store,
    keyring,
    lwa,
    deps,
  )
  const tokens = new TokenManager({ store, keyring, lwa, refreshMarginMs: config.tokenRefreshMarginMs }, deps)
  const spapi = new SpApiClient({ store, tokens, endpoints: config.amazon }, deps)
  return { config, deps, store, keyring, lwa, flows, tokens, spapi, close: () => store.close() }
}
