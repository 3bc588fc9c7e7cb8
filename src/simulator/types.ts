/**
 * Public types of the Amazon simulator. Other parts of sp-connect (CLI, tests, the dev server) code
 * against exactly these shapes, so change them only together with their users.
 */
import type { Hono } from 'hono'
import type { RatePlan } from '../core/spapi/operations.ts'
import type { Region } from '../domain/regions.ts'

/** One app as registered in Amazon's Developer Central / Solution Provider Portal. */
export interface SimulatedApp {
  /** App ID used as `application_id` on the consent URI: `amzn1.sp.solution.<uuid>`. */
  appId: string
  /** LWA client id: `amzn1.application-oa2-client.<hex>`. */
  clientId: string
  /**
   * LWA client secrets (`amzn1.oa2-cs.v1.<hex>`), oldest first; several are valid during a rotation. A
   * rotation (`POST /{spapiHost}/applications/2023-11-30/clientSecret`) appends one and sets the others'
   * `expiresAt`, in place.
   */
  clientSecrets: SimulatedClientSecret[]
  name: string
  /** Registered OAuth Redirect URIs; the first is used when the consent URI names none. */
  redirectUris: string[]
  /** Registered OAuth Login URI (Appstore and re-authorization flows). */
  loginUri: string
  status: 'draft' | 'published'
  /** Hybrid (SP-API + MWS) app: the redirect carries `mws_auth_token` (seller apps only). */
  hybrid?: boolean
}

export interface SimulatedClientSecret {
  secret: string
  /** Simulator-clock ms after which LWA answers `invalid_client` to it; null: never. */
  expiresAt: number | null
  /** Simulator-clock ms it was issued (rotation); absent for configured secrets. */
  createdAt?: number
}

/**
 * Where the simulator delivers SP-API notifications, standing in for the app's SQS queue and whatever
 * forwards its messages: every notification's SQS message body is POSTed there as JSON.
 */
export interface NotificationTarget {
  url: string
  /** Sent with every delivery, e.g. `{ authorization: 'Bearer <api key>' }`. */
  headers?: Record<string, string>
  /** Waits before the 2nd, 3rd, … attempt after a failure (no 2xx); default [250, 1000, 3000, 10000]. */
  retryDelaysMs?: number[]
}

/** One notification's delivery, as the control API reports it (never the notification itself). */
export interface NotificationDelivery {
  notificationId: string
  notificationType: string
  appId: string
  status: 'pending' | 'delivered' | 'failed'
  attempts: number
  /** HTTP status of the last attempt, or null when it got none. */
  lastStatus: number | null
  /** Simulator-clock ms the notification was published. */
  publishedAt: number
}

/** What the control API tells about one client secret: never the secret itself. */
export interface ClientSecretInfo {
  /** 1 for the oldest. */
  position: number
  createdAt: number | null
  expiresAt: number | null
  /** Whether LWA accepts it now. */
  live: boolean
  /** Token requests it authenticated. */
  authenticated: number
  /** Token requests refused because it had expired. */
  refusedAfterExpiry: number
  lastAuthenticatedAt: number | null
}

export interface SecretExpiryOptions {
  /** Simulator-clock ms; now + 7 days by default. */
  expiresAt?: number
  /** `clientSecretExpiryReason`; `PERIODIC_ROTATION` by default. */
  reason?: string
  /** Also make the app's current secrets expire then (the warning then comes true). Default false. */
  enforce?: boolean
}

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const
export type GrantType = (typeof GRANT_TYPES)[number]

/** Faults injected into the LWA token endpoint, applied before normal processing. */
export interface TokenFaults {
  /** Share of calls (0..1) answered with 500 server_error or 503 temporarily_unavailable. */
  errorRate?: number
  /** Share of calls (0..1) answered with 429 and a Retry-After header. */
  throttleRate?: number
  /** Retry-After value for throttled calls; 1 when absent. */
  retryAfterSeconds?: number
  /** Delay added before every affected call is answered. */
  latencyMs?: number
  /** Simulator-clock milliseconds: every affected call answers 503 until then. */
  outageUntil?: number
  /** The next N affected calls answer 500 server_error (a burst of errors, deterministic for tests). */
  failNext?: number
  /** Restrict the faults to these grant types; all calls when absent. */
  grants?: GrantType[]
}

export interface TokenEndpointCounters {
  total: number
  byGrant: { authorization_code: number; refresh_token: number; client_credentials: number; other: number }
  byOutcome: { ok: number; error: number; fault: number }
}

export interface SimulatorOptions {
  apps: SimulatedApp[]
  /** HMAC key for the stateless tokens; random when absent (and then kept in `stateFile`, if any). */
  signingSecret?: string
  /** JSON file (mode 0600) keeping grants, revocations, clock offset and counters across restarts. */
  stateFile?: string
  /** Millisecond clock; `Date.now` by default. The control API can add an offset. */
  now?: () => number
  /** Source of randomness for fault injection; `Math.random` by default. */
  random?: () => number
  /**
   * Where notifications go (the app's SQS destination for APPLICATION_OAUTH_CLIENT_NEW_SECRET and
   * APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY). Without it, rotation answers 400 "not enrolled", as Amazon does.
   */
  notifications?: NotificationTarget
}

export interface Simulator {
  /** Fetch-style app; serve it, or mount it: `parent.route('/__amazon', sim.app)`. */
  readonly app: Hono
  counters(): TokenEndpointCounters
  resetCounters(): void
  /**
   * Revokes the partner's grants issued up to now, for one app or for all apps.
   * Throws RangeError for an unknown app id.
   */
  revoke(sellingPartnerId: string, appId?: string): void
  /** Makes every access token issued up to now expire, for one partner or for everyone. */
  expireAccessTokens(sellingPartnerId?: string): void
  setFaults(faults: TokenFaults): void
  advanceClock(ms: number): void
  now(): number
  /**
   * Seller/Vendor Central self-authorization: a new grant and its refresh token (draft apps too).
   * Throws RangeError for an unknown app id.
   */
  selfAuthorize(appId: string, sellingPartnerId: string, region: Region): string
  /** Sets or clears where notifications go (see {@link SimulatorOptions.notifications}). */
  configureNotifications(target: NotificationTarget | undefined): void
  /** Sends APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY for the app. Throws RangeError for an unknown app id. */
  emitSecretExpiry(appId: string, options?: SecretExpiryOptions): void
  /** The app's client secrets, oldest first, without the secrets. Throws RangeError for an unknown app id. */
  clientSecretInfo(appId: string): ClientSecretInfo[]
  /** The latest notification deliveries (at most 100), oldest first. */
  notificationLog(): NotificationDelivery[]
  /** Resolves once every notification sent so far was delivered or given up. */
  flushNotifications(): Promise<void>
  /** Stops notification retries and writes pending state to `stateFile`. */
  close(): Promise<void>
  /**
   * Overrides the usage plan of one SP-API operation (its table name, or an operationId only one operation
   * has), as Amazon's dynamic plans do; returns the table name. Throws RangeError for an unknown operation.
   */
  setUsagePlan(operation: string, plan: RatePlan): string
  /** The usage-plan overrides in force, by operation name. */
  usagePlanOverrides(): Record<string, RatePlan>
  /** SP-API counters: 429 QuotaExceeded answers served, by operation name (reset with the other counters). */
  spapiCounters(): SpapiCounters
}

export interface SpapiCounters {
  throttledByOperation: Record<string, number>
}
