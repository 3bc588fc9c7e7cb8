/**
 * Both SP-API authorization workflows, from the first redirect to a stored, encrypted connection.
 *
 * The callback checks everything it can before it calls LWA, so bad input costs no token-endpoint call and
 * changes nothing stored: parameters, then the state record (exists, unexpired, unconsumed, bound to this
 * browser), then tenant ownership, and only then consumes the state atomically and exchanges the code.
 */
import type { AuthFlow, ConnectionRecord, Store } from '../../store/store.ts'
import type { Keyring } from '../crypto/keyring.ts'
import type { Deps } from '../deps.ts'
import { newId } from '../encoding.ts'
import { isSpConnectError, SpConnectError } from '../errors.ts'
import type { EventRecorder } from '../events/events.ts'
import type { LwaClient } from '../lwa/client.ts'
import type { LwaTokens } from '../lwa/types.ts'
import { type AccountType, MARKETPLACES, type Region } from '../regions.ts'
import { sealToken } from '../tokens/sealed.ts'
import {
  buildAppstoreRedirect,
  buildConsentUrl,
  centralBaseUrl,
  parseAmazonCallbackUri,
} from './consent-url.ts'
import {
  generateBrowserBinding,
  generateState,
  hashesEqual,
  hashSecretValue,
  isWellFormedRandomValue,
} from './state.ts'

/** Amazon requires sellers to re-authorize public apps every 365 days (spapi-facts.md §2.2). */
export const REAUTHORIZATION_INTERVAL_MS = 365 * 24 * 60 * 60 * 1000

const SELLING_PARTNER_ID = /^[A-Za-z0-9]{1,64}$/
// LWA codes are short opaque strings; accept the URL-safe printable set and a generous length.
const OAUTH_CODE = /^[A-Za-z0-9._~+/=|-]{1,1024}$/
const AMAZON_STATE = /^[\x21-\x7e]{1,2048}$/
const CALLBACK_PARAMS = [
  'state',
  'selling_partner_id',
  'spapi_oauth_code',
  'mws_auth_token',
  'error',
] as const

export interface AuthorizationSettings {
  readonly appId: string
  readonly redirectUri: string
  readonly draftApp: boolean
  readonly centralUrlTemplate: string
  readonly stateTtlMs: number
}

export interface FlowStart {
  /** Where to send the browser. */
  readonly location: string
  /** The browser-binding cookie value to set (the existing one, or a new one). */
  readonly browserBinding: string
}

export interface WebsiteFlowInput {
  readonly region: Region
  readonly accountType: AccountType
  readonly marketplace?: string | undefined
  readonly tenantId?: string | null | undefined
  readonly returnTo?: string | null | undefined
  /** The binding cookie the browser already has, if any (reused so parallel tabs do not clobber each other). */
  readonly browserBinding?: string | undefined
}

export interface AppstoreFlowInput {
  readonly query: URLSearchParams
  readonly browserBinding?: string | undefined
}

export interface CallbackInput {
  readonly query: URLSearchParams
  readonly browserBinding: string | undefined
}

export interface CallbackResult {
  readonly connection: ConnectionRecord
  readonly outcome: 'created' | 'reauthorized'
  readonly returnTo: string | null
}

export class AuthorizationFlows {
  readonly #settings: AuthorizationSettings
  readonly #store: Store
  readonly #keyring: Keyring
  readonly #lwa: LwaClient
  readonly #deps: Deps
  readonly #events: EventRecorder

  constructor(
    settings: AuthorizationSettings,
    store: Store,
    keyring: Keyring,
    lwa: LwaClient,
    events: EventRecorder,
    deps: Deps,
  ) {
    this.#settings = settings
    this.#store = store
    this.#keyring = keyring
    this.#lwa = lwa
    this.#deps = deps
    this.#events = events
  }

