/**
 * Both SP-API authorization workflows, from the first redirect to a stored, encrypted connection.
 *
 * The callback checks everything it can before it calls LWA, so bad input costs no token-endpoint call:
 * parameters, then the state record (exists, unexpired, unconsumed, bound to this browser). From there on the
 * state is spent whatever happens (a cancelled or refused flow cannot be resumed), and ownership decides:
 * the tenant comes from the server-side record of the flow, never from the browser, and a flow may create a
 * connection for its tenant or re-authorize one its tenant owns, nothing else. Only then is the code exchanged,
 * and a re-authorization must also prove, with the new token, that it is the same seller account
 * (account-fingerprint.ts).
 */
import { isSpConnectError, SpConnectError } from '../../domain/errors.ts'
import type { AccountType, Region } from '../../domain/regions.ts'
import type { AuthFlow, AuthStateRecord, ConnectionRecord, Store } from '../../store/store.ts'
import type { Keyring } from '../crypto/keyring.ts'
import type { Deps } from '../deps.ts'
import { newId } from '../encoding.ts'
import type { EventRecorder } from '../events/events.ts'
import { type LwaClient, wasNotSent } from '../lwa/client.ts'
import type { LwaTokens } from '../lwa/types.ts'
import { sealToken } from '../tokens/sealed.ts'
import { type AccountIdentity, sameAccount } from './account-fingerprint.ts'
import { buildAppstoreRedirect, buildConsentUrl } from './consent-url.ts'
import {
  generateBrowserBinding,
  generateState,
  hashesEqual,
  hashSecretValue,
  isWellFormedRandomValue,
} from './state.ts'

/** Amazon requires sellers to re-authorize public apps every 365 days (spapi-facts.md §2.2). */
const REAUTHORIZATION_INTERVAL_MS = 365 * 24 * 60 * 60 * 1000

const SELLING_PARTNER_ID = /^[A-Za-z0-9]{1,64}$/
// LWA codes are short opaque strings; accept the URL-safe printable set and a generous length.
const OAUTH_CODE = /^[A-Za-z0-9._~+/=|-]{1,1024}$/
const CALLBACK_PARAMS = [
  'state',
  'selling_partner_id',
  'spapi_oauth_code',
  'mws_auth_token',
  'error',
  'error_description',
] as const
/**
 * Parameters Amazon never sends to the redirect URI that would change what the response means if we read
 * them: an issuer (mix-up defence, RFC 9207), a plain OAuth `code`, or implicit/hybrid-flow tokens. Their
 * presence means the URL was crafted, so the callback is refused.
 */
const FOREIGN_PARAMS = [
  'iss',
  'code',
  'access_token',
  'id_token',
  'token_type',
  'refresh_token',
  'expires_in',
  'response',
] as const
/** The `error` values that mean the seller said no; any other value is an unknown failure, not a cancel. */
const CANCELLATION_ERRORS = new Set(['access_denied'])

interface AuthorizationSettings {
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

interface WebsiteFlowInput {
  readonly region: Region
  readonly accountType: AccountType
  readonly marketplace?: string | undefined
  readonly tenantId?: string | null | undefined
  readonly returnTo?: string | null | undefined
  /** A reconnect: the connection this flow may re-authorize (and no other). */
  readonly connectionId?: string | null | undefined
  /** The binding cookie the browser already has, if any (reused so parallel tabs do not clobber each other). */
  readonly browserBinding?: string | undefined
}

/** A confirmed Login-URI request continuing to Amazon's `amazon_callback_uri` (see login-requests.ts). */
interface AppstoreStateInput {
  readonly amazonCallbackUri: string
  readonly amazonState: string
  readonly draft: boolean
  readonly sellingPartnerId: string
  readonly region: Region
  readonly tenantId: string
  readonly browserBinding: string
}

interface CallbackInput {
  readonly query: URLSearchParams
  readonly browserBinding: string | undefined
}

interface CallbackResult {
  readonly connection: ConnectionRecord
  readonly outcome: 'created' | 'reauthorized'
  readonly returnTo: string | null
}

interface AuthorizationFlowsOptions {
  readonly settings: AuthorizationSettings
  readonly store: Store
  readonly keyring: Keyring
  readonly lwa: LwaClient
  readonly events: EventRecorder
  readonly identity: AccountIdentity
}

export class AuthorizationFlows {
  readonly #settings: AuthorizationSettings
  readonly #store: Store
  readonly #keyring: Keyring
  readonly #lwa: LwaClient
  readonly #deps: Deps
  readonly #events: EventRecorder
  readonly #identity: AccountIdentity

