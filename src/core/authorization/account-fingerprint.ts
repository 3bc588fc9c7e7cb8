/**
 * Which seller account a token belongs to. The callback's `selling_partner_id` is only the browser's claim and
 * SP-API has no "who am I" operation, so sp-connect records a fingerprint of the account when it is first
 * connected: the marketplaces it participates in with its store name in each, from the Sellers API
 * (`getMarketplaceParticipations`), fetched with the new token. A re-authorization must come with a token whose
 * account shares at least one (marketplace, store name) pair with the recorded one; an exact match would turn
 * every new marketplace or renamed store into a false alarm (docs/decisions/0010-ownership.md).
 *
 * The fingerprint keeps only truncated SHA-256 hashes of the pairs, not the store names themselves.
 */
import type { AccountType, Region } from '../../domain/regions.ts'
import { sha256 } from '../encoding.ts'
import type { SpApiClient } from '../spapi/client.ts'

const PARTICIPATIONS_PATH = '/sellers/v1/marketplaceParticipations'
const VERSION = 'v1'
/** More than Amazon has marketplaces; a longer answer is not a participation list. */
const MAX_PAIRS = 64

/** Answers which account a fresh access token belongs to, as a fingerprint (or null when it cannot tell). */
export interface AccountIdentity {
  fingerprint(region: Region, accountType: AccountType, accessToken: string): Promise<string | null>
}

interface SellersApiAccountIdentityOptions {
  /** Calls `getMarketplaceParticipations` with the fresh token. */
  readonly spapi: SpApiClient
}

/** The Sellers API implementation. Vendor accounts have no Sellers API, so they get no fingerprint. */
export class SellersApiAccountIdentity implements AccountIdentity {
  readonly #spapi: SpApiClient

  constructor(options: SellersApiAccountIdentityOptions) {
    this.#spapi = options.spapi
  }

  async fingerprint(region: Region, accountType: AccountType, accessToken: string): Promise<string | null> {
    if (accountType !== 'seller') return null
    let response: Awaited<ReturnType<SpApiClient['callWithToken']>>
    try {
      response = await this.#spapi.callWithToken(region, accessToken, {
        method: 'GET',
        path: PARTICIPATIONS_PATH,
      })
    } catch {
      return null
    }
    if (response.status !== 200) return null
    return fingerprintFromParticipations(response.body)
  }
}

/** The fingerprint of a `getMarketplaceParticipations` response body, or null if it is not one. */
function fingerprintFromParticipations(body: string): string | null {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return null
  }
  const payload = (parsed as { payload?: unknown } | null)?.payload
  if (!Array.isArray(payload) || payload.length === 0 || payload.length > MAX_PAIRS) return null
  const pairs = new Set<string>()
  for (const entry of payload) {
    const marketplaceId = (entry as { marketplace?: { id?: unknown } } | null)?.marketplace?.id
    const storeName = (entry as { storeName?: unknown } | null)?.storeName
    if (typeof marketplaceId !== 'string' || marketplaceId === '') return null
    const name = typeof storeName === 'string' ? storeName.trim().toLowerCase() : ''
    pairs.add(sha256(`${marketplaceId}\n${name}`).slice(0, 32))
  }
  return `${VERSION}:${[...pairs].sort().join(',')}`
}

/** True when two fingerprints share at least one (marketplace, store name) pair. */
export function sameAccount(recorded: string, presented: string): boolean {
  const left = parse(recorded)
  const right = parse(presented)
  if (left === undefined || right === undefined) return false
  for (const pair of right) if (left.has(pair)) return true
  return false
}

function parse(fingerprint: string): Set<string> | undefined {
  const [version, list] = fingerprint.split(':', 2)
  if (version !== VERSION || !list) return undefined
  return new Set(list.split(','))
}
