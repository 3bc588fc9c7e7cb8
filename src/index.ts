/**
 * `sp-connect`: the service as a library. One call opens the store (migrating it), wires the token manager and
 * authorization flows, and hands back a small face for the app's own code: tokens, connections, connect links,
 * Login-URI requests, the HTTP service as a Web `fetch` handler, and the background work to start and stop.
 *
 * ```ts
 * import { createSpConnect, fromEnv } from 'sp-connect'
 *
 * const sp = await createSpConnect(fromEnv(process.env))
 * sp.start()
 * const { accessToken } = await sp.tokens.getAccessToken(connectionId)
 * await sp.close()
 * ```
 */
import { type Background, startBackground } from './background.ts'
import { type AppConfig, loadConfigFromEnv } from './config.ts'
import { createConnectSession } from './core/authorization/connect-sessions.ts'
import type { LoginRequests } from './core/authorization/login-requests.ts'
import { validateReturnTo } from './core/authorization/return-to.ts'
import { defaultDeps, type Logger } from './core/deps.ts'
import { isTenantId, requireId } from './core/ids.ts'
import type { SpApiCallRequest, SpApiCallResponse } from './core/spapi/client.ts'
import type { RestrictedDataToken, RestrictedResource } from './core/spapi/restricted-data-tokens.ts'
import type { AccessToken } from './core/tokens/manager.ts'
import { SpConnectError } from './domain/errors.ts'
import { type AccountType, findMarketplace, type Region } from './domain/regions.ts'
import { createLogger } from './logger.ts'
import { openRuntime } from './runtime.ts'
import { createServerApp } from './server/app.ts'
import { returnToPolicy, serviceUrl } from './server/public-url.ts'
import type { ConnectionFilter, ConnectionRecord } from './store/store.ts'

export type { AppConfig, DatabaseConfig } from './config.ts'
export { ConfigError } from './config.ts'
export type { LoginRequestView } from './core/authorization/login-requests.ts'
export type { Logger } from './core/deps.ts'
export type { SpApiCallRequest, SpApiCallResponse } from './core/spapi/client.ts'
export type { RestrictedDataToken, RestrictedResource } from './core/spapi/restricted-data-tokens.ts'
export type { AccessToken } from './core/tokens/manager.ts'
export { isSpConnectError, SpConnectError } from './domain/errors.ts'
export type { AccountType, Region } from './domain/regions.ts'
export type { ConnectionFilter, ConnectionRecord, ConnectionStatus } from './store/store.ts'

/** How {@link createSpConnect} runs, beyond the configuration. */
export interface SpConnectOptions {
  /** Where sp-connect logs (pino-compatible shape); default: JSON lines on stdout at `config.logLevel`. */
  readonly logger?: Logger
  /** Apply pending database migrations on open (default true). */
  readonly migrate?: boolean
}

/** A link for one of the app's users to connect a seller or vendor account to their tenant. */
export interface NewConnectSessionInput {
  /** The app's own user or organisation id that will own the connection. */
  readonly tenantId: string
  readonly region: Region
  /** Default `seller`. */
  readonly accountType?: AccountType
  /** A marketplace code or id in `region` (e.g. `US`), to open that marketplace's Seller Central. */
  readonly marketplace?: string
  /** Where the seller lands afterwards: this service's own path or a configured return origin. */
  readonly returnTo?: string
}

/** The link made by {@link SpConnect.connectSessions}: send the user's browser to `url` before `expiresAt`. */
export interface ConnectSessionLink {
  readonly url: string
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
}

