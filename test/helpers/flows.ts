/** Drives the authorization workflows through real HTTP, the way a browser would. */
import { expect } from 'vitest'
import type { BrowserClient, Hop } from './browser-client.ts'
import { APP_SIGNIN_URL, type Stack } from './stack.ts'

export function randomSellingPartnerId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
  return `A${Array.from({ length: 13 }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('')}`
}

/** Opens a connect-session link for a tenant and lands on the simulated consent page. */
export async function openConsentPage(
  stack: Stack,
  client: BrowserClient,
  input: { tenantId?: string; region?: 'na' | 'eu' | 'fe'; accountType?: 'seller' | 'vendor' } = {},
): Promise<Hop> {
  const created = await stack.api('POST', '/v1/connect-sessions', {
    tenant_id: input.tenantId ?? 'tenant-1',
    region: input.region ?? 'na',
    account_type: input.accountType ?? 'seller',
  })
  expect(created.status).toBe(201)
  const start = await client.get(String(created.json['url']))
  expect(start.status).toBe(303)
  expect(start.location?.startsWith(stack.simulatorUrl)).toBe(true)
  const consent = await client.get(start.location ?? '')
  expect(consent.status).toBe(200)
  return consent
}

/** Presses Confirm (or Cancel) on the consent page; returns Amazon's redirect to our callback, unfollowed. */
export async function answerConsent(
  client: BrowserClient,
  consentPage: Hop,
  input: { sellingPartnerId: string; button?: 'confirm' | 'cancel' },
): Promise<string> {
  const answer = await client.submitForm(
    consentPage,
    { name: 'action', value: input.button ?? 'confirm' },
    { selling_partner_id: input.sellingPartnerId },
  )
  expect(answer.status).toBe(302)
  expect(answer.location).toBeTruthy()
  return answer.location ?? ''
}

/** The whole website workflow: returns the callback URL Amazon sent and the connection it created. */
export async function connectSeller(
  stack: Stack,
  client: BrowserClient,
  input: { sellingPartnerId?: string; tenantId?: string; region?: 'na' | 'eu' | 'fe' } = {},
): Promise<{ callbackUrl: string; connectionId: string; sellingPartnerId: string; landing: Hop }> {
  const sellingPartnerId = input.sellingPartnerId ?? randomSellingPartnerId()
  const consent = await openConsentPage(stack, client, input)
  const callbackUrl = await answerConsent(client, consent, { sellingPartnerId })
  const landing = await client.get(callbackUrl)
  expect(landing.status).toBe(303)
  const listed = await stack.api('GET', '/v1/connections')
  const data = listed.json['data'] as { id: string; selling_partner_id: string; region: string }[]
  const connection = data.find(
    (c) => c.selling_partner_id === sellingPartnerId && c.region === (input.region ?? 'na'),
  )
  expect(connection).toBeDefined()
  return { callbackUrl, connectionId: connection?.id ?? '', sellingPartnerId, landing }
}

/**
 * The Login-URI handoff as the app plays it: `/login` sent the browser to the app's sign-in page with
 * `sp_connect_login`; the app (these helpers) approves the request for a tenant through the API, the browser
 * opens the returned confirmation page and presses Confirm (or Cancel).
 */
export function loginIdFrom(signInHop: Hop): string {
  const location = new URL(signInHop.location ?? '', signInHop.url)
  expect(`${location.origin}${location.pathname}`).toBe(APP_SIGNIN_URL)
  const id = location.searchParams.get('sp_connect_login')
  expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/)
  return id ?? ''
}

export async function approveLogin(
  stack: Stack,
  loginId: string,
  input: { tenantId: string; tenantName?: string; apiKey?: string },
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${stack.serviceUrl}/v1/login-requests/${loginId}/approve`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${input.apiKey ?? stack.apiKey}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      tenant_id: input.tenantId,
      ...(input.tenantName ? { tenant_name: input.tenantName } : {}),
    }),
  })
  const text = await response.text()
  return { status: response.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
}

/**
 * From the `/login` hop (Amazon's request, unfollowed) through sign-in, approval and Confirm: returns the hop
 * that sends the browser back to Amazon's confirm URL (unfollowed).
 */
export async function passLoginUri(
  stack: Stack,
  client: BrowserClient,
  loginUrl: string,
  input: { tenantId: string; tenantName?: string; apiKey?: string; button?: 'confirm' | 'cancel' },
): Promise<Hop> {
  const toSignIn = await client.get(loginUrl)
  expect(toSignIn.status).toBe(303)
  const approved = await approveLogin(stack, loginIdFrom(toSignIn), input)
  expect(approved.status).toBe(200)
  const confirmation = await client.get(String(approved.json['redirect_url']))
  expect(confirmation.status).toBe(200)
  return client.submitForm(confirmation, { name: 'action', value: input.button ?? 'confirm' })
}