  constructor(options: AuthorizationFlowsOptions, deps: Deps) {
    this.#settings = options.settings
    this.#store = options.store
    this.#keyring = options.keyring
    this.#lwa = options.lwa
    this.#events = options.events
    this.#identity = options.identity
    this.#deps = deps
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
      connectionId: input.connectionId ?? null,
    })
    return { location: consentUrl.href, browserBinding }
  }

  /**
   * Appstore workflow and yearly re-authorization, after the app's signed-in user approved the Login-URI request
   * for a tenant and confirmed it in this browser (login-requests.ts): create our state for that tenant and
   * seller, and send the browser back to Amazon's `amazon_callback_uri`.
   */
  async startAppstoreState(input: AppstoreStateInput): Promise<FlowStart> {
    const state = generateState(this.#deps.randomBytes)
    const browserBinding = this.#bindingFor(input.browserBinding)
    // The Appstore flow is for sellers only (spapi-facts.md §1.1).
    await this.#saveState(state, 'appstore', browserBinding, {
      region: input.region,
      accountType: 'seller',
      tenantId: input.tenantId,
      returnTo: null,
      sellingPartnerId: input.sellingPartnerId,
      connectionId: null,
    })
    const location = buildAppstoreRedirect({
      amazonCallbackUri: new URL(input.amazonCallbackUri),
      amazonState: input.amazonState,
      state,
      redirectUri: this.#settings.redirectUri,
      draftApp: this.#settings.draftApp || input.draft,
    })
    return { location: location.href, browserBinding }
  }

  /** The OAuth Redirect URI: validate, consume the state, check ownership, exchange the code, store. */
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

    // The state is valid and this is its browser: from here on it is spent whatever the outcome, so a
    // cancelled, refused or failed flow can never be resumed with the same state.
    if (!(await this.#store.consumeAuthState(stateHash, now))) throw new SpConnectError('state_used')

    const foreign = FOREIGN_PARAMS.find((name) => query.has(name))
    if (foreign !== undefined) {
      throw new SpConnectError('callback_invalid', { detail: `unexpected parameter ${foreign}` })
    }
    const code = query.get('spapi_oauth_code')
    const error = query.get('error')
    if (error !== null) {
      // Amazon documents no error redirect; an error that also carries a code is not something it sends.
      if (code !== null)
        throw new SpConnectError('callback_invalid', { detail: 'error together with a code' })
      if (CANCELLATION_ERRORS.has(error)) throw new SpConnectError('authorization_cancelled')
      throw new SpConnectError('authorization_failed', { detail: 'unknown error value' })
    }
    const sellingPartnerId = query.get('selling_partner_id')
    if (code === null || !OAUTH_CODE.test(code))
      throw new SpConnectError('callback_invalid', { detail: 'bad code' })
    if (sellingPartnerId === null || !SELLING_PARTNER_ID.test(sellingPartnerId)) {
      throw new SpConnectError('callback_invalid', { detail: 'bad selling_partner_id' })
    }
    if (record.sellingPartnerId !== null && record.sellingPartnerId !== sellingPartnerId) {
      // The browser claims a seller other than the one the app's user approved and confirmed: a tampered
      // callback, audited like every other ownership refusal (naming the claimed seller's owner, if any).
      const claimed = await this.#store.findConnection(sellingPartnerId, record.region)
      await this.#events.record('connection.conflict', claimed?.id ?? null, {
        flow: record.flow,
        reason: 'seller_differs_from_login_request',
        selling_partner_id: sellingPartnerId,
        region: record.region,
        owner_tenant_id: claimed?.tenantId ?? null,
        requested_tenant_id: record.tenantId,
      })
      throw new SpConnectError('callback_invalid', {
        detail: 'selling partner differs from the Login URI request',
      })
    }
    const existing = await this.#ownedTarget(record, sellingPartnerId)

    const tokens = await this.#exchange(code)
    const result = await this.#saveConnection({
      sellingPartnerId,
      region: record.region,
      accountType: existing?.accountType ?? record.accountType,
      tenantId: record.tenantId,
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
      // The request left and no answer came (a timeout, a reset connection): LWA may have redeemed the code,
      // and a second redemption could revoke what the first produced, so the seller starts again instead
      if (isSpConnectError(error, 'lwa_unreachable') && !wasNotSent(error)) {
        this.#deps.logger.warn(
          { code: 'code_exchange_unknown', cause: error.code, detail: error.detail },
          'authorization code exchange outcome unknown; the seller must start again',
        )
        throw new SpConnectError('code_exchange_unknown', {
          detail: 'the code was sent to LWA and no answer came; it may or may not have been redeemed',
          cause: error,
        })
      }
      throw error
    }
  }

  /**
   * The connection this flow may change, if any, or a refusal. A reconnect state names its connection, and the
   * callback must be for that very seller and region. Otherwise the seller's existing connection (if any) must
   * belong to the flow's tenant: never another tenant's, never a tenantless one for a tenant's flow, never a
   * tenant's for a tenantless flow. A refusal changes nothing and is recorded as `connection.conflict`.
   */
  async #ownedTarget(
    record: AuthStateRecord,
    sellingPartnerId: string,
  ): Promise<ConnectionRecord | undefined> {
    if (record.connectionId !== null) {
      const target = await this.#store.getConnection(record.connectionId)
      if (
        !target ||
        target.sellingPartnerId !== sellingPartnerId ||
        target.region !== record.region ||
        target.tenantId !== record.tenantId
      ) {
        await this.#conflict(record.flow, target ?? null, {
          sellingPartnerId,
          region: record.region,
          requestedTenantId: record.tenantId,
          reason: 'reconnect_for_another_account',
        })
      }
      return target
    }
    const existing = await this.#store.findConnection(sellingPartnerId, record.region)
    if (existing && existing.tenantId !== record.tenantId) {
      await this.#conflict(record.flow, existing, {
        sellingPartnerId,
        region: record.region,
        requestedTenantId: record.tenantId,
        reason: 'owned_by_another_tenant',
      })
    }
    return existing
  }

  async #conflict(
    flow: AuthFlow | 'import',
    connection: ConnectionRecord | null,
    input: { sellingPartnerId: string; region: Region; requestedTenantId: string | null; reason: string },
  ): Promise<never> {
    await this.#events.record('connection.conflict', connection?.id ?? null, {
      flow,
      reason: input.reason,
      selling_partner_id: input.sellingPartnerId,
      region: input.region,
      owner_tenant_id: connection?.tenantId ?? null,
      requested_tenant_id: input.requestedTenantId,
    })
    throw new SpConnectError('connection_tenant_conflict', { detail: input.reason })
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
    const fingerprint = await this.#identity.fingerprint(
      input.region,
      input.accountType,
      input.tokens.accessToken,
    )
    const now = this.#deps.now()
    const authorization = {
      accountType: input.accountType,
      tenantId: input.tenantId,
      accessTokenExpiresAt: input.requestedAt + input.tokens.expiresIn * 1000,
      authorizedAt: now,
      reauthorizeBy: now + REAUTHORIZATION_INTERVAL_MS,
      accountFingerprint: fingerprint,
      now,
    }
    const seal = (id: string) => ({
      refreshTokenCiphertext: sealToken(this.#keyring, id, 'refresh_token', input.tokens.refreshToken),
      accessTokenCiphertext: sealToken(this.#keyring, id, 'access_token', input.tokens.accessToken),
    })
    // Two attempts: a first-time insert can lose a race with another callback for the same seller, in which
    // case the winner's row exists and we re-authorize it instead (if it is ours to re-authorize).
    for (let attempt = 0; attempt < 2; attempt++) {
      const existing = await this.#store.findConnection(input.sellingPartnerId, input.region)
      if (existing) {
        if (existing.tenantId !== input.tenantId) {
          await this.#conflict(input.flow, existing, {
            sellingPartnerId: input.sellingPartnerId,
            region: input.region,
            requestedTenantId: input.tenantId,
            reason: 'owned_by_another_tenant',
          })
        }
        await this.#checkSameAccount(existing, fingerprint, input.flow)
        // Conditional on the tenant we checked: a connection never moves between tenants.
        const connection = await this.#store.reauthorizeConnection(existing.id, {
          ...authorization,
          ...seal(existing.id),
        })
        if (!connection) continue
        await this.#events.record('connection.reauthorized', connection.id, { flow: input.flow })
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
        if (fingerprint === null && input.accountType === 'seller') {
          this.#deps.logger.warn({ connectionId: id }, 'seller account fingerprint unavailable at connect')
        }
        await this.#events.record('connection.created', connection.id, { flow: input.flow })
        return { connection, outcome: 'created' }
      }
    }
    throw new SpConnectError('internal', {
      detail: 'could not store the connection after a concurrent write',
    })
  }

  /**
   * A re-authorization must come from the same seller account as the connection: its new token's fingerprint
   * must share a (marketplace, store) pair with the recorded one. When the account cannot be checked now, the
   * new token is not stored (fail closed); a connection recorded without a fingerprint accepts the new one.
   */
  async #checkSameAccount(
    existing: ConnectionRecord,
    fingerprint: string | null,
    flow: AuthFlow | 'import',
  ): Promise<void> {
    const recorded = existing.accountFingerprint
    if (recorded === null) return
    if (fingerprint === null) throw new SpConnectError('account_verification_failed')
    if (sameAccount(recorded, fingerprint)) return
    await this.#events.record('connection.identity_mismatch', existing.id, {
      flow,
      selling_partner_id: existing.sellingPartnerId,
      region: existing.region,
      tenant_id: existing.tenantId,
    })
    throw new SpConnectError('account_mismatch')
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
      connectionId: string | null
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
}
