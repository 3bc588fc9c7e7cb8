/**
 * `sp-connect/client` (src/client/) against a real stack: every method called over loopback HTTP, every answer
 * checked against the zod schema the document was generated from (no undocumented field, nothing missing), its
 * errors as `SpConnectApiError`s with the service's code and request id; and its table of operations checked
 * against the OpenAPI document, so the client and the server cannot drift apart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { z } from 'zod'
import { apiKeyListSchema, apiKeySchema, createdApiKeySchema } from '../../src/api-schemas/api-keys.ts'
import { connectSessionSchema } from '../../src/api-schemas/connect-sessions.ts'
import {
  accessTokenSchema,
  connectionListSchema,
  connectionSchema,
} from '../../src/api-schemas/connections.ts'
import {
  deliveryListSchema,
  eventListSchema,
  eventWithDeliveriesSchema,
} from '../../src/api-schemas/events.ts'
import { loginRequestApprovalSchema, loginRequestSchema } from '../../src/api-schemas/login-requests.ts'
import { notificationResultSchema } from '../../src/api-schemas/notifications.ts'
import { restrictedDataTokenResponseSchema } from '../../src/api-schemas/spapi.ts'
import {
  CLIENT_OPERATIONS,
  createClient,
  readApiError,
  SpConnectApiError,
  type SpConnectClient,
} from '../../src/client/index.ts'
import { openApiPath } from '../../src/server/openapi.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { connectSeller, loginIdFrom, randomSellingPartnerId } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const CENTRAL_HOST = 'sellercentral.amazon.com'

type Doc = { paths: Record<string, Record<string, { operationId: string }>> }

/** The answer holds exactly what the schema documents: parsing strips nothing and adds nothing. */
function expectShape<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value)
  expect(parsed.error?.issues ?? []).toEqual([])
  expect(parsed.data).toEqual(value)
  return parsed.data as z.output<S>
}

