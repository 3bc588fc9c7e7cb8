/**
 * The simulator's URL layout. There is no DNS here, so every Amazon host is served under a path prefix
 * equal to its host name: `https://sellercentral.amazon.com/apps/authorize/consent` becomes
 * `{base}/sellercentral.amazon.com/apps/authorize/consent`. The LWA token endpoint lives at
 * `{base}/auth/o2/token` (and, for symmetry, `{base}/api.amazon.com/auth/o2/token`). A request sent to the
 * Amazon host name itself (its Host header) is routed as if it carried that prefix (spapi/host-routing.ts).
 */
import {
  type AccountType,
  allCentralHosts,
  MARKETPLACES,
  REGIONS,
  type Region,
  SPAPI_HOSTS,
} from '../domain/regions.ts'

export const TOKEN_PATH = '/auth/o2/token'
export const LWA_HOST = 'api.amazon.com'
export const CONTROL_PREFIX = '/_control'
export const STYLESHEET_PATH = '/_static/simulator.css'
export const MARKETPLACE_PARTICIPATIONS_PATH = '/sellers/v1/marketplaceParticipations'

/** Website workflow: the OAuth authorization URI path on a Seller or Vendor Central host. */
export function consentPath(centralHost: string): string {
  return `/${centralHost}/apps/authorize/consent`
}

/** Appstore: the app's detail page with "Authorize now" (Seller Central hosts only). */
export function appstorePath(centralHost: string, appId: string): string {
  return `/${centralHost}/apps/appstore/${encodeURIComponent(appId)}`
}

/**
 * Consent step of the Login-URI flows (Appstore "Authorize now" and Manage Your Apps "Re-Authorize").
 * Amazon does not publish this path; the simulator chose it.
 */
export function appstoreConsentPath(centralHost: string, appId: string): string {
  return `/${centralHost}/apps/authorize/appstore/${encodeURIComponent(appId)}`
}

/** The `amazon_callback_uri` path the app sends the browser back to in the Login-URI flows. */
export function confirmPath(centralHost: string, appId: string): string {
  return `/${centralHost}/apps/authorize/confirm/${encodeURIComponent(appId)}`
}

/** "Manage Your Apps" with Re-Authorize per authorized app. */
export function manageAppsPath(centralHost: string): string {
  return `/${centralHost}/apps/manage`
}

/** An SP-API operation path on a production or sandbox SP-API host. */
export function spapiPath(spapiHost: string, operationPath = MARKETPLACE_PARTICIPATIONS_PATH): string {
  return `/${spapiHost}${operationPath}`
}

export const CONTROL_ENDPOINTS = [
  'revoke',
  'expire-tokens',
  'faults',
  'counters',
  'reset-counters',
  'clock',
  'self-authorize',
  'apps',
  'secret-expiry',
  'client-secrets',
  'notifications',
  'usage-plans',
] as const
export type ControlEndpoint = (typeof CONTROL_ENDPOINTS)[number]

export function controlPath(endpoint: ControlEndpoint): string {
  return `${CONTROL_PREFIX}/${endpoint}`
}

/** Absolute URLs for a simulator served at `base` (e.g. `http://127.0.0.1:9000` or `…/__amazon`). */
export function simulatorUrls(base: string) {
  const root = base.replace(/\/+$/, '')
  return {
    token: `${root}${TOKEN_PATH}`,
    consent: (centralHost: string) => `${root}${consentPath(centralHost)}`,
    appstore: (centralHost: string, appId: string) => `${root}${appstorePath(centralHost, appId)}`,
    appstoreConsent: (centralHost: string, appId: string) =>
      `${root}${appstoreConsentPath(centralHost, appId)}`,
    confirm: (centralHost: string, appId: string) => `${root}${confirmPath(centralHost, appId)}`,
    manageApps: (centralHost: string) => `${root}${manageAppsPath(centralHost)}`,
    spapi: (spapiHost: string, operationPath?: string) => `${root}${spapiPath(spapiHost, operationPath)}`,
    control: (endpoint: ControlEndpoint) => `${root}${controlPath(endpoint)}`,
  }
}

export interface CentralHostInfo {
  readonly host: string
  readonly region: Region
  readonly accountType: AccountType
}

const CENTRAL_HOSTS: ReadonlyMap<string, CentralHostInfo> = (() => {
  const map = new Map<string, CentralHostInfo>()
  for (const host of allCentralHosts()) {
    const mp = MARKETPLACES.find((m) => m.sellerCentralHost === host || m.vendorCentralHost === host)
    if (!mp) continue
    const accountType: AccountType = mp.sellerCentralHost === host ? 'seller' : 'vendor'
    map.set(host, Object.freeze({ host, region: mp.region, accountType }))
  }
  return map
})()

/** Region and account type of a Seller/Vendor Central host from regions.ts, or undefined when unknown. */
export function centralHostInfo(host: string): CentralHostInfo | undefined {
  return CENTRAL_HOSTS.get(host)
}

export interface SpapiHostInfo {
  readonly host: string
  readonly region: Region
  readonly sandbox: boolean
}

const SPAPI_HOST_INFO: ReadonlyMap<string, SpapiHostInfo> = new Map(
  REGIONS.flatMap((region): [string, SpapiHostInfo][] => [
    [
      SPAPI_HOSTS[region].production,
      Object.freeze({ host: SPAPI_HOSTS[region].production, region, sandbox: false }),
    ],
    [
      SPAPI_HOSTS[region].sandbox,
      Object.freeze({ host: SPAPI_HOSTS[region].sandbox, region, sandbox: true }),
    ],
  ]),
)

/** Region of a production or sandbox SP-API host, or undefined when unknown. */
export function spapiHostInfo(host: string): SpapiHostInfo | undefined {
  return SPAPI_HOST_INFO.get(host)
}

/**
 * The simulator's base URL for a request, derived from the request URL by dropping the route's own
 * path segments, so links keep working when the app is mounted under a prefix such as `/__amazon`.
 */
export function baseUrlOf(requestUrl: string, routeSegments: number): string {
  const url = new URL(requestUrl)
  const segments = url.pathname.split('/')
  const kept = segments.slice(0, Math.max(1, segments.length - routeSegments)).join('/')
  return `${url.origin}${kept}`.replace(/\/+$/, '')
}
