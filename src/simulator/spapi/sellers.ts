/**
 * Sellers API v1: getMarketplaceParticipations and getAccount, answered from data derived from the seller id.
 */
import { createHash } from 'node:crypto'
import { MARKETPLACES, type Marketplace } from '../../domain/regions.ts'
import type { OperationImpl, SellerCaller } from './call.ts'
import { spapiResponse } from './respond.ts'

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

const BUSINESS_TYPES = ['PRIVATE_LIMITED', 'SOLE_PROPRIETORSHIP', 'PUBLIC_LISTED', 'INDIVIDUAL'] as const

/** The Sellers API's `Account`: participations plus a business and contact derived from the seller id. */
function sellerAccount(sellingPartnerId: string, region: Marketplace['region']) {
  const digest = createHash('sha256').update(`account\n${sellingPartnerId}`).digest()
  const participations = sellerParticipations(sellingPartnerId, region)
  const home = participations[0]?.marketplace.countryCode ?? 'US'
  const businessType = BUSINESS_TYPES[(digest[0] ?? 0) % BUSINESS_TYPES.length] ?? 'PRIVATE_LIMITED'
  const suffix = digest.toString('hex').slice(0, 6).toUpperCase()
  const address = {
    addressLine1: `${1 + ((digest[1] ?? 0) % 900)} Commerce Way`,
    city: 'Springfield',
    postalCode: '10001',
    countryCode: home,
  }
  return {
    businessType,
    sellingPlan: businessType === 'INDIVIDUAL' ? 'INDIVIDUAL' : 'PROFESSIONAL',
    marketplaceParticipationList: participations.map(({ marketplace, storeName, participation }) => ({
      marketplace: {
        id: marketplace.id,
        name: marketplace.name,
        countryCode: marketplace.countryCode,
        domainName: marketplace.domainName,
      },
      storeName,
      participation,
    })),
    business: {
      name: `Seller ${suffix} Ltd`,
      registeredBusinessAddress: address,
      companyRegistrationNumber: String(digest.readUInt32BE(2)),
    },
    primaryContact: { name: `Contact ${suffix}`, address },
  }
}

export const SELLERS_OPERATIONS: Readonly<Record<string, OperationImpl<SellerCaller>>> = {
  getMarketplaceParticipations: {
    auth: 'seller',
    handle: (call) =>
      spapiResponse(
        call.c,
        200,
        { payload: sellerParticipations(call.caller.sellingPartnerId, call.host.region) },
        call.rate,
      ),
  },
  'sellers.v1.getAccount': {
    auth: 'seller',
    handle: (call) =>
      spapiResponse(
        call.c,
        200,
        { payload: sellerAccount(call.caller.sellingPartnerId, call.host.region) },
        call.rate,
      ),
  },
}