describe('sp-connect/client', () => {
  let stack: Stack
  let sp: SpConnectClient
  let doc: Doc
  /** `METHOD /path` of every request the client sent. */
  const sent: string[] = []

  beforeAll(async () => {
    stack = await startStack()
    const recording: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input))
      sent.push(`${init?.method ?? 'GET'} ${url.pathname}`)
      return fetch(input, init)
    }
    sp = createClient({ baseUrl: `${stack.serviceUrl}/`, apiKey: stack.apiKey, fetch: recording })
    doc = (await (await fetch(`${stack.serviceUrl}/v1/openapi.json`)).json()) as Doc
  })

  afterAll(async () => {
    await stack?.close()
  })

  it('names, for each method, an operation of the OpenAPI document with its method and path', () => {
    for (const [operationId, { method, path }] of Object.entries(CLIENT_OPERATIONS)) {
      expect(doc.paths[openApiPath(path)]?.[method.toLowerCase()]?.operationId, operationId).toBe(operationId)
    }
    const documented = Object.values(doc.paths).flatMap((item) =>
      Object.values(item).map((op) => op.operationId),
    )
    expect(Object.keys(CLIENT_OPERATIONS).sort()).toEqual(documented.sort())
  })

  /** Amazon's side of a Login-URI authorization: returns the `sp_connect_login` id the app receives. */
  async function startLoginRequest(): Promise<string> {
    const browser = new BrowserClient()
    const detail = await browser.get(`${stack.simulatorUrl}/${CENTRAL_HOST}/apps/appstore/${stack.app.appId}`)
    const consent = await browser.clickLink(detail, 'Authorize now')
    const toLogin = await browser.submitForm(
      consent,
      { name: 'action', value: 'confirm' },
      { selling_partner_id: randomSellingPartnerId() },
    )
    return loginIdFrom(await browser.get(toLogin.location ?? ''))
  }

  it('calls every /v1 operation of a real stack, with answers in the documented shapes', async () => {
    expect(await sp.getOpenApiDocument()).toEqual(doc)

    const link = expectShape(
      connectSessionSchema,
      await sp.connectSessions.create({ tenant_id: 'tenant-client', region: 'na' }),
    )
    expect(link.url).toMatch(/\/connect\/s\//)
    const { connectionId } = await connectSeller(stack, new BrowserClient(), { tenantId: 'tenant-client' })

    const page = expectShape(
      connectionListSchema,
      await sp.connections.list({ tenant_id: 'tenant-client', limit: 5 }),
    )
    expect(page.data.map((c) => c.id)).toEqual([connectionId])
    expectShape(connectionSchema, await sp.connections.get(connectionId))
    const token = expectShape(accessTokenSchema, await sp.connections.getAccessToken(connectionId))
    expect(token.token_type).toBe('bearer')
    const history = expectShape(eventListSchema, await sp.connections.listEvents(connectionId))
    expect(history.data.map((e) => e.type)).toContain('connection.created')
    expectShape(
      accessTokenSchema,
      await sp.tokens.getGrantless({ scope: 'sellingpartnerapi::notifications' }),
    )

    const participations = await sp.spapi.call(connectionId, {
      method: 'GET',
      path: '/sellers/v1/marketplaceParticipations',
    })
    expect(participations.status).toBe(200)
    expect(participations.headers.get('cache-control')).toBe('no-store')
    expect(await participations.json()).toHaveProperty('payload')
    // Paths sp-connect does not know are refused before Amazon: the client reads its error body.
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const) {
      const refused = await sp.spapi.call(connectionId, { method, path: '/not/an/operation', body: {} })
      expect(refused.status).toBe(400)
      expect((await readApiError(refused)).code).toBe('spapi_operation_unknown')
    }
    const rdt = await sp.spapi.createRestrictedDataToken(connectionId, {
      restrictedResources: [{ method: 'GET', path: '/orders/v0/orders/{orderId}/address' }],
    })
    expectShape(restrictedDataTokenResponseSchema, rdt)

    const toApprove = await startLoginRequest()
    expect(expectShape(loginRequestSchema, await sp.loginRequests.get(toApprove)).status).toBe('pending')
    const approval = expectShape(
      loginRequestApprovalSchema,
      await sp.loginRequests.approve(toApprove, { tenant_id: 'tenant-login', tenant_name: 'Login Co' }),
    )
    expect(approval.request.status).toBe('approved')
    const rejected = expectShape(loginRequestSchema, await sp.loginRequests.reject(await startLoginRequest()))
    expect(rejected.status).toBe('rejected')

    const created = expectShape(
      createdApiKeySchema,
      await sp.apiKeys.create({ name: 'client-test', scopes: ['read'], tenants: ['tenant-client'] }),
    )
    const keys = expectShape(apiKeyListSchema, await sp.apiKeys.list())
    expect(keys.data.map((k) => k.id)).toContain(created.id)
    expect(expectShape(apiKeySchema, await sp.apiKeys.revoke(created.id)).revoked_at).not.toBeNull()

    const events = expectShape(
      eventListSchema,
      await sp.events.list({ connection_id: connectionId, limit: 10 }),
    )
    const first = events.data[0]
    expect(first).toBeDefined()
    expectShape(eventWithDeliveriesSchema, await sp.events.get(first?.id ?? ''))
    expectShape(deliveryListSchema, await sp.events.listDeliveries({ status: 'pending' }))

    const notification = expectShape(
      notificationResultSchema,
      await sp.notifications.post({
        notificationVersion: '1.0',
        notificationType: 'ANY_OFFER_CHANGED',
        payloadVersion: '1.0',
        eventTime: new Date(stack.clock.now()).toISOString(),
        payload: {},
        notificationMetadata: { notificationId: 'client-test-1' },
      }),
    )
    expect(notification.result).toBe('ignored')

    const gone = expectShape(connectionSchema, await sp.connections.disconnect(connectionId))
    expect(gone.status).toBe('disconnected')

    // Every operation of the document was reached through the client.
    const reached = new Set<string>()
    for (const request of sent) {
      const [method = '', pathname = ''] = request.split(' ')
      for (const [path, item] of Object.entries(doc.paths)) {
        const pattern = new RegExp(
          `^${path.replace(/\{path\}$/, '.+').replace(/\{[A-Za-z0-9_]+\}/g, '[^/]+')}$`,
        )
        const op = item[method.toLowerCase()]
        if (op && pattern.test(pathname)) reached.add(op.operationId)
      }
    }
    expect([...reached].sort()).toEqual(Object.keys(CLIENT_OPERATIONS).sort())
  })

  it('throws SpConnectApiError with the service’s code, message and request id', async () => {
    const missing = await sp.connections.get(`con_${'A'.repeat(22)}`).catch((error: unknown) => error)
    expect(missing).toBeInstanceOf(SpConnectApiError)
    expect(missing).toMatchObject({
      status: 404,
      code: 'connection_not_found',
      message: 'No connection has that id.',
    })
    expect((missing as SpConnectApiError).requestId).toMatch(/\S/)

    const invalid = await sp.connections.list({ limit: 0 }).catch((error: unknown) => error)
    expect(invalid).toMatchObject({ status: 400, code: 'invalid_request', detail: 'invalid: limit' })

    const stranger = createClient({ baseUrl: stack.serviceUrl, apiKey: 'not-a-key' })
    const refused = await stranger.connections.list().catch((error: unknown) => error)
    expect(refused).toMatchObject({ status: 401, code: 'unauthenticated' })
    // The document needs no key, so a client with a wrong one still reads it.
    expect(await stranger.getOpenApiDocument()).toEqual(doc)
  })
})
