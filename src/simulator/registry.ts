/**
 * The registered apps, looked up by app id (consent URIs) or LWA client id (token endpoint), plus the
 * redirect-URI and client-secret rules Amazon applies to them.
 */
import { timingSafeEqual } from 'node:crypto'
import type { SimulatedApp, SimulatedClientSecret } from './types.ts'

type RedirectUriCheck = { ok: true; redirectUri: string } | { ok: false; errorCode: 'MD5101' | 'MD5110' }

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8')
  const y = Buffer.from(b, 'utf8')
  return x.length === y.length && timingSafeEqual(x, y)
}

export class AppRegistry {
  readonly #byAppId = new Map<string, SimulatedApp>()
  readonly #byClientId = new Map<string, SimulatedApp>()

  constructor(apps: readonly SimulatedApp[]) {
    for (const app of apps) {
      if (this.#byAppId.has(app.appId)) throw new TypeError('Two simulated apps share one app id.')
      if (this.#byClientId.has(app.clientId)) throw new TypeError('Two simulated apps share one client id.')
      if (app.redirectUris.length === 0) throw new TypeError('A simulated app needs a redirect URI.')
      this.#byAppId.set(app.appId, app)
      this.#byClientId.set(app.clientId, app)
    }
  }

  all(): SimulatedApp[] {
    return [...this.#byAppId.values()]
  }

  /** Only real app ids match: a client id used as `application_id` finds nothing, as on Amazon. */
  byAppId(appId: string | undefined): SimulatedApp | undefined {
    return appId === undefined ? undefined : this.#byAppId.get(appId)
  }

  byClientId(clientId: string | undefined): SimulatedApp | undefined {
    return clientId === undefined ? undefined : this.#byClientId.get(clientId)
  }

  /** Client authentication: the id names an app and the secret matches one of its unexpired secrets. */
  authenticate(clientId: string, clientSecret: string, now: number): SimulatedApp | undefined {
    const app = this.#byClientId.get(clientId)
    if (!app) return undefined
    const secret = this.findSecret(clientId, clientSecret)
    const live = secret !== undefined && (secret.expiresAt === null || secret.expiresAt > now)
    return live ? app : undefined
  }

  /** The app's secret entry equal to `clientSecret`, expired or not (for usage counts). */
  findSecret(clientId: string, clientSecret: string): SimulatedClientSecret | undefined {
    const app = this.#byClientId.get(clientId)
    if (!app) return undefined
    // Check every secret (no early exit) so timing says nothing about which one matched.
    let found: SimulatedClientSecret | undefined
    for (const s of app.clientSecrets) {
      if (sameSecret(s.secret, clientSecret)) found = s
    }
    return found
  }
}

/**
 * Amazon's redirect_uri rules (spapi-facts.md §1.3): absent → the first registered URI; a fragment →
 * MD5110; not registered → MD5101. Amazon does not document how it compares URIs; the simulator
 * requires an exact string match (no trailing-slash, case or query normalisation).
 */
export function resolveRedirectUri(app: SimulatedApp, requested: string | undefined): RedirectUriCheck {
  if (requested === undefined || requested === '') {
    const first = app.redirectUris[0]
    return first === undefined ? { ok: false, errorCode: 'MD5101' } : { ok: true, redirectUri: first }
  }
  if (requested.includes('#')) return { ok: false, errorCode: 'MD5110' }
  if (!app.redirectUris.includes(requested)) return { ok: false, errorCode: 'MD5101' }
  return { ok: true, redirectUri: requested }
}

/**
 * Amazon's draft rule: a draft app needs `version=beta` (else MD1000). A published app called with
 * `version=beta` is not documented; the simulator accepts it (docs/decisions/0003).
 */
export function betaAllowed(app: SimulatedApp, version: string | undefined): boolean {
  return app.status === 'published' || version === 'beta'
}