/** One running sp-connect, as returned by {@link createSpConnect}. */
export interface SpConnect {
  /** The configuration it runs with (frozen). */
  readonly config: AppConfig
  readonly tokens: {
    /** A valid LWA access token for the connection, refreshed (once across instances) when near expiry. */
    getAccessToken(connectionId: string): Promise<AccessToken>
  }
  /**
   * Calls one SP-API operation for a connection: regional endpoint, the seller's token (or a Restricted Data
   * Token for restricted operations), waiting for a turn under Amazon's usage plan (shared by every instance on
   * the database), and safe retries. Returns Amazon's answer whatever its status, body as a stream (or
   * `await response.text()`). Throws `spapi_operation_unknown` for a path that is no SP-API operation, and
   * `spapi_throttled` / `spapi_queue_full` (with `retryAfterSeconds`) when no turn comes before the deadline.
   *
   * ```ts
   * const res = await sp.call(connectionId, { method: 'GET', path: '/orders/v0/orders', query: { MarketplaceIds: 'ATVPDKIKX0DER', CreatedAfter: '2026-01-01' } })
   * const orders = JSON.parse(await res.text())
   * ```
   */
  call(connectionId: string, request: SpApiCallRequest): Promise<SpApiCallResponse>
  readonly restrictedDataTokens: {
    /**
     * A Restricted Data Token for up to 50 resources of the connection (Tokens API 2021-03-01), for code that
     * calls SP-API itself; the same set gets the cached RDT until a minute before it expires. Kept in memory only.
     */
    create(
      connectionId: string,
      restrictedResources: readonly RestrictedResource[],
      targetApplication?: string,
    ): Promise<RestrictedDataToken>
  }
  readonly connections: {
    /** Connections, oldest first; filter by tenant or status, page with `limit` and `after`. */
    list(filter?: ConnectionFilter): Promise<ConnectionRecord[]>
    /** One connection, or undefined. Never includes a token or ciphertext. */
    get(id: string): Promise<ConnectionRecord | undefined>
  }
  readonly connectSessions: {
    /** A one-hour link that starts the consent flow for `tenantId`. */
    create(input: NewConnectSessionInput): Promise<ConnectSessionLink>
  }
  /**
   * Login-URI requests (Appstore authorizations and re-authorizations from Amazon): the app's sign-in page,
   * given `sp_connect_login=<id>`, describes the request, then approves it for the signed-in user's tenant
   * (redirecting the browser to the returned `redirectUrl`) or rejects it.
   */
  readonly loginRequests: Pick<LoginRequests, 'describe' | 'approve' | 'reject'>
  /**
   * The whole HTTP service (consent pages, callback, `/v1` API, console) as a Web fetch handler: pass it to
   * `@hono/node-server`'s `serve({ fetch })`, `Bun.serve`, a route handler, or call it in tests. It serves
   * the paths under `config.basePath`; inside Express, Fastify or `node:http` mount it with `sp-connect/node`.
   */
  readonly fetch: (request: Request, env?: object) => Response | Promise<Response>
  /** Starts the background work: token refresher, webhook deliveries, sweeper. Idempotent. */
  start(): void
  /** Stops the background work, waiting for what is in flight. */
  stop(): Promise<void>
  /** Stops the background work and closes the database. */
  close(): Promise<void>
}

/** The configuration from environment variables (the variables `sp-connect serve` reads; see README). */
export function fromEnv(env: Readonly<Record<string, string | undefined>> = process.env): AppConfig {
  return loadConfigFromEnv(env)
}

/**
 * Opens sp-connect for `config` (from {@link fromEnv} or built in code). The database is migrated unless
 * `options.migrate` is false. Background work does not run until {@link SpConnect.start}.
 */
export async function createSpConnect(config: AppConfig, options: SpConnectOptions = {}): Promise<SpConnect> {
  const logger = options.logger ?? createLogger(config.logLevel)
  const runtime = await openRuntime(config, defaultDeps({ logger }), { migrate: options.migrate ?? true })
  const app = createServerApp(runtime)
  let background: Background | undefined
  const stop = async () => {
    const running = background
    background = undefined
    await running?.stop()
  }
  return {
    config,
    tokens: { getAccessToken: (connectionId) => runtime.tokens.getAccessToken(connectionId) },
    call: (connectionId, request) => runtime.spapi.call(connectionId, request),
    restrictedDataTokens: {
      create: (connectionId, resources, targetApplication) =>
        runtime.spapi.createRestrictedDataToken(connectionId, resources, targetApplication),
    },
    connections: {
      list: (filter) => runtime.store.listConnections(filter),
      get: (id) => runtime.store.getConnection(id),
    },
    connectSessions: {
      async create(input) {
        requireId(isTenantId, input.tenantId, 'tenant id')
        const marketplace = input.marketplace === undefined ? undefined : findMarketplace(input.marketplace)
        if (input.marketplace !== undefined && marketplace?.region !== input.region) {
          throw new SpConnectError('invalid_request', {
            detail: 'marketplace is unknown or not in the region',
          })
        }
        const session = await createConnectSession(runtime.store, runtime.deps, {
          tenantId: input.tenantId,
          region: input.region,
          accountType: input.accountType ?? 'seller',
          marketplace: marketplace?.country ?? null,
          connectionId: null,
          returnTo:
            input.returnTo === undefined ? null : validateReturnTo(input.returnTo, returnToPolicy(config)),
        })
        return { url: serviceUrl(config, `/connect/s/${session.token}`), expiresAt: session.expiresAt }
      },
    },
    loginRequests: {
      describe: (id, visibleTo) => runtime.loginRequests.describe(id, visibleTo),
      approve: (id, input) => runtime.loginRequests.approve(id, input),
      reject: (id, input) => runtime.loginRequests.reject(id, input),
    },
    // The env is passed on so @hono/node-server's socket bindings reach the abuse limits (client address).
    fetch: (request, env) => app.fetch(request, env),
    start() {
      background ??= startBackground(runtime)
    },
    stop,
    async close() {
      await stop()
      await runtime.close()
    },
  }
}
