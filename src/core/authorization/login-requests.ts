/**
 * The Login URI (Appstore workflow and yearly re-authorization) as Amazon intends it: the seller is handed to
 * the app's own sign-in before anything is linked, and a seller account is linked to a tenant only by a
 * signed-in user who said so.
 *
 * 1. `start`: Amazon opened `/login`. Check its parameters, record a pending request (10 minutes, single use,
 *    bound to this browser) and send the browser to the app's sign-in page with `sp_connect_login=<id>`.
 * 2. `approve` (server to server, the app's backend with an API key): the app signed its user in and says which
 *    tenant the request is for. Answers a one-time `redirect_url` for the browser.
 * 3. `openConfirmation`: in the same browser, sp-connect shows "Connect Amazon seller account A… to <tenant>?"
 *    with a CSRF token.
 * 4. `confirm` / `cancel`: only Confirm creates an OAuth state for that tenant and continues to Amazon's
 *    `amazon_callback_uri`; the callback then applies the same ownership rules as every flow.
 *
 * `reject` and expiry end a request at any point before Confirm. Every value the browser carries (the id, the
 * continue token, the CSRF token, the binding cookie) is 256 random bits and stored only as a SHA-256 hash.
 */
import { SpConnectError } from '../../domain/errors.ts'
import { MARKETPLACES, type Region } from '../../domain/regions.ts'
import type { LoginRequestRecord } from '../../store/login-request-store.ts'
import type { Store } from '../../store/store.ts'
import type { Deps } from '../deps.ts'
import type { EventRecorder } from '../events/events.ts'
import { centralBaseUrl, parseAmazonCallbackUri } from './consent-url.ts'
import type { AuthorizationFlows, FlowStart } from './flows.ts'
import {
  generateBrowserBinding,
  generateState,
  hashesEqual,
  hashSecretValue,
  isWellFormedRandomValue,
} from './state.ts'

const LOGIN_REQUEST_TTL_MS = 10 * 60 * 1000

const SELLING_PARTNER_ID = /^[A-Za-z0-9]{1,64}$/
const AMAZON_STATE = /^[\x21-\x7e]{1,2048}$/
const LOGIN_PARAMS = ['amazon_callback_uri', 'amazon_state', 'selling_partner_id', 'version'] as const

interface LoginRequestSettings {
  /** The app's sign-in page (`SP_CONNECT_APP_SIGNIN_URL`); null when the Login URI is not set up. */
  readonly signInUrl: string | null
  /** This service's public base URL, for the approval's redirect URL. */
  readonly publicUrl: string
  readonly centralUrlTemplate: string
}

/** What the app's backend and the confirmation page may know about a request. */
export interface LoginRequestView {
  /** `expired` for an open request past its 10 minutes. */
  readonly status: LoginRequestRecord['status'] | 'expired'
  readonly sellingPartnerId: string
  readonly region: Region
  readonly tenantId: string | null
  readonly tenantName: string | null
  readonly expiresAt: number
  /** True when the seller is already connected to this tenant (the request re-authorizes it). */
  readonly reauthorization: boolean
}

/** Which tenants a caller may see: null for every tenant. */
interface Visibility {
  readonly tenants: readonly string[] | null
}
const ALL_TENANTS: Visibility = { tenants: null }

interface LoginRequestsOptions {
  readonly settings: LoginRequestSettings
  readonly store: Store
  readonly flows: AuthorizationFlows
  readonly events: EventRecorder
}

export class LoginRequests {
  readonly #settings: LoginRequestSettings
  readonly #store: Store
  readonly #flows: AuthorizationFlows
  readonly #events: EventRecorder
  readonly #deps: Pick<Deps, 'now' | 'randomBytes'>

  constructor(options: LoginRequestsOptions, deps: Pick<Deps, 'now' | 'randomBytes'>) {
    this.#settings = options.settings
    this.#store = options.store
    this.#flows = options.flows
    this.#events = options.events
    this.#deps = deps
  }

