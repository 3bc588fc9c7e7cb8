/**
 * The URLs of both authorization workflows (spapi-facts.md §1.3, §2.1):
 * - website: https://{central host}/apps/authorize/consent?application_id&state[&version=beta][&redirect_uri]
 * - Appstore / re-authorization: {amazon_callback_uri}?redirect_uri&amazon_state&state[&version=beta]
 */
import { SpConnectError } from '../../domain/errors.ts'
import {
  type AccountType,
  allCentralHosts,
  centralHost,
  DEFAULT_MARKETPLACE,
  findMarketplace,
  type Region,
} from '../../domain/regions.ts'

interface ConsentUrlInput {
  readonly appId: string
  readonly state: string
  readonly region: Region
  readonly accountType: AccountType
  /** Country code or marketplace id whose Seller/Vendor Central host to use; the region's default otherwise. */
  readonly marketplace?: string | undefined
  readonly draftApp: boolean
  /** Sent only when given; Amazon then requires it to be registered, else uses the first registered URI. */
  readonly redirectUri?: string | undefined
  /** Base URL template of the Central hosts, `https://{host}` in production. */
  readonly centralUrlTemplate: string
}

export function buildConsentUrl(input: ConsentUrlInput): URL {
  const marketplace = findMarketplace(input.marketplace ?? DEFAULT_MARKETPLACE[input.region])
  if (!marketplace || marketplace.region !== input.region) {
    throw new SpConnectError('invalid_request', { detail: 'marketplace is unknown or not in the region' })
  }
  const host = centralHost(marketplace, input.accountType)
  if (!host) {
    throw new SpConnectError('invalid_request', {
      detail: `Amazon documents no ${input.accountType} consent host for ${marketplace.country}`,
    })
  }
  const url = new URL(`${centralBaseUrl(input.centralUrlTemplate, host)}/apps/authorize/consent`)
  url.searchParams.set('application_id', input.appId)
  url.searchParams.set('state', input.state)
  if (input.draftApp) url.searchParams.set('version', 'beta')
  if (input.redirectUri) url.searchParams.set('redirect_uri', input.redirectUri)
  return url
}

interface AppstoreRedirectInput {
  readonly amazonCallbackUri: URL
  readonly amazonState: string
  readonly state: string
  readonly redirectUri: string
  readonly draftApp: boolean
}

export function buildAppstoreRedirect(input: AppstoreRedirectInput): URL {
  const url = new URL(input.amazonCallbackUri)
  url.searchParams.set('redirect_uri', input.redirectUri)
  url.searchParams.set('amazon_state', input.amazonState)
  url.searchParams.set('state', input.state)
  if (input.draftApp) url.searchParams.set('version', 'beta')
  return url
}

/**
 * Accepts an `amazon_callback_uri` only if it points at an Amazon Central host (through the configured
 * template) on the confirm path: we redirect the browser there, so anything else would be an open redirect.
 */
export function parseAmazonCallbackUri(value: string, centralUrlTemplate: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new SpConnectError('amazon_callback_invalid', { detail: 'amazon_callback_uri is not a URL' })
  }
  if (url.username || url.password || url.hash) {
    throw new SpConnectError('amazon_callback_invalid', {
      detail: 'amazon_callback_uri has credentials or a fragment',
    })
  }
  const allowed = allowedAmazonCallbackBases(centralUrlTemplate)
  const base = allowed.find((prefix) => url.href.startsWith(`${prefix}/apps/authorize/confirm/`))
  if (!base) {
    throw new SpConnectError('amazon_callback_invalid', {
      detail: 'amazon_callback_uri is not an Amazon confirm URL',
    })
  }
  return url
}

/** The base URLs Amazon's confirm step may live under: every Central host, plus amazon.com as in Amazon's example. */
function allowedAmazonCallbackBases(centralUrlTemplate: string): string[] {
  const hosts = [...allCentralHosts(), 'amazon.com', 'www.amazon.com']
  return hosts.map((host) => centralBaseUrl(centralUrlTemplate, host))
}

/** Every origin the consent flow may send a browser to (for the CSP form-action list). */
export function centralOrigins(centralUrlTemplate: string): string[] {
  return [...new Set(allowedAmazonCallbackBases(centralUrlTemplate).map((base) => new URL(base).origin))]
}

export function centralBaseUrl(template: string, host: string): string {
  return template.replace('{host}', host).replace(/\/+$/, '')
}