  /** Website workflow step 2: create a state and return the consent URL on Seller/Vendor Central. */
  async startWebsiteFlow(input: WebsiteFlowInput): Promise<FlowStart> {
    const state = generateState(this.#deps.randomBytes)
    const consentUrl = buildConsentUrl({
      appId: this.#settings.appId,
      state,
      region: input.region,
      accountType: input.accountType,
      marketplace: input.marketplace,
      draftApp: this.#settings.draftApp,
      redirectUri: this.#settings.redirectUri,
      centralUrlTemplate: this.#settings.centralUrlTemplate,
    })
    const browserBinding = this.#bindingFor(input.browserBinding)
    await this.#saveState(state, 'website', browserBinding, {
      region: input.region,
      accountType: input.accountType,
      tenantId: input.tenantId ?? null,
      returnTo: input.returnTo ?? null,
      sellingPartnerId: null,
    })
    return { location: consentUrl.href, browserBinding }
  }

  /**
   * Appstore workflow and yearly re-authorization: Amazon opened our Login URI. Check where Amazon wants the
   * browser back, create our own state, and send the browser to `amazon_callback_uri`.
   */
  async startAppstoreFlow(input: AppstoreFlowInput): Promise<FlowStart> {
    const amazonCallbackUri = single(input.query, 'amazon_callback_uri', 'amazon_callback_invalid')
    const amazonState = single(input.query, 'amazon_state', 'amazon_callback_invalid')
    const sellingPartnerId = single(input.query, 'selling_partner_id', 'amazon_callback_invalid')
    if (!AMAZON_STATE.test(amazonState) || !SELLING_PARTNER_ID.test(sellingPartnerId)) {
      throw new SpConnectError('amazon_callback_invalid', {
        detail: 'malformed amazon_state or selling_partner_id',
      })
    }
    const callbackUrl = parseAmazonCallbackUri(amazonCallbackUri, this.#settings.centralUrlTemplate)
    // Amazon's request names no region: the Central host of the confirm URL tells it; for amazon.com-style
    // hosts, an existing connection of this seller does, else North America.
    const region =
      regionOfCentralUrl(callbackUrl, this.#settings.centralUrlTemplate) ??
      (await this.#findAnyRegion(sellingPartnerId))?.region ??
      'na'
    const existing = await this.#store.findConnection(sellingPartnerId, region)
    const state = generateState(this.#deps.randomBytes)
    const browserBinding = this.#bindingFor(input.browserBinding)
    // The Appstore flow is for sellers only (spapi-facts.md §1.1).
    await this.#saveState(state, 'appstore', browserBinding, {
      region,
      accountType: 'seller',
      tenantId: existing?.tenantId ?? null,
      returnTo: null,
      sellingPartnerId,
    })
    const location = buildAppstoreRedirect({
      amazonCallbackUri: callbackUrl,
      amazonState,
      state,
      redirectUri: this.#settings.redirectUri,
      draftApp: this.#settings.draftApp,
    })
    return { location: location.href, browserBinding }
  }

  /** The OAuth Redirect URI: validate, consume the state, exchange the code, store the connection. */
  async completeCallback(input: CallbackInput): Promise<CallbackResult> {
    const { query } = input
    for (const name of CALLBACK_PARAMS) {
      if (query.getAll(name).length > 1)
        throw new SpConnectError('callback_invalid', { detail: `repeated ${name}` })
    }
    const stateValue = query.get('state')
    if (stateValue === null || stateValue === '') throw new SpConnectError('state_missing')
    if (!isWellFormedRandomValue(stateValue))
      throw new SpConnectError('state_invalid', { detail: 'malformed state' })

    const stateHash = hashSecretValue(stateValue)
    const record = await this.#store.getAuthState(stateHash)
    const now = this.#deps.now()
    if (!record) throw new SpConnectError('state_invalid', { detail: 'unknown state' })
    if (record.consumedAt !== null) throw new SpConnectError('state_used')
    if (record.expiresAt <= now) throw new SpConnectError('state_expired')
    const binding = input.browserBinding
    if (
      !binding ||
      !isWellFormedRandomValue(binding) ||
      !hashesEqual(hashSecretValue(binding), record.browserBindingHash)
    ) {
      throw new SpConnectError('state_browser_mismatch')
    }

    // Amazon documents no error redirect; the simulator's Cancel sends `error` without a code.
    const code = query.get('spapi_oauth_code')
    if (query.has('error') && code === null) throw new SpConnectError('authorization_cancelled')
    const sellingPartnerId = query.get('selling_partner_id')
    if (code === null || !OAUTH_CODE.test(code))
      throw new SpConnectError('callback_invalid', { detail: 'bad code' })
    if (sellingPartnerId === null || !SELLING_PARTNER_ID.test(sellingPartnerId)) {
      throw new SpConnectError('callback_invalid', { detail: 'bad selling_partner_id' })
    }
    if (record.sellingPartnerId !== null && record.sellingPartnerId !== sellingPartnerId) {
      throw new SpConnectError('callback_invalid', {
        detail: 'selling partner differs from the Login URI request',
      })
    }
    const existing = await this.#store.findConnection(sellingPartnerId, record.region)
    if (
      existing &&
      existing.tenantId !== null &&
      record.tenantId !== null &&
      existing.tenantId !== record.tenantId
    ) {
      throw new SpConnectError('connection_tenant_conflict')
    }

    if (!(await this.#store.consumeAuthState(stateHash, now))) throw new SpConnectError('state_used')

    const tokens = await this.#exchange(code)
    const result = await this.#saveConnection({
      sellingPartnerId,
      region: record.region,
      accountType: record.accountType,
      tenantId: record.tenantId ?? existing?.tenantId ?? null,
      tokens,
      requestedAt: now,
      flow: record.flow,
    })
    return { ...result, returnTo: record.returnTo }
  }

  /**
   * Stores a refresh token obtained outside the consent flow (self-authorization, migration from another
   * tool) after proving it works with one refresh. Nothing is stored if the refresh fails.
   */
  async addVerifiedRefreshToken(input: {
    sellingPartnerId: string
    region: Region
    accountType: AccountType
    tenantId: string | null
    refreshToken: string
  }): Promise<CallbackResult> {
    if (!SELLING_PARTNER_ID.test(input.sellingPartnerId)) {
      throw new SpConnectError('invalid_request', { detail: 'selling partner id must be letters and digits' })
    }
    const requestedAt = this.#deps.now()
    const refreshed = await this.#lwa.refresh(input.refreshToken)
    const tokens = { ...refreshed, refreshToken: refreshed.refreshToken ?? input.refreshToken }
    const result = await this.#saveConnection({ ...input, tokens, requestedAt, flow: 'import' })
    return { ...result, returnTo: null }
  }

  async #exchange(code: string): Promise<LwaTokens & { refreshToken: string }> {
    try {
      return await this.#lwa.exchangeCode(code, this.#settings.redirectUri)
    } catch (error) {
      if (isSpConnectError(error, 'lwa_invalid_grant')) {
        throw new SpConnectError('code_rejected', {
          detail: 'LWA answered invalid_grant to the code',
          cause: error,
        })
      }
      throw error
    }
  }

  async #saveConnection(input: {
    sellingPartnerId: string
    region: Region
    accountType: AccountType
    tenantId: string | null
    tokens: LwaTokens & { refreshToken: string }
    requestedAt: number
    flow: AuthFlow | 'import'
  }): Promise<{ connection: ConnectionRecord; outcome: 'created' | 'reauthorized' }> {
    const now = this.#deps.now()
    const authorization = {
      accountType: input.accountType,
      tenantId: input.tenantId,
      accessTokenExpiresAt: input.requestedAt + input.tokens.expiresIn * 1000,
      authorizedAt: now,
      reauthorizeBy: now + REAUTHORIZATION_INTERVAL_MS,
      now,
    }
    const seal = (id: string) => ({
      refreshTokenCiphertext: sealToken(this.#keyring, id, 'refresh_token', input.tokens.refreshToken),
      accessTokenCiphertext: sealToken(this.#keyring, id, 'access_token', input.tokens.accessToken),
    })
    // Two attempts: a first-time insert can lose a race with another callback for the same seller, in which
    // case the winner's row exists and we re-authorize it instead.
    for (let attempt = 0; attempt < 2; attempt++) {
      const existing = await this.#store.findConnection(input.sellingPartnerId, input.region)
      if (existing) {
        const connection = await this.#store.reauthorizeConnection(existing.id, {
          ...authorization,
          // A re-authorization that names no tenant (Appstore, import) keeps the connection's owner.
          tenantId: input.tenantId ?? existing.tenantId,
          ...seal(existing.id),
        })
        if (!connection) break
        await this.#events.record('connection.reauthorized', connection.id, {
          flow: input.flow,
        })
        return { connection, outcome: 'reauthorized' }
      }
      const id = newId('con', this.#deps.randomBytes)
      const connection = await this.#store.insertConnection({
        id,
        sellingPartnerId: input.sellingPartnerId,
        region: input.region,
        ...authorization,
        ...seal(id),
      })
      if (connection) {
        await this.#events.record('connection.created', connection.id, { flow: input.flow })
        return { connection, outcome: 'created' }
      }
    }
    throw new SpConnectError('internal', {
      detail: 'could not store the connection after a concurrent write',
    })
  }

  async #saveState(
    state: string,
    flow: AuthFlow,
    browserBinding: string,
    fields: {
      region: Region
      accountType: AccountType
      tenantId: string | null
      returnTo: string | null
      sellingPartnerId: string | null
    },
  ): Promise<void> {
    const now = this.#deps.now()
    await this.#store.insertAuthState({
      stateHash: hashSecretValue(state),
      flow,
      ...fields,
      browserBindingHash: hashSecretValue(browserBinding),
      createdAt: now,
      expiresAt: now + this.#settings.stateTtlMs,
      consumedAt: null,
    })
  }

  #bindingFor(existing: string | undefined): string {
    return existing && isWellFormedRandomValue(existing)
      ? existing
      : generateBrowserBinding(this.#deps.randomBytes)
  }

  async #findAnyRegion(sellingPartnerId: string): Promise<ConnectionRecord | undefined> {
    for (const region of ['na', 'eu', 'fe'] as const) {
      const found = await this.#store.findConnection(sellingPartnerId, region)
      if (found) return found
    }
    return undefined
  }
}

function single(query: URLSearchParams, name: string, code: 'amazon_callback_invalid'): string {
  const values = query.getAll(name)
  const value = values[0]
  if (values.length !== 1 || value === undefined || value === '') {
    throw new SpConnectError(code, { detail: `${name} missing or repeated` })
  }
  return value
}

/** The region of the Seller/Vendor Central host a URL is on, if it is on one. */
function regionOfCentralUrl(url: URL, centralUrlTemplate: string): Region | undefined {
  for (const mp of MARKETPLACES) {
    for (const host of [mp.sellerCentralHost, mp.vendorCentralHost]) {
      if (host && url.href.startsWith(`${centralBaseUrl(centralUrlTemplate, host)}/`)) return mp.region
    }
  }
  return undefined
}
