/**
 * `createSimulator`: wires the registry, state, persistence and routes into one Hono app that plays
 * Amazon's side of the SP-API authorization workflows.
 */
import { randomBytes } from 'node:crypto'
import { Hono } from 'hono'
import type { Region } from '../domain/regions.ts'
import { appstoreRoutes } from './appstore.ts'
import { expireSecretsBy, isLive, OLD_SECRET_GRACE_MS, restoreSecrets } from './client-secrets.ts'
import { consentRoutes } from './consent.ts'
import type { SimulatorContext } from './context.ts'
import { controlRoutes } from './control.ts'
import { validateFaults } from './faults.ts'
import { manageRoutes } from './manage.ts'
import { Notifier, secretExpiryNotification } from './notifications.ts'
import { notFoundPage } from './pages.ts'
import { loadStateFile, StateFileWriter } from './persistence.ts'
import { AppRegistry } from './registry.ts'
import { sendPage } from './responses.ts'
import { rotationRoutes } from './rotation.ts'
import { STYLESHEET_PATH } from './routes.ts'
import { hostRoutedPath } from './spapi/host-routing.ts'
import { resolveOperation, spapiRoutes } from './spapi.ts'
import { SimulatorState } from './state.ts'
import { SIMULATOR_CSS } from './styles.ts'
import { tokenRoutes } from './token-endpoint.ts'
import { signRefreshToken } from './tokens.ts'
import type {
  ClientSecretInfo,
  SecretExpiryOptions,
  SimulatedApp,
  Simulator,
  SimulatorOptions,
  TokenEndpointCounters,
  TokenFaults,
} from './types.ts'

function checkUri(uri: string, what: string): void {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    throw new TypeError(`A simulated app's ${what} is not an absolute URL.`)
  }
  if (url.hash !== '' || uri.includes('#')) throw new TypeError(`A simulated app's ${what} has a fragment.`)
}

