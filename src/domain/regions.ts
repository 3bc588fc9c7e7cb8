/**
 * Amazon's geography as SP-API sees it: three regions, their marketplaces, the Seller Central and
 * Vendor Central host that serves each marketplace's consent page, and the regional SP-API endpoints.
 *
 * Sources: ../shared/spapi-facts.md §3 (endpoints, marketplace ids, Seller/Vendor Central hosts).
 * Where the sources disagree (India's Vendor Central host) we keep Amazon's 2021 guide value and note it.
 *
 * @see https://developer-docs.amazon.com/sp-api/docs/sp-api-endpoints
 * @see https://developer-docs.amazon.com/sp-api/docs/marketplace-ids
 */

export const REGIONS = ['na', 'eu', 'fe'] as const
export type Region = (typeof REGIONS)[number]

export const ACCOUNT_TYPES = ['seller', 'vendor'] as const
export type AccountType = (typeof ACCOUNT_TYPES)[number]

export interface Marketplace {
  /** Two-letter country code Amazon uses in its tables (UK, not GB). */
  readonly country: string
  readonly id: string
  readonly region: Region
  /** Seller Central host serving the consent page, or null when Amazon documents none. */
  readonly sellerCentralHost: string | null
  /** Vendor Central host serving the consent page, or null when Amazon documents none. */
  readonly vendorCentralHost: string | null
}

const m = (
  country: string,
  id: string,
  region: Region,
  sellerCentralHost: string | null,
  vendorCentralHost: string | null,
): Marketplace => Object.freeze({ country, id, region, sellerCentralHost, vendorCentralHost })

/** Every marketplace with its id and consent hosts (spapi-facts.md §3.2-3.4). */
export const MARKETPLACES: readonly Marketplace[] = Object.freeze([
  m('CA', 'A2EUQ1WTGCTBG2', 'na', 'sellercentral.amazon.ca', 'vendorcentral.amazon.ca'),
  m('US', 'ATVPDKIKX0DER', 'na', 'sellercentral.amazon.com', 'vendorcentral.amazon.com'),
  m('MX', 'A1AM78C64UM0Y8', 'na', 'sellercentral.amazon.com.mx', 'vendorcentral.amazon.com.mx'),
  m('BR', 'A2Q3Y263D00KWC', 'na', 'sellercentral.amazon.com.br', 'vendorcentral.amazon.com.br'),
  // IE and ZA have no Seller Central host in Amazon's own material; third-party lists give these.
  m('IE', 'A28R8C7NBKEWEA', 'eu', 'sellercentral.amazon.ie', null),
  m('ES', 'A1RKKUPIHCS9HS', 'eu', 'sellercentral-europe.amazon.com', 'vendorcentral.amazon.es'),
  m('UK', 'A1F83G8C2ARO7P', 'eu', 'sellercentral-europe.amazon.com', 'vendorcentral.amazon.co.uk'),
  m('FR', 'A13V1IB3VIYZZH', 'eu', 'sellercentral-europe.amazon.com', 'vendorcentral.amazon.fr'),
  m('BE', 'AMEN7PMS3EDWL', 'eu', 'sellercentral.amazon.com.be', 'vendorcentral.amazon.com.be'),
  m('NL', 'A1805IZSGTT6HS', 'eu', 'sellercentral.amazon.nl', 'vendorcentral.amazon.nl'),
  m('DE', 'A1PA6795UKMFR9', 'eu', 'sellercentral-europe.amazon.com', 'vendorcentral.amazon.de'),
  m('IT', 'APJ6JRA9NG5V4', 'eu', 'sellercentral-europe.amazon.com', 'vendorcentral.amazon.it'),
  m('SE', 'A2NODRKZP88ZB9', 'eu', 'sellercentral.amazon.se', 'vendorcentral.amazon.se'),
  m('ZA', 'AE08WJ6YKNBMC', 'eu', 'sellercentral.amazon.co.za', null),
  m('PL', 'A1C3SOZRARQ6R3', 'eu', 'sellercentral.amazon.pl', 'vendorcentral.amazon.pl'),
  m('EG', 'ARBP9OOSHTCHU', 'eu', 'sellercentral.amazon.eg', 'vendorcentral.amazon.me'),
  m('TR', 'A33AVAJ2PDY3EV', 'eu', 'sellercentral.amazon.com.tr', 'vendorcentral.amazon.com.tr'),
  m('SA', 'A17E79C6D8DWNP', 'eu', 'sellercentral.amazon.sa', 'vendorcentral.amazon.me'),
  m('AE', 'A2VIGQ35RCS4UG', 'eu', 'sellercentral.amazon.ae', 'vendorcentral.amazon.me'),
  // India's Vendor Central host: Amazon's 2021 guide says vendorcentral.amazon.in, its current sample
  // says www.vendorcentral.in. We follow the guide; override the consent base URL if it moves.
  m('IN', 'A21TJRUUN4KGV', 'eu', 'sellercentral.amazon.in', 'vendorcentral.amazon.in'),
  m('SG', 'A19VAU5U5O7RUS', 'fe', 'sellercentral.amazon.sg', 'vendorcentral.amazon.com.sg'),
  m('AU', 'A39IBJ37TRP1C6', 'fe', 'sellercentral.amazon.com.au', 'vendorcentral.amazon.com.au'),
  m('JP', 'A1VC38T7YXB528', 'fe', 'sellercentral.amazon.co.jp', 'vendorcentral.amazon.co.jp'),
])

