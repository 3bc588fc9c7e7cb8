/**
 * A sliver of SP-API: `GET /sellers/v1/marketplaceParticipations` on the three production and three
 * sandbox hosts, with SP-API's authorization answers (spapi-facts.md §6). Only `x-amz-access-token`
 * counts; SigV4 headers are ignored, as SP-API has done since October 2023.
 */
import { createHash } from 'node:crypto'
import { type Context, Hono } from 'hono'
import { MARKETPLACES, type Marketplace } from '../core/regions.ts'
import type { SimulatorContext } from './context.ts'
import { newRequestId } from './ids.ts'
import { MARKETPLACE_PARTICIPATIONS_PATH, spapiHostInfo } from './routes.ts'
import { isGrantless, verifyAccessToken } from './tokens.ts'

export const SPAPI_DENIED = {
  missing: 'Access token is missing in the request header.',
  invalid: 'The access token you provided is revoked, malformed or invalid.',
  // [U] in the facts: a variant for expired tokens exists per third-party summaries; this text is chosen.
  expired: 'The access token you provided has expired.',
  // Observed for a wrong region or a missing role: empty details (spapi-facts.md §6.2).
  noAccess: '',
} as const

/** The Sellers API's published rate for getMarketplaceParticipations. */
const RATE_LIMIT = '0.016'

/** Amazon's display data for each marketplace; not in regions.ts because only this mock needs it. */
const MARKETPLACE_DETAILS: Readonly<Record<string, readonly [string, string, string, string]>> = {
  CA: ['Amazon.ca', 'CAD', 'en_CA', 'www.amazon.ca'],
  US: ['Amazon.com', 'USD', 'en_US', 'www.amazon.com'],
  MX: ['Amazon.com.mx', 'MXN', 'es_MX', 'www.amazon.com.mx'],
  BR: ['Amazon.com.br', 'BRL', 'pt_BR', 'www.amazon.com.br'],
  IE: ['Amazon.ie', 'EUR', 'en_IE', 'www.amazon.ie'],
  ES: ['Amazon.es', 'EUR', 'es_ES', 'www.amazon.es'],
  UK: ['Amazon.co.uk', 'GBP', 'en_GB', 'www.amazon.co.uk'],
  FR: ['Amazon.fr', 'EUR', 'fr_FR', 'www.amazon.fr'],
  BE: ['Amazon.com.be', 'EUR', 'fr_BE', 'www.amazon.com.be'],
  NL: ['Amazon.nl', 'EUR', 'nl_NL', 'www.amazon.nl'],
  DE: ['Amazon.de', 'EUR', 'de_DE', 'www.amazon.de'],
  IT: ['Amazon.it', 'EUR', 'it_IT', 'www.amazon.it'],
  SE: ['Amazon.se', 'SEK', 'sv_SE', 'www.amazon.se'],
  ZA: ['Amazon.co.za', 'ZAR', 'en_ZA', 'www.amazon.co.za'],
  PL: ['Amazon.pl', 'PLN', 'pl_PL', 'www.amazon.pl'],
  EG: ['Amazon.eg', 'EGP', 'ar_EG', 'www.amazon.eg'],
  TR: ['Amazon.com.tr', 'TRY', 'tr_TR', 'www.amazon.com.tr'],
  SA: ['Amazon.sa', 'SAR', 'ar_AE', 'www.amazon.sa'],
  AE: ['Amazon.ae', 'AED', 'en_AE', 'www.amazon.ae'],
  IN: ['Amazon.in', 'INR', 'en_IN', 'www.amazon.in'],
  SG: ['Amazon.sg', 'SGD', 'en_SG', 'www.amazon.sg'],
  AU: ['Amazon.com.au', 'AUD', 'en_AU', 'www.amazon.com.au'],
  JP: ['Amazon.co.jp', 'JPY', 'ja_JP', 'www.amazon.co.jp'],
}

/**
 * Each seller gets its own participations, derived from its id: a stable subset of the region's marketplaces
 * (at least one) and a store name. So tokens of different sellers answer differently, as on Amazon, and
 * sp-connect's account fingerprint (a re-authorization must come from the same account) is testable.
 */
export function sellerParticipations(sellingPartnerId: string, region: Marketplace['region']) {
  const digest = createHash('sha256').update(sellingPartnerId).digest()
  const inRegion = MARKETPLACES.filter((mp) => mp.region === region)
  const chosen = inRegion.filter((_, index) => ((digest[index % digest.length] ?? 0) & 1) === 1)
  const marketplaces = chosen.length > 0 ? chosen : inRegion.slice(0, 1)
  const storeName = `Store ${digest.toString('hex').slice(0, 8).toUpperCase()}`
  return marketplaces.map((mp) => ({ ...participation(mp), storeName }))
}

function participation(mp: Marketplace) {
  const [name, currency, language, domain] = MARKETPLACE_DETAILS[mp.country] ?? [mp.country, '', '', '']
  return {
    marketplace: {
      id: mp.id,
      // Amazon's own API says GB where its tables say UK.
      countryCode: mp.country === 'UK' ? 'GB' : mp.country,
      name,
      defaultCurrencyCode: currency,
      defaultLanguageCode: language,
      domainName: domain,
    },
    participation: { isParticipating: true, hasSuspendedListings: false },
  }
}

function spapiJson(c: Context, status: 200 | 403 | 404, body: object): Response {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'x-amzn-RequestId': newRequestId(),
  }
  // Best effort on Amazon's side and only on 2xx, 400 and 404 (§6.2).
  if (status !== 403) headers['x-amzn-RateLimit-Limit'] = RATE_LIMIT
  if (status === 403) headers['x-amzn-ErrorType'] = 'AccessDeniedException'
  return c.body(JSON.stringify(body), status, headers)
}

function denied(c: Context, details: string): Response {
  return spapiJson(c, 403, {
    errors: [{ code: 'Unauthorized', message: 'Access to requested resource is denied.', details }],
  })
}

export function spapiRoutes(ctx: SimulatorContext): Hono {
  const app = new Hono()

  app.get(`/:host${MARKETPLACE_PARTICIPATIONS_PATH}`, (c, next) => {
    const host = spapiHostInfo(c.req.param('host'))
    if (!host) return next()
    const token = c.req.header('x-amz-access-token')
    if (token === undefined || token.trim() === '') return denied(c, SPAPI_DENIED.missing)
    const claims = verifyAccessToken(ctx.signingSecret, token.trim())
    if (!claims) return denied(c, SPAPI_DENIED.invalid)
    const sellingPartnerId = isGrantless(claims) ? undefined : claims.sp
    if (ctx.now() >= claims.exp || ctx.state.isForcedExpired(sellingPartnerId, claims.n)) {
      return denied(c, SPAPI_DENIED.expired)
    }
    // A grantless token carries no seller, so a seller operation is denied like a missing role.
    if (isGrantless(claims)) return denied(c, SPAPI_DENIED.noAccess)
    if (ctx.state.isRevoked({ sellingPartnerId: claims.sp, clientId: claims.c, serial: claims.gn })) {
      return denied(c, SPAPI_DENIED.invalid)
    }
    if (claims.r !== host.region) return denied(c, SPAPI_DENIED.noAccess)
    const payload = sellerParticipations(claims.sp, host.region)
    return spapiJson(c, 200, { payload })
  })

  // Any other path on an SP-API host: SP-API's not-found shape.
  app.all('/:host/*', (c, next) => {
    if (!spapiHostInfo(c.req.param('host'))) return next()
    return spapiJson(c, 404, { errors: [{ code: 'NotFound', message: 'Resource not found.' }] })
  })
  return app
}
