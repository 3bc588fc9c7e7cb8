/**
 * Issue 7, rules 1-4, from an attacker's point of view: a second tenant (its own backend key, scoped to it) and a
 * second browser try every way we could think of to end up owning, reading or replacing a connection that is not
 * theirs. Each attempt is refused, changes nothing stored (an audit event aside), causes no token-endpoint call
 * where none is due, and leaves an audit event where the rule says so.
 *
 * Real HTTP on loopback against the service and the simulator, a real SQLite file, the service clock injected.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256 } from '../../src/core/encoding.ts'
import { ERROR_CODES } from '../../src/domain/errors.ts'
import type { EventRecord } from '../../src/store/store.ts'
import { BrowserClient, type Hop } from '../helpers/browser-client.ts'
import { snapshotDb } from '../helpers/db-snapshot.ts'
import {
  answerConsent,
  approveLogin,
  loginIdFrom,
  passLoginUri,
  randomSellingPartnerId,
} from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const HOST = 'sellercentral.amazon.com'
const BINDING = '__Host-sp-connect-binding'

interface Answer {
  status: number
  json: Record<string, unknown>
}

describe('ownership attacks (issue 7, rules 1-4)', () => {
  let stack: Stack
  /** Tenant A's and tenant B's backends: keys scoped to their tenant, with every scope. */
  let keyA: string
  let keyB: string

  beforeAll(async () => {
    stack = await startStack()
    keyA = await tenantKey('tenant-a')
    keyB = await tenantKey('tenant-b')
  })
  afterAll(async () => {
    await stack?.close()
  })

  // --- helpers -------------------------------------------------------------------------------------------

  async function call(key: string, method: string, path: string, body?: unknown): Promise<Answer> {
    const response = await fetch(`${stack.serviceUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    })
    const text = await response.text()
    return { status: response.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
  }

  async function tenantKey(tenant: string): Promise<string> {
    const created = await stack.api('POST', '/v1/api-keys', {
      name: `${tenant} backend`,
      scopes: ['read', 'tokens', 'manage'],
      tenants: [tenant],
    })
    expect(created.status).toBe(201)
    return String(created.json['key'])
  }

  const errorCode = (answer: Answer) => (answer.json['error'] as { code?: string } | undefined)?.code

  function expectRefused(hop: Hop, code: keyof typeof ERROR_CODES): void {
    expect(hop.status).toBe(ERROR_CODES[code].status)
    expect(hop.body).toContain(`<code>${code}</code>`)
    expect(hop.location).toBeNull()
  }

  function expectApiRefused(answer: Answer, code: keyof typeof ERROR_CODES): void {
    expect(answer.status).toBe(ERROR_CODES[code].status)
    expect(errorCode(answer)).toBe(code)
  }

  async function eventsOf(type: string): Promise<EventRecord[]> {
    return stack.runtime.store.listEvents({ type, limit: 10_000 })
  }

  /**
   * Runs `attempt`, then proves it changed no stored row outside `except` (events are compared separately: the
   * attempt may add exactly `expectEvents` new events, of those types), and made `tokenCalls` token-endpoint
   * calls. Returns the attempt's result and the new events.
   */
  async function guarded<T>(
    attempt: () => Promise<T>,
    options: { tokenCalls?: number; except?: readonly string[]; expectEvents?: readonly string[] } = {},
  ): Promise<{ result: T; newEvents: EventRecord[] }> {
    const except = ['events', ...(options.except ?? [])]
    const before = snapshotDb(stack.dbPath, { except })
    const eventIds = new Set((await stack.runtime.store.listEvents({ limit: 10_000 })).map((e) => e.id))
    const counters = stack.simulator.counters().total
    const result = await attempt()
    expect(snapshotDb(stack.dbPath, { except })).toBe(before)
    expect(stack.simulator.counters().total - counters).toBe(options.tokenCalls ?? 0)
    const newEvents = (await stack.runtime.store.listEvents({ limit: 10_000 })).filter(
      (e) => !eventIds.has(e.id),
    )
    expect(newEvents.map((e) => e.type).sort()).toEqual([...(options.expectEvents ?? [])].sort())
    return { result, newEvents }
  }

  /** The Appstore start at the simulator, as seller `sellingPartnerId`: returns the `/login` URL Amazon built. */
  async function amazonLoginUrl(client: BrowserClient, sellingPartnerId: string): Promise<string> {
    const detail = await client.get(`${stack.simulatorUrl}/${HOST}/apps/appstore/${stack.app.appId}`)
    expect(detail.status).toBe(200)
    const consent = await client.clickLink(detail, 'Authorize now')
    const toLogin = await client.submitForm(
      consent,
      { name: 'action', value: 'confirm' },
      { selling_partner_id: sellingPartnerId },
    )
    expect(toLogin.status).toBe(302)
    const login = new URL(toLogin.location ?? '', toLogin.url)
    expect(`${login.origin}${login.pathname}`).toBe(`${stack.serviceUrl}/login`)
    return login.href
  }

  /** `/login` in `client`, approved for `tenantId` by `key`: returns the login id and the confirmation URL. */
  async function approvedLogin(
    client: BrowserClient,
    loginUrl: string,
    input: { tenantId: string; tenantName?: string; key?: string },
  ): Promise<{ loginId: string; redirectUrl: string }> {
    const toSignIn = await client.get(loginUrl)
    expect(toSignIn.status).toBe(303)
    const loginId = loginIdFrom(toSignIn)
    const approved = await approveLogin(stack, loginId, {
      tenantId: input.tenantId,
      ...(input.tenantName ? { tenantName: input.tenantName } : {}),
      apiKey: input.key ?? stack.apiKey,
    })
    expect(approved.status).toBe(200)
    return { loginId, redirectUrl: String(approved.json['redirect_url']) }
  }

  /** Starts a connect session with `body` as `key` and opens it in `client`: returns the consent page. */
  async function consentFor(client: BrowserClient, key: string, body: Record<string, unknown>): Promise<Hop> {
    const created = await call(key, 'POST', '/v1/connect-sessions', body)
    expect(created.status).toBe(201)
    const start = await client.get(String(created.json['url']))
    expect(start.status).toBe(303)
    const consent = await client.get(start.location ?? '')
    expect(consent.status).toBe(200)
    return consent
  }

  /** The callback URL with `selling_partner_id` replaced: the browser's claim, edited. */
  function withSeller(callbackUrl: string, sellingPartnerId: string): string {
    const url = new URL(callbackUrl)
    expect(url.searchParams.get('selling_partner_id')).toBeTruthy()
    url.searchParams.set('selling_partner_id', sellingPartnerId)
    return url.href
  }

  async function ciphertexts(connectionId: string) {
    const row = await stack.runtime.store.getConnection(connectionId)
    expect(row).toBeDefined()
    return {
      refresh: row?.refreshTokenCiphertext,
      access: row?.accessTokenCiphertext,
      tenantId: row?.tenantId,
      status: row?.status,
      fingerprint: row?.accountFingerprint,
    }
  }

  async function stateConsumed(callbackUrl: string): Promise<boolean> {
    const state = new URL(callbackUrl).searchParams.get('state') ?? ''
    const record = await stack.runtime.store.getAuthState(sha256(state))
    expect(record).toBeDefined()
    return record?.consumedAt !== null
  }

  async function connectionsOf(sellingPartnerId: string) {
    return (await stack.runtime.store.listConnections()).filter(
      (c) => c.sellingPartnerId === sellingPartnerId,
    )
  }

  /** Tenant A's own connection (website workflow through tenant A's key). */
  async function connectForA(): Promise<{ connectionId: string; sellingPartnerId: string }> {
    const sellingPartnerId = randomSellingPartnerId()
    const client = new BrowserClient()
    const consent = await consentFor(client, keyA, { tenant_id: 'tenant-a', region: 'na' })
    const landing = await client.get(await answerConsent(client, consent, { sellingPartnerId }))
    expect(landing.status).toBe(303)
    const [row] = await connectionsOf(sellingPartnerId)
    expect(row?.tenantId).toBe('tenant-a')
    return { connectionId: row?.id ?? '', sellingPartnerId }
  }

  // --- rule 1: the Login URI ------------------------------------------------------------------------------

  describe('Login-URI CSRF', () => {
    it("the attacker's sign-in link or redirect_url cannot be used in the victim's browser", async () => {
      const attacker = new BrowserClient()
      const victim = new BrowserClient()
      const attackerSeller = randomSellingPartnerId()
      const loginUrl = await amazonLoginUrl(attacker, attackerSeller)
      const toSignIn = await attacker.get(loginUrl)
      expect(toSignIn.status).toBe(303)
      const loginId = loginIdFrom(toSignIn)

      // The attacker sends the victim the app's sign-in link (with the attacker's sp_connect_login); the
      // victim signs in to the app, whose backend approves the request for the victim's tenant.
      const approved = await approveLogin(stack, loginId, { tenantId: 'victim-tenant', tenantName: 'Victim' })
      expect(approved.status).toBe(200)
      const redirectUrl = String(approved.json['redirect_url'])

      // The victim's browser lands on redirect_url: not the browser that opened /login.
      const { result: refused } = await guarded(() => victim.get(redirectUrl))
      expectRefused(refused, 'state_browser_mismatch')
      // Forging the victim's POST (no binding, any csrf) changes nothing either.
      const { result: posted } = await guarded(() =>
        victim.post(redirectUrl, { csrf: randomBytes(32).toString('base64url'), action: 'confirm' }),
      )
      expectRefused(posted, 'state_browser_mismatch')
      // Even with a well-formed binding cookie of its own, the victim's browser is not the one bound.
      victim.setCookie(new URL(stack.serviceUrl).host, BINDING, randomBytes(32).toString('base64url'))
      const { result: withCookie } = await guarded(() => victim.get(redirectUrl))
      expectRefused(withCookie, 'state_browser_mismatch')

      expect(await connectionsOf(attackerSeller)).toEqual([])
    })

    it('the victim opening an attacker-prepared /login must approve and Confirm before anything is linked', async () => {
      const attacker = new BrowserClient()
      const victim = new BrowserClient()
      const attackerSeller = randomSellingPartnerId()
      const loginUrl = await amazonLoginUrl(attacker, attackerSeller)

      // The victim opens the link: it is handed to the app's sign-in page and nothing else happens.
      const before = snapshotDb(stack.dbPath, { except: ['events', 'login_requests'] })
      const counters = stack.simulator.counters().total
      const toSignIn = await victim.get(loginUrl)
      expect(toSignIn.status).toBe(303)
      const loginId = loginIdFrom(toSignIn)
      const approved = await approveLogin(stack, loginId, {
        tenantId: 'victim-tenant',
        tenantName: 'Victim Co',
      })
      expect(approved.status).toBe(200)
      expect(approved.json['request']).toMatchObject({
        selling_partner_id: attackerSeller,
        tenant_id: 'victim-tenant',
        reauthorization: false,
      })
      const confirmation = await victim.get(String(approved.json['redirect_url']))
      expect(confirmation.status).toBe(200)
      // The seller is named for the victim to see, and still nothing is linked: no connection, no OAuth state.
      expect(confirmation.body).toContain(attackerSeller)
      expect(confirmation.body).toContain('Victim Co')
      expect(snapshotDb(stack.dbPath, { except: ['events', 'login_requests'] })).toBe(before)
      expect(stack.simulator.counters().total).toBe(counters)
      expect(await stack.runtime.store.findConnection(attackerSeller, 'na')).toBeUndefined()

      // Cancel ends it: nothing was linked, and the request cannot be confirmed afterwards.
      const cancelled = await victim.submitForm(confirmation, { name: 'action', value: 'cancel' })
      expect(cancelled.status).toBe(200)
      expect(cancelled.body).toContain('Nothing was connected')
      expect(snapshotDb(stack.dbPath, { except: ['events', 'login_requests'] })).toBe(before)
      const again = await victim.submitForm(confirmation, { name: 'action', value: 'confirm' })
      expect(again.status).toBeGreaterThanOrEqual(400)
      expect(snapshotDb(stack.dbPath, { except: ['events', 'login_requests'] })).toBe(before)
      expect(
        (await eventsOf('login_request.cancelled')).some((e) => e.data['tenant_id'] === 'victim-tenant'),
      ).toBe(true)
    })
  })

  describe('the confirmation page', () => {
    async function openConfirmation(tenantId = 'tenant-c') {
      const client = new BrowserClient()
      const sellingPartnerId = randomSellingPartnerId()
      const loginUrl = await amazonLoginUrl(client, sellingPartnerId)
      const { loginId, redirectUrl } = await approvedLogin(client, loginUrl, { tenantId })
      const page = await client.get(redirectUrl)
      expect(page.status).toBe(200)
      return { client, sellingPartnerId, loginId, redirectUrl, page }
    }

    const csrfOf = (page: Hop) => page.body.match(/name="csrf" value="([^"]+)"/)?.[1] ?? ''

    it('a missing, wrong or superseded CSRF token is 403 and changes nothing', async () => {
      const { client, redirectUrl, page } = await openConfirmation()
      const old = csrfOf(page)
      expect(old).toMatch(/^[A-Za-z0-9_-]{43}$/)
      // Showing the page again issues a new token; the old one stops working.
      const fresh = await client.get(redirectUrl)
      expect(csrfOf(fresh)).not.toBe(old)

      for (const csrf of [undefined, '', 'x', randomBytes(32).toString('base64url'), old]) {
        for (const action of ['confirm', 'cancel']) {
          const form: Record<string, string> = { action }
          if (csrf !== undefined) form['csrf'] = csrf
          const { result } = await guarded(() => client.post(redirectUrl, form))
          expectRefused(result, 'csrf_invalid')
        }
      }
      // The fresh token still works: the refusals did not spend the request.
      const back = await client.submitForm(fresh, { name: 'action', value: 'confirm' })
      expect(back.status).toBe(303)
    })

    it('the continue token is single use: a replay after Confirm is refused and changes nothing', async () => {
      const { client, redirectUrl, page, sellingPartnerId } = await openConfirmation()
      const csrf = csrfOf(page)
      const back = await client.post(redirectUrl, { csrf, action: 'confirm' })
      expect(back.status).toBe(303)
      expect(back.location?.startsWith(stack.simulatorUrl)).toBe(true)

      const { result: replay } = await guarded(() => client.post(redirectUrl, { csrf, action: 'confirm' }))
      expectRefused(replay, 'login_request_invalid')
      const { result: reopen } = await guarded(() => client.get(redirectUrl))
      expectRefused(reopen, 'login_request_invalid')
      // One OAuth state was made by the one Confirm; the seller is connected only once Amazon calls back.
      const landing = await client.follow(back)
      expect(landing.url).toBe(`${stack.serviceUrl}/connected`)
      expect(await connectionsOf(sellingPartnerId)).toHaveLength(1)
    })

    it('an expired request (11 minutes later) is refused, page and form alike', async () => {
      const { client, redirectUrl, page } = await openConfirmation()
      stack.clock.advance(11 * 60 * 1000)
      const { result: shown } = await guarded(() => client.get(redirectUrl))
      expectRefused(shown, 'login_request_closed')
      const { result: posted } = await guarded(() =>
        client.post(redirectUrl, { csrf: csrfOf(page), action: 'confirm' }),
      )
      expectRefused(posted, 'login_request_closed')
    })

    it('an expired pending request cannot be approved', async () => {
      const client = new BrowserClient()
      const toSignIn = await client.get(await amazonLoginUrl(client, randomSellingPartnerId()))
      const loginId = loginIdFrom(toSignIn)
      stack.clock.advance(11 * 60 * 1000)
      const { result } = await guarded(() => approveLogin(stack, loginId, { tenantId: 'tenant-c' }))
      expectApiRefused(result, 'login_request_closed')
    })

    it('reject, then Confirm: refused, nothing connected', async () => {
      const { client, redirectUrl, page, loginId, sellingPartnerId } = await openConfirmation()
      const rejected = await stack.api('POST', `/v1/login-requests/${loginId}/reject`)
      expect(rejected.status).toBe(200)
      expect(rejected.json['status']).toBe('rejected')
      const { result } = await guarded(() =>
        client.post(redirectUrl, { csrf: csrfOf(page), action: 'confirm' }),
      )
      expectRefused(result, 'login_request_closed')
      expect(await connectionsOf(sellingPartnerId)).toEqual([])
      // Approving a rejected request is refused as well.
      const { result: approve } = await guarded(() => approveLogin(stack, loginId, { tenantId: 'tenant-c' }))
      expectApiRefused(approve, 'login_request_closed')
    })

    it('approve twice: the second approval (any tenant) is refused and changes nothing', async () => {
      const client = new BrowserClient()
      const loginUrl = await amazonLoginUrl(client, randomSellingPartnerId())
      const { loginId } = await approvedLogin(client, loginUrl, { tenantId: 'tenant-b', key: keyB })
      for (const [tenantId, key] of [
        ['tenant-b', keyB],
        ['tenant-a', keyA],
        ['tenant-a', stack.apiKey],
      ] as const) {
        const { result } = await guarded(() => approveLogin(stack, loginId, { tenantId, apiKey: key }))
        expectApiRefused(result, 'login_request_closed')
      }
    })

    it("a tenant's key cannot approve a request for another tenant (403), nothing changed", async () => {
      const client = new BrowserClient()
      const toSignIn = await client.get(await amazonLoginUrl(client, randomSellingPartnerId()))
      const loginId = loginIdFrom(toSignIn)
      const { result } = await guarded(
        () => approveLogin(stack, loginId, { tenantId: 'tenant-a', apiKey: keyB }),
        { expectEvents: ['access.denied'] },
      )
      expectApiRefused(result, 'forbidden')
      // The request is still open for its real tenant.
      expect((await approveLogin(stack, loginId, { tenantId: 'tenant-a', apiKey: keyA })).status).toBe(200)
    })

    it('approving an already-connected seller for another tenant: 409 and connection.conflict naming both', async () => {
      const victim = await connectForA()
      const before = await ciphertexts(victim.connectionId)
      const attacker = new BrowserClient()
      // Amazon's Login URI names the victim's seller (an edited /login URL, or the seller's second app user).
      const loginUrl = await amazonLoginUrl(attacker, victim.sellingPartnerId)
      const toSignIn = await attacker.get(loginUrl)
      const loginId = loginIdFrom(toSignIn)
      for (const key of [keyB, stack.apiKey]) {
        const { result, newEvents } = await guarded(
          () => approveLogin(stack, loginId, { tenantId: 'tenant-b', apiKey: key }),
          { expectEvents: ['connection.conflict'] },
        )
        expectApiRefused(result, 'connection_tenant_conflict')
        expect(newEvents[0]?.connectionId).toBe(victim.connectionId)
        expect(newEvents[0]?.data).toMatchObject({
          owner_tenant_id: 'tenant-a',
          requested_tenant_id: 'tenant-b',
          selling_partner_id: victim.sellingPartnerId,
        })
      }
      expect(await ciphertexts(victim.connectionId)).toEqual(before)
    })
  })

  // --- rule 2: the callback's selling_partner_id is a claim -----------------------------------------------

  describe("the callback's selling_partner_id", () => {
    it("Appstore: a callback edited to another tenant's seller is refused before any exchange", async () => {
      const victim = await connectForA()
      const before = await ciphertexts(victim.connectionId)
      const attacker = new BrowserClient()
      const attackerSeller = randomSellingPartnerId()
      const loginUrl = await amazonLoginUrl(attacker, attackerSeller)
      const back = await passLoginUri(stack, attacker, loginUrl, { tenantId: 'tenant-b', apiKey: keyB })
      expect(back.status).toBe(303)
      const amazonConfirm = await attacker.get(back.location ?? '')
      expect(amazonConfirm.status).toBe(302)
      const callbackUrl = withSeller(amazonConfirm.location ?? '', victim.sellingPartnerId)

      const { result, newEvents } = await guarded(() => attacker.get(callbackUrl), {
        except: ['auth_states'],
        expectEvents: ['connection.conflict'],
      })
      expectRefused(result, 'callback_invalid')
      expect(newEvents[0]?.connectionId).toBe(victim.connectionId)
      expect(newEvents[0]?.data).toMatchObject({
        flow: 'appstore',
        reason: 'seller_differs_from_login_request',
        selling_partner_id: victim.sellingPartnerId,
        owner_tenant_id: 'tenant-a',
        requested_tenant_id: 'tenant-b',
      })
      expect(await stateConsumed(callbackUrl)).toBe(true)
      expect(await ciphertexts(victim.connectionId)).toEqual(before)
      expect(await connectionsOf(attackerSeller)).toEqual([])
    })

    it("website flow of tenant B claiming tenant A's seller: 409 before any exchange, A untouched", async () => {
      const victim = await connectForA()
      const before = await ciphertexts(victim.connectionId)
      const attacker = new BrowserClient()
      const attackerSeller = randomSellingPartnerId()
      const consent = await consentFor(attacker, keyB, { tenant_id: 'tenant-b', region: 'na' })
      const callbackUrl = withSeller(
        await answerConsent(attacker, consent, { sellingPartnerId: attackerSeller }),
        victim.sellingPartnerId,
      )
      const { result, newEvents } = await guarded(() => attacker.get(callbackUrl), {
        except: ['auth_states'],
        expectEvents: ['connection.conflict'],
      })
      expectRefused(result, 'connection_tenant_conflict')
      expect(newEvents[0]?.connectionId).toBe(victim.connectionId)
      expect(newEvents[0]?.data).toMatchObject({
        reason: 'owned_by_another_tenant',
        owner_tenant_id: 'tenant-a',
        requested_tenant_id: 'tenant-b',
        selling_partner_id: victim.sellingPartnerId,
      })
      expect(await stateConsumed(callbackUrl)).toBe(true)
      expect(await ciphertexts(victim.connectionId)).toEqual(before)
      // A replay (the state is spent) is refused too, still without an exchange.
      const { result: replay } = await guarded(() => attacker.get(callbackUrl))
      expectRefused(replay, 'state_used')
      // Tenant A's backend still gets its own seller's tokens.
      const token = await call(keyA, 'POST', `/v1/connections/${victim.connectionId}/access-token`)
      expect(token.status).toBe(200)
    })

    it("the website flow of tenant B for the victim's real seller (honest sign-in) is refused too", async () => {
      // The victim's seller account is also reachable by someone at tenant B (a shared Seller Central user).
      const victim = await connectForA()
      const before = await ciphertexts(victim.connectionId)
      const client = new BrowserClient()
      const consent = await consentFor(client, keyB, { tenant_id: 'tenant-b', region: 'na' })
      const callbackUrl = await answerConsent(client, consent, { sellingPartnerId: victim.sellingPartnerId })
      const { result } = await guarded(() => client.get(callbackUrl), {
        except: ['auth_states'],
        expectEvents: ['connection.conflict'],
      })
      expectRefused(result, 'connection_tenant_conflict')
      expect(await ciphertexts(victim.connectionId)).toEqual(before)
    })

    describe('identity mismatch', () => {
      it("tenant A's reconnect signed in as another seller, callback edited to Y: account_mismatch", async () => {
        const y = await connectForA()
        const before = await ciphertexts(y.connectionId)
        expect(before.fingerprint).toMatch(/^v1:/)
        const client = new BrowserClient()
        const consent = await consentFor(client, keyA, { connection_id: y.connectionId })
        const x = randomSellingPartnerId()
        const callbackUrl = withSeller(
          await answerConsent(client, consent, { sellingPartnerId: x }),
          y.sellingPartnerId,
        )
        // The code is exchanged (the claim matches the connection), but the token's account is not Y's.
        const { result, newEvents } = await guarded(() => client.get(callbackUrl), {
          except: ['auth_states'],
          tokenCalls: 1,
          expectEvents: ['connection.identity_mismatch'],
        })
        expectRefused(result, 'account_mismatch')
        expect(newEvents[0]?.connectionId).toBe(y.connectionId)
        expect(newEvents[0]?.data).toMatchObject({
          selling_partner_id: y.sellingPartnerId,
          tenant_id: 'tenant-a',
        })
        expect(await ciphertexts(y.connectionId)).toEqual(before)
        expect(await connectionsOf(x)).toEqual([])
      })

      it("tenant A's new-connection link, signed in as X, callback edited to A's own Y: account_mismatch", async () => {
        const y = await connectForA()
        const before = await ciphertexts(y.connectionId)
        const client = new BrowserClient()
        const consent = await consentFor(client, keyA, { tenant_id: 'tenant-a', region: 'na' })
        const callbackUrl = withSeller(
          await answerConsent(client, consent, { sellingPartnerId: randomSellingPartnerId() }),
          y.sellingPartnerId,
        )
        const { result } = await guarded(() => client.get(callbackUrl), {
          except: ['auth_states'],
          tokenCalls: 1,
          expectEvents: ['connection.identity_mismatch'],
        })
        expectRefused(result, 'account_mismatch')
        expect(await ciphertexts(y.connectionId)).toEqual(before)
      })

      it('Appstore re-authorization as X with the Login URI edited to Y: account_mismatch', async () => {
        const y = await connectForA()
        const before = await ciphertexts(y.connectionId)
        const client = new BrowserClient()
        // Signed in at Amazon as X; the /login URL edited to name Y, which tenant A owns.
        const loginUrl = new URL(await amazonLoginUrl(client, randomSellingPartnerId()))
        loginUrl.searchParams.set('selling_partner_id', y.sellingPartnerId)
        const back = await passLoginUri(stack, client, loginUrl.href, { tenantId: 'tenant-a', apiKey: keyA })
        expect(back.status).toBe(303)
        const amazonConfirm = await client.get(back.location ?? '')
        // Amazon's confirm step answers for the seller its amazon_state was issued to: X.
        const callbackUrl = withSeller(amazonConfirm.location ?? '', y.sellingPartnerId)
        const { result } = await guarded(() => client.get(callbackUrl), {
          except: ['auth_states'],
          tokenCalls: 1,
          expectEvents: ['connection.identity_mismatch'],
        })
        expectRefused(result, 'account_mismatch')
        expect(await ciphertexts(y.connectionId)).toEqual(before)
      })

      it('a legitimate re-authorization by Y itself succeeds and replaces the token in place', async () => {
        const y = await connectForA()
        const before = await ciphertexts(y.connectionId)
        const client = new BrowserClient()
        const consent = await consentFor(client, keyA, { connection_id: y.connectionId })
        const callbackUrl = await answerConsent(client, consent, { sellingPartnerId: y.sellingPartnerId })
        const landing = await client.get(callbackUrl)
        expect(landing.status).toBe(303)
        const after = await ciphertexts(y.connectionId)
        expect(after.refresh).not.toBe(before.refresh)
        expect(after).toMatchObject({ tenantId: 'tenant-a', status: 'active' })
        expect(await connectionsOf(y.sellingPartnerId)).toHaveLength(1)
        const reauthorized = await stack.runtime.store.listEvents({
          connectionId: y.connectionId,
          type: 'connection.reauthorized',
        })
        expect(reauthorized).toHaveLength(1)
      })
    })
  })

  // --- rule 3: reconnect ----------------------------------------------------------------------------------

  describe('reconnect', () => {
    it('a key scoped to another tenant gets 404 for a reconnect link, audited, nothing created', async () => {
      const victim = await connectForA()
      const missing = await call(keyB, 'POST', '/v1/connect-sessions', {
        connection_id: 'con_doesnotexist000000000',
      })
      const { result, newEvents } = await guarded(
        () => call(keyB, 'POST', '/v1/connect-sessions', { connection_id: victim.connectionId }),
        { expectEvents: ['access.denied'] },
      )
      expectApiRefused(result, 'connection_not_found')
      expect(result.json).toEqual(missing.json)
      expect(newEvents[0]?.connectionId).toBe(victim.connectionId)
      expect(newEvents[0]?.data['key_name']).toBe('tenant-b backend')
    })

    it('the reconnect link used by a seller who signs in as another seller: refused, no exchange', async () => {
      const y = await connectForA()
      const before = await ciphertexts(y.connectionId)
      // X is an existing connection of tenant A too: the reconnect link names Y, and must not touch X either.
      const x = await connectForA()
      const beforeX = await ciphertexts(x.connectionId)
      for (const seller of [randomSellingPartnerId(), x.sellingPartnerId]) {
        const client = new BrowserClient()
        const consent = await consentFor(client, keyA, { connection_id: y.connectionId })
        const callbackUrl = await answerConsent(client, consent, { sellingPartnerId: seller })
        const { result, newEvents } = await guarded(() => client.get(callbackUrl), {
          except: ['auth_states'],
          expectEvents: ['connection.conflict'],
        })
        expectRefused(result, 'connection_tenant_conflict')
        expect(newEvents[0]?.connectionId).toBe(y.connectionId)
        expect(newEvents[0]?.data).toMatchObject({
          reason: 'reconnect_for_another_account',
          selling_partner_id: seller,
        })
        expect(await stateConsumed(callbackUrl)).toBe(true)
      }
      expect(await ciphertexts(y.connectionId)).toEqual(before)
      expect(await ciphertexts(x.connectionId)).toEqual(beforeX)
    })

    it('a legitimate reconnect brings a needs_reauthorization connection back to active, in place', async () => {
      const y = await connectForA()
      const stored = await stack.runtime.store.getConnection(y.connectionId)
      await stack.runtime.store.recordRefreshFailure(y.connectionId, stored?.version ?? 0, {
        error: 'lwa_invalid_grant',
        status: 'needs_reauthorization',
        now: stack.clock.now(),
      })
      const before = await ciphertexts(y.connectionId)
      expect(before.status).toBe('needs_reauthorization')
      const client = new BrowserClient()
      const consent = await consentFor(client, keyA, { connection_id: y.connectionId })
      const exchanges = stack.simulator.counters().byGrant.authorization_code
      const landing = await client.get(
        await answerConsent(client, consent, { sellingPartnerId: y.sellingPartnerId }),
      )
      expect(landing.status).toBe(303)
      expect(stack.simulator.counters().byGrant.authorization_code - exchanges).toBe(1)
      const after = await ciphertexts(y.connectionId)
      expect(after.status).toBe('active')
      expect(after.refresh).not.toBe(before.refresh)
      expect(after.tenantId).toBe('tenant-a')
      expect(await connectionsOf(y.sellingPartnerId)).toHaveLength(1)
      expect((await call(keyA, 'POST', `/v1/connections/${y.connectionId}/access-token`)).status).toBe(200)
    })
  })

  // --- tenantless connections ------------------------------------------------------------------------------

  describe('tenantless connections', () => {
    /** A connection without a tenant, as `sp-connect connections add` (no --tenant) makes it. */
    async function tenantless(): Promise<{ connectionId: string; sellingPartnerId: string }> {
      const sellingPartnerId = randomSellingPartnerId()
      const refreshToken = stack.simulator.selfAuthorize(stack.app.appId, sellingPartnerId, 'na')
      const added = await stack.runtime.flows.addVerifiedRefreshToken({
        sellingPartnerId,
        region: 'na',
        accountType: 'seller',
        tenantId: null,
        refreshToken,
      })
      expect(added.connection.tenantId).toBeNull()
      return { connectionId: added.connection.id, sellingPartnerId }
    }

    /** A tenantless website flow, as the operator console starts one without a tenant. */
    async function tenantlessConsent(client: BrowserClient): Promise<Hop> {
      const start = await stack.runtime.flows.startWebsiteFlow({
        region: 'na',
        accountType: 'seller',
        tenantId: null,
      })
      client.setCookie(new URL(stack.serviceUrl).host, BINDING, start.browserBinding)
      const consent = await client.get(start.location)
      expect(consent.status).toBe(200)
      return consent
    }

    it("a tenant's website flow cannot take over a tenantless connection", async () => {
      const none = await tenantless()
      const before = await ciphertexts(none.connectionId)
      const client = new BrowserClient()
      const consent = await consentFor(client, keyB, { tenant_id: 'tenant-b', region: 'na' })
      const callbackUrl = await answerConsent(client, consent, { sellingPartnerId: none.sellingPartnerId })
      const { result, newEvents } = await guarded(() => client.get(callbackUrl), {
        except: ['auth_states'],
        expectEvents: ['connection.conflict'],
      })
      expectRefused(result, 'connection_tenant_conflict')
      expect(newEvents[0]?.data).toMatchObject({ owner_tenant_id: null, requested_tenant_id: 'tenant-b' })
      expect(await ciphertexts(none.connectionId)).toEqual(before)
    })

    it("a tenant's Login-URI approval cannot claim a tenantless connection", async () => {
      const none = await tenantless()
      const client = new BrowserClient()
      const toSignIn = await client.get(await amazonLoginUrl(client, none.sellingPartnerId))
      const { result } = await guarded(
        () => approveLogin(stack, loginIdFrom(toSignIn), { tenantId: 'tenant-b', apiKey: keyB }),
        { expectEvents: ['connection.conflict'] },
      )
      expectApiRefused(result, 'connection_tenant_conflict')
    })

    it("a tenant's key cannot make a reconnect link for a tenantless connection (404)", async () => {
      const none = await tenantless()
      const { result } = await guarded(
        () => call(keyB, 'POST', '/v1/connect-sessions', { connection_id: none.connectionId }),
        { expectEvents: ['access.denied'] },
      )
      expectApiRefused(result, 'connection_not_found')
    })

    it("a tenantless flow cannot take over a tenant's connection", async () => {
      const victim = await connectForA()
      const before = await ciphertexts(victim.connectionId)
      const client = new BrowserClient()
      const consent = await tenantlessConsent(client)
      const callbackUrl = await answerConsent(client, consent, { sellingPartnerId: victim.sellingPartnerId })
      const { result, newEvents } = await guarded(() => client.get(callbackUrl), {
        except: ['auth_states'],
        expectEvents: ['connection.conflict'],
      })
      expectRefused(result, 'connection_tenant_conflict')
      expect(newEvents[0]?.data).toMatchObject({ owner_tenant_id: 'tenant-a', requested_tenant_id: null })
      expect(await ciphertexts(victim.connectionId)).toEqual(before)
    })

    it("`connections add` without a tenant cannot replace a tenant's refresh token", async () => {
      const victim = await connectForA()
      const before = await ciphertexts(victim.connectionId)
      const refreshToken = stack.simulator.selfAuthorize(stack.app.appId, victim.sellingPartnerId, 'na')
      const { result } = await guarded(
        () =>
          stack.runtime.flows
            .addVerifiedRefreshToken({
              sellingPartnerId: victim.sellingPartnerId,
              region: 'na',
              accountType: 'seller',
              tenantId: null,
              refreshToken,
            })
            .then(
              () => 'stored',
              (error: unknown) => (error as { code?: string }).code,
            ),
        // Importing proves the token with one refresh first.
        { tokenCalls: 1, expectEvents: ['connection.conflict'] },
      )
      expect(result).toBe('connection_tenant_conflict')
      expect(await ciphertexts(victim.connectionId)).toEqual(before)
    })
  })

  // --- rule 4: return_to ----------------------------------------------------------------------------------

  describe('return_to', () => {
    it('off-origin values are refused with 400 and create nothing', async () => {
      for (const returnTo of [
        '//evil.example',
        '/\\evil.example',
        '\\\\evil.example',
        '/\t/evil.example',
        ' //evil.example',
        'https://app.example.com.evil.example',
        'https://evil.example/',
        'https:evil.example',
        'http://127.0.0.1:1@evil.example/',
        'javascript:alert(1)',
        'data:text/html,x',
        `${'/'.repeat(3)}evil.example`,
      ]) {
        const { result } = await guarded(() =>
          call(keyA, 'POST', '/v1/connect-sessions', {
            tenant_id: 'tenant-a',
            region: 'na',
            return_to: returnTo,
          }),
        )
        expect(result.status, returnTo).toBe(400)
        expect(errorCode(result), returnTo).toBe('invalid_request')
      }
    })

    it('accepted paths with dot segments land on the service origin (or an allowed one), as a browser resolves them', async () => {
      const cases: [string, string][] = [
        ['/a/..//evil.example', stack.serviceUrl],
        ['/a/../../evil.example', stack.serviceUrl],
        ['/./%2F%2Fevil.example', stack.serviceUrl],
        ['http:evil.example', stack.serviceUrl],
        ['/done?x=//evil.example', stack.serviceUrl],
        ['http://127.0.0.1:1/a/..//evil.example', 'http://127.0.0.1:1'],
      ]
      for (const [returnTo, origin] of cases) {
        const created = await call(keyA, 'POST', '/v1/connect-sessions', {
          tenant_id: 'tenant-a',
          region: 'na',
          return_to: returnTo,
        })
        expect(created.status, returnTo).toBe(201)
        const client = new BrowserClient()
        const start = await client.get(String(created.json['url']))
        const consent = await client.get(start.location ?? '')
        const landing = await client.get(
          await answerConsent(client, consent, { sellingPartnerId: randomSellingPartnerId() }),
        )
        expect(landing.status, returnTo).toBe(303)
        const location = landing.location ?? ''
        // Absolute, so no browser reads it as protocol-relative; resolved against the callback as a browser would.
        expect(location, returnTo).toMatch(/^https?:\/\/[^/]/)
        expect(new URL(location, landing.url).origin, returnTo).toBe(origin)
        expect(new URL(location).origin, returnTo).toBe(origin)
        expect(new URL(location).searchParams.get('connection_id'), returnTo).toMatch(/^con_/)
      }
    })
  })

  // --- a tenant's key and other tenants' login requests ---------------------------------------------------

  describe("a tenant's key and another tenant's login request", () => {
    it('acting for another tenant (approve, connect link) is 403 and audited as access.denied', async () => {
      // Refusals are audited at most once a minute per key, action and tenant; earlier tests refused key B too.
      stack.clock.advance(61_000)
      const client = new BrowserClient()
      const toSignIn = await client.get(await amazonLoginUrl(client, randomSellingPartnerId()))
      const loginId = loginIdFrom(toSignIn)
      const { result } = await guarded(
        async () => [
          await approveLogin(stack, loginId, { tenantId: 'tenant-a', apiKey: keyB }),
          await call(keyB, 'POST', '/v1/connect-sessions', { tenant_id: 'tenant-a', region: 'na' }),
        ],
        // Rule 5: a refusal of a tenant-scoped key is audited.
        { expectEvents: ['access.denied', 'access.denied'] },
      )
      for (const answer of result) expectApiRefused(answer, 'forbidden')
    })

    it('cannot read or reject a request approved for another tenant (404, like a missing one)', async () => {
      const client = new BrowserClient()
      const loginUrl = await amazonLoginUrl(client, randomSellingPartnerId())
      const { loginId, redirectUrl } = await approvedLogin(client, loginUrl, {
        tenantId: 'tenant-a',
        tenantName: 'Tenant A Ltd',
        key: keyA,
      })
      const missing = await call(keyB, 'GET', `/v1/login-requests/${randomBytes(32).toString('base64url')}`)
      const read = await call(keyB, 'GET', `/v1/login-requests/${loginId}`)
      const rejected = await call(keyB, 'POST', `/v1/login-requests/${loginId}/reject`)
      // Tenant A's seller must still be able to confirm.
      const page = await client.get(redirectUrl)
      expect({ read: read.status, rejected: rejected.status, page: page.status }).toEqual({
        read: 404,
        rejected: 404,
        page: 200,
      })
      expect(read.json).toEqual(missing.json)
    })

    it('the dev sign-in stand-in is not mounted outside dev (it approves without an API key)', async () => {
      const client = new BrowserClient()
      const toSignIn = await client.get(await amazonLoginUrl(client, randomSellingPartnerId()))
      const loginId = loginIdFrom(toSignIn)
      const { result: page } = await guarded(() =>
        client.get(`${stack.serviceUrl}/dev/sign-in?sp_connect_login=${loginId}`),
      )
      // Outside dev the path is just another console page: it wants an operator session.
      expect(page.status).toBe(303)
      expect(page.location).toBe('/console/sign-in')
      const { result: posted } = await guarded(() =>
        client.post(`${stack.serviceUrl}/dev/sign-in`, {
          login: loginId,
          tenant_id: 'tenant-b',
          action: 'approve',
        }),
      )
      expect(posted.status).toBe(401)
      // The request is still pending, for whoever really signs in.
      expect((await stack.api('GET', `/v1/login-requests/${loginId}`)).json['status']).toBe('pending')
    })
  })

  // --- flooding -------------------------------------------------------------------------------------------

  describe('flooding the Login-request API', () => {
    it('random, malformed and oversized ids are 404 or 400, never 500, and create no row', async () => {
      const before = snapshotDb(stack.dbPath)
      const counters = stack.simulator.counters().total
      const ids = [
        ...Array.from({ length: 50 }, () => randomBytes(32).toString('base64url')),
        'x',
        'a'.repeat(10_000),
        '%00%01%02',
        '..%2F..%2Fv1%2Fapi-keys',
        encodeURIComponent('\u202e\u0000'),
      ]
      for (const id of ids) {
        for (const action of ['approve', 'reject']) {
          const answer = await call(keyB, 'POST', `/v1/login-requests/${id}/${action}`, {
            tenant_id: 'tenant-b',
          })
          expect([400, 404], id.slice(0, 20)).toContain(answer.status)
        }
        const described = await call(keyB, 'GET', `/v1/login-requests/${id}`)
        expect([400, 404]).toContain(described.status)
        const page = await new BrowserClient().get(`${stack.serviceUrl}/login/continue/${id}`)
        expect([400, 404]).toContain(page.status)
      }
      expect(snapshotDb(stack.dbPath)).toBe(before)
      expect(stack.simulator.counters().total).toBe(counters)
    })
  })
})