export function createSimulator(options: SimulatorOptions): Simulator {
  const registry = new AppRegistry(options.apps)
  for (const app of options.apps) {
    for (const uri of app.redirectUris) checkUri(uri, 'redirect URI')
    checkUri(app.loginUri, 'login URI')
  }
  const baseNow = options.now ?? Date.now
  const random = options.random ?? Math.random
  const state = new SimulatorState()
  const saved = options.stateFile !== undefined ? loadStateFile(options.stateFile) : undefined
  if (saved) state.restore(saved)
  // Rotated secrets come back onto the apps (in place), so the registry and the caller see them
  for (const app of options.apps) {
    const secrets = saved?.clientSecrets?.[app.clientId]
    if (secrets === undefined) continue
    restoreSecrets(
      app,
      secrets.map((s) =>
        s.createdAt === undefined
          ? { secret: s.secret, expiresAt: s.expiresAt }
          : { ...s, createdAt: s.createdAt },
      ),
    )
    state.clientSecrets.set(app.clientId, app.clientSecrets)
  }
  // A generated secret must survive restarts with the state file, or the saved grants' tokens would fail.
  const generatedSecret =
    options.signingSecret === undefined
      ? (saved?.signingSecret ?? randomBytes(32).toString('base64url'))
      : undefined
  const signingSecret = options.signingSecret ?? generatedSecret ?? ''
  const writer =
    options.stateFile !== undefined
      ? new StateFileWriter(options.stateFile, () => state.snapshot(generatedSecret))
      : undefined
  if (writer) {
    state.onChange = () => writer.schedule()
    if (!saved) writer.schedule()
  }

  const now = () => baseNow() + state.clockOffsetMs
  const notifier = new Notifier(options.notifications)
  const ctx: SimulatorContext = { registry, state, signingSecret, now, random, notifier }
  const appById = (appId: string): SimulatedApp => {
    const app = registry.byAppId(appId)
    if (!app) throw new RangeError('No simulated app has that app id.')
    return app
  }

  const api: Omit<Simulator, 'app'> = {
    counters: (): TokenEndpointCounters => structuredClone(state.counters),
    resetCounters: () => {
      state.resetCounters()
      state.spapi.usagePlans.resetCounters()
    },
    revoke(sellingPartnerId: string, appId?: string) {
      const clientId = appId === undefined ? null : registry.byAppId(appId)?.clientId
      if (clientId === undefined) throw new RangeError('No simulated app has that app id.')
      state.revoke(sellingPartnerId, clientId, now())
    },
    expireAccessTokens: (sellingPartnerId?: string) =>
      state.expireAccessTokens(sellingPartnerId ?? null, now()),
    setFaults(faults: TokenFaults) {
      state.faults = validateFaults(faults)
    },
    advanceClock(ms: number) {
      if (!Number.isFinite(ms)) throw new RangeError('advanceClock needs a finite number of milliseconds.')
      state.clockOffsetMs += ms
      state.onChange()
    },
    now,
    selfAuthorize(appId: string, sellingPartnerId: string, region: Region): string {
      const app = registry.byAppId(appId)
      if (!app) throw new RangeError('No simulated app has that app id.')
      // Self-authorization works for draft apps too, and never invalidates earlier tokens (§7.5).
      const issuedAt = now()
      const grant = state.addGrant({
        sellingPartnerId,
        appId,
        clientId: app.clientId,
        region,
        issuedAt,
        kind: 'self',
      })
      return signRefreshToken(signingSecret, {
        g: grant.id,
        n: grant.serial,
        sp: sellingPartnerId,
        c: app.clientId,
        r: region,
        iat: issuedAt,
      })
    },
    configureNotifications: (target) => notifier.configure(target),
    emitSecretExpiry(appId: string, expiry: SecretExpiryOptions = {}) {
      const app = appById(appId)
      const at = now()
      const expiresAt = expiry.expiresAt ?? at + OLD_SECRET_GRACE_MS
      if (!Number.isFinite(expiresAt))
        throw new RangeError('expiresAt must be a finite number of milliseconds.')
      if (expiry.enforce) {
        expireSecretsBy(app, expiresAt, at)
        state.secretsChanged(app.clientId, app.clientSecrets)
      }
      const reason = expiry.reason ?? 'PERIODIC_ROTATION'
      notifier.send(app.appId, secretExpiryNotification(app, at, { expiresAt, reason }), at)
    },
    clientSecretInfo(appId: string): ClientSecretInfo[] {
      const app = appById(appId)
      const at = now()
      return app.clientSecrets.map((s, i) => {
        const usage = state.secretUsage.get(s.secret)
        return {
          position: i + 1,
          createdAt: s.createdAt ?? null,
          expiresAt: s.expiresAt,
          live: isLive(s, at),
          authenticated: usage?.authenticated ?? 0,
          refusedAfterExpiry: usage?.refusedAfterExpiry ?? 0,
          lastAuthenticatedAt: usage?.lastAuthenticatedAt ?? null,
        }
      })
    },
    setUsagePlan(name, plan) {
      const operation = resolveOperation(name)
      if (!operation) throw new RangeError('No SP-API operation has that name.')
      if (
        !(plan.rate > 0) ||
        !Number.isFinite(plan.rate) ||
        !Number.isInteger(plan.burst) ||
        plan.burst < 1
      ) {
        throw new RangeError('A usage plan needs a positive rate and a whole burst of at least 1.')
      }
      state.spapi.usagePlans.override(operation.name, plan)
      return operation.name
    },
    usagePlanOverrides: () => state.spapi.usagePlans.overrides(),
    spapiCounters: () => ({ throttledByOperation: state.spapi.usagePlans.throttledCounts() }),
    notificationLog: () => notifier.log(),
    flushNotifications: () => notifier.flush(),
    close: async () => {
      await notifier.close()
      await writer?.flush()
    },
  }

  // Requests sent to an Amazon host name (HTTPS, the CONNECT proxy, a private /etc/hosts) route like the
  // path-prefix layout; see spapi/host-routing.ts.
  const app = new Hono({ getPath: hostRoutedPath })
  app.get(STYLESHEET_PATH, (c) =>
    c.body(SIMULATOR_CSS, 200, {
      'Content-Type': 'text/css; charset=utf-8',
      'Cache-Control': 'public, max-age=3600',
      'X-Content-Type-Options': 'nosniff',
    }),
  )
  app.route(
    '/',
    controlRoutes({
      simulator: api,
      faults: () => structuredClone(state.faults),
      clockOffsetMs: () => state.clockOffsetMs,
      apps: () => registry.all().map((a) => ({ appId: a.appId, name: a.name, status: a.status })),
    }),
  )
  app.route('/', tokenRoutes(ctx))
  // Before the SP-API routes, whose catch-all answers 404 for every other path on an SP-API host
  app.route('/', rotationRoutes(ctx))
  app.route('/', spapiRoutes(ctx))
  app.route('/', consentRoutes(ctx))
  app.route('/', appstoreRoutes(ctx))
  app.route('/', manageRoutes(ctx))
  // The simulator's base is unknown for an unmatched path, so this page goes without the stylesheet.
  app.notFound((c) => sendPage(c, notFoundPage(undefined), 404, null))
  return { app, ...api }
}