/** The marketplace whose consent host a region uses when the caller names none. */
export const DEFAULT_MARKETPLACE: Readonly<Record<Region, string>> = Object.freeze({
  na: 'US',
  eu: 'UK',
  fe: 'JP',
})

interface RegionEndpoints {
  readonly production: string
  readonly sandbox: string
}

/** Regional SP-API hosts (spapi-facts.md §3.1). Authorizations are regional, endpoints too. */
export const SPAPI_HOSTS: Readonly<Record<Region, RegionEndpoints>> = Object.freeze({
  na: Object.freeze({
    production: 'sellingpartnerapi-na.amazon.com',
    sandbox: 'sandbox.sellingpartnerapi-na.amazon.com',
  }),
  eu: Object.freeze({
    production: 'sellingpartnerapi-eu.amazon.com',
    sandbox: 'sandbox.sellingpartnerapi-eu.amazon.com',
  }),
  fe: Object.freeze({
    production: 'sellingpartnerapi-fe.amazon.com',
    sandbox: 'sandbox.sellingpartnerapi-fe.amazon.com',
  }),
})

export function isRegion(value: unknown): value is Region {
  return typeof value === 'string' && (REGIONS as readonly string[]).includes(value)
}

export function isAccountType(value: unknown): value is AccountType {
  return typeof value === 'string' && (ACCOUNT_TYPES as readonly string[]).includes(value)
}

/** Finds a marketplace by country code (`US`, `uk`) or marketplace id (`ATVPDKIKX0DER`). */
export function findMarketplace(codeOrId: string): Marketplace | undefined {
  const wanted = codeOrId.trim()
  return MARKETPLACES.find((mp) => mp.id === wanted || mp.country === wanted.toUpperCase())
}

/** The Seller or Vendor Central host that serves the consent page for one marketplace. */
export function centralHost(marketplace: Marketplace, type: AccountType): string | null {
  return type === 'seller' ? marketplace.sellerCentralHost : marketplace.vendorCentralHost
}

/** Every distinct Seller and Vendor Central host: the hosts Amazon may send an Appstore callback from. */
export function allCentralHosts(): string[] {
  const hosts = new Set<string>()
  for (const mp of MARKETPLACES) {
    if (mp.sellerCentralHost) hosts.add(mp.sellerCentralHost)
    if (mp.vendorCentralHost) hosts.add(mp.vendorCentralHost)
  }
  return [...hosts].sort()
}
