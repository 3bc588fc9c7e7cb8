/** Drives the authorization workflows through real HTTP, the way a browser would. */
import { expect } from 'vitest'
import type { BrowserClient, Hop } from './browser-client.ts'
import type { Stack } from './stack.ts'

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