  /** Step 1: Amazon opened the Login URI. Returns where to send the browser and its binding cookie. */
  async start(input: { query: URLSearchParams; browserBinding?: string | undefined }): Promise<FlowStart> {
    const { query } = input
    for (const name of LOGIN_PARAMS) {
      if (query.getAll(name).length > 1)
        throw new SpConnectError('amazon_callback_invalid', { detail: `repeated ${name}` })
    }
    const amazonCallbackUri = required(query, 'amazon_callback_uri')
    const amazonState = required(query, 'amazon_state')
    const sellingPartnerId = required(query, 'selling_partner_id')
    const version = query.get('version')
    if (!AMAZON_STATE.test(amazonState) || !SELLING_PARTNER_ID.test(sellingPartnerId)) {
      throw new SpConnectError('amazon_callback_invalid', {
        detail: 'malformed amazon_state or selling_partner_id',
      })
    }
    if (version !== null && version !== 'beta')
      throw new SpConnectError('amazon_callback_invalid', { detail: 'unknown version' })
    const callbackUrl = parseAmazonCallbackUri(amazonCallbackUri, this.#settings.centralUrlTemplate)
    const signInUrl = this.#settings.signInUrl
    if (signInUrl === null) throw new SpConnectError('login_not_configured')

    // Amazon names no region: the Central host of its confirm URL tells it; amazon.com-style hosts are NA.
    const region = regionOfCentralUrl(callbackUrl, this.#settings.centralUrlTemplate) ?? 'na'
    const id = generateState(this.#deps.randomBytes)
    const browserBinding =
      input.browserBinding && isWellFormedRandomValue(input.browserBinding)
        ? input.browserBinding
        : generateBrowserBinding(this.#deps.randomBytes)
    const now = this.#deps.now()
    await this.#store.loginRequests.insert({
      idHash: hashSecretValue(id),
      sellingPartnerId,
      region,
      amazonCallbackUri: callbackUrl.href,
      amazonState,
      draft: version === 'beta',
      browserBindingHash: hashSecretValue(browserBinding),
      createdAt: now,
      expiresAt: now + LOGIN_REQUEST_TTL_MS,
    })
    const location = new URL(signInUrl)
    location.searchParams.set('sp_connect_login', id)
    return { location: location.href, browserBinding }
  }

  /** What a pending request is about, for the app's sign-in page (`GET /v1/login-requests/:id`). */
  async describe(id: string, visibleTo: Visibility = ALL_TENANTS): Promise<LoginRequestView> {
    const record = await this.#find(id, visibleTo)
    return this.#view(record)
  }

  /**
   * Step 2: the app's signed-in user said which tenant the request is for. Refused (and audited) when the
   * seller is already connected to another tenant, or to none: a request may create a connection for its
   * tenant or re-authorize one its tenant owns, nothing else.
   */
  async approve(
    id: string,
    input: { tenantId: string; tenantName: string | null; approvedBy: string },
  ): Promise<{ redirectUrl: string; expiresAt: number; request: LoginRequestView }> {
    const record = await this.#find(id)
    const now = this.#deps.now()
    if (record.status !== 'pending' || record.expiresAt <= now)
      throw new SpConnectError('login_request_closed')
    const existing = await this.#store.findConnection(record.sellingPartnerId, record.region)
    if (existing && existing.tenantId !== input.tenantId) {
      await this.#events.record('connection.conflict', existing.id, {
        flow: 'appstore',
        step: 'login_request_approval',
        selling_partner_id: record.sellingPartnerId,
        region: record.region,
        owner_tenant_id: existing.tenantId,
        requested_tenant_id: input.tenantId,
        by: input.approvedBy,
      })
      throw new SpConnectError('connection_tenant_conflict')
    }
    const continueToken = generateState(this.#deps.randomBytes)
    const approved = await this.#store.loginRequests.approve(record.idHash, {
      tenantId: input.tenantId,
      tenantName: input.tenantName,
      approvedBy: input.approvedBy,
      continueHash: hashSecretValue(continueToken),
      now,
    })
    if (!approved) throw new SpConnectError('login_request_closed')
    await this.#events.record('login_request.approved', existing?.id ?? null, {
      selling_partner_id: approved.sellingPartnerId,
      region: approved.region,
      tenant_id: input.tenantId,
      by: input.approvedBy,
    })
    return {
      redirectUrl: `${this.#settings.publicUrl}/login/continue/${continueToken}`,
      expiresAt: approved.expiresAt,
      request: await this.#view(approved),
    }
  }

  /** The app's user declined (or the app refuses the seller): the request ends. */
  async reject(id: string, input: { by: string } & Visibility): Promise<LoginRequestView> {
    const record = await this.#find(id, input)
    const rejected = await this.#store.loginRequests.reject(record.idHash, this.#deps.now())
    if (!rejected) throw new SpConnectError('login_request_closed')
    await this.#events.record('login_request.rejected', null, {
      selling_partner_id: rejected.sellingPartnerId,
      region: rejected.region,
      by: input.by,
    })
    return this.#view(rejected)
  }

  /**
   * Step 3: the confirmation page. Only in the browser that opened `/login`, only for an approved, unexpired
   * request; every showing gets a new CSRF token (the previous one stops working).
   */
  async openConfirmation(
    continueToken: string,
    browserBinding: string | undefined,
  ): Promise<{ request: LoginRequestView; csrfToken: string }> {
    const record = await this.#approvedFor(continueToken, browserBinding)
    const csrfToken = generateState(this.#deps.randomBytes)
    if (
      !(await this.#store.loginRequests.setCsrf(record.idHash, hashSecretValue(csrfToken), this.#deps.now()))
    )
      throw new SpConnectError('login_request_closed')
    return { request: await this.#view(record), csrfToken }
  }

  /**
   * Step 4: Confirm or Cancel, posted from the confirmation page. Confirm creates the OAuth state for the
   * approved tenant and returns where to send the browser (Amazon's confirm URL); Cancel ends the request.
   */
  async answer(input: {
    continueToken: string
    browserBinding: string | undefined
    csrfToken: string | undefined
    action: 'confirm' | 'cancel'
  }): Promise<{ location: string | null; request: LoginRequestView }> {
    const record = await this.#approvedFor(input.continueToken, input.browserBinding)
    const csrf = input.csrfToken
    if (
      !csrf ||
      !isWellFormedRandomValue(csrf) ||
      record.csrfHash === null ||
      !hashesEqual(hashSecretValue(csrf), record.csrfHash)
    ) {
      throw new SpConnectError('csrf_invalid')
    }
    const to = input.action === 'confirm' ? 'confirmed' : 'cancelled'
    if (!(await this.#store.loginRequests.finish(record.idHash, to, record.csrfHash, this.#deps.now())))
      throw new SpConnectError('login_request_closed')
    const view = await this.#view(record)
    if (input.action === 'cancel') {
      await this.#events.record('login_request.cancelled', null, {
        selling_partner_id: record.sellingPartnerId,
        region: record.region,
        tenant_id: record.tenantId,
      })
      return { location: null, request: view }
    }
    const tenantId = record.tenantId
    if (tenantId === null) throw new SpConnectError('internal', { detail: 'approved request without tenant' })
    const start = await this.#flows.startAppstoreState({
      amazonCallbackUri: record.amazonCallbackUri,
      amazonState: record.amazonState,
      draft: record.draft,
      sellingPartnerId: record.sellingPartnerId,
      region: record.region,
      tenantId,
      browserBinding: input.browserBinding ?? '',
    })
    return { location: start.location, request: view }
  }

  async #approvedFor(continueToken: string, browserBinding: string | undefined): Promise<LoginRequestRecord> {
    if (!isWellFormedRandomValue(continueToken)) throw new SpConnectError('login_request_invalid')
    const record = await this.#store.loginRequests.getByContinueHash(hashSecretValue(continueToken))
    if (!record) throw new SpConnectError('login_request_invalid')
    if (record.status !== 'approved' || record.expiresAt <= this.#deps.now())
      throw new SpConnectError('login_request_closed')
    if (
      !browserBinding ||
      !isWellFormedRandomValue(browserBinding) ||
      !hashesEqual(hashSecretValue(browserBinding), record.browserBindingHash)
    ) {
      throw new SpConnectError('state_browser_mismatch')
    }
    return record
  }

  /**
   * The request `id` names. A pending request belongs to no tenant yet (any caller allowed to approve may see
   * it); once approved, only callers who may see its tenant do, and to others it is as missing.
   */
  async #find(id: string, visibleTo: Visibility = ALL_TENANTS): Promise<LoginRequestRecord> {
    if (!isWellFormedRandomValue(id)) throw new SpConnectError('login_request_not_found')
    const record = await this.#store.loginRequests.get(hashSecretValue(id))
    if (!record) throw new SpConnectError('login_request_not_found')
    const { tenants } = visibleTo
    if (record.tenantId !== null && tenants !== null && !tenants.includes(record.tenantId))
      throw new SpConnectError('login_request_not_found', { detail: 'not visible to this key' })
    return record
  }

  async #view(record: LoginRequestRecord): Promise<LoginRequestView> {
    const now = this.#deps.now()
    const open = record.status === 'pending' || record.status === 'approved'
    let reauthorization = false
    if (record.tenantId !== null) {
      const existing = await this.#store.findConnection(record.sellingPartnerId, record.region)
      reauthorization = existing?.tenantId === record.tenantId
    }
    return {
      // An open request past its life is as good as gone; the sweeper deletes it later.
      status: open && record.expiresAt <= now ? 'expired' : record.status,
      sellingPartnerId: record.sellingPartnerId,
      region: record.region,
      tenantId: record.tenantId,
      tenantName: record.tenantName,
      expiresAt: record.expiresAt,
      reauthorization,
    }
  }
}

function required(query: URLSearchParams, name: string): string {
  const value = query.get(name)
  if (value === null || value === '')
    throw new SpConnectError('amazon_callback_invalid', { detail: `${name} missing` })
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
