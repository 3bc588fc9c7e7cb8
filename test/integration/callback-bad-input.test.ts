/**
 * Every bad input at the callback gets a fixed error page, makes no token-endpoint call where none is due,
 * and changes nothing stored; nothing from the request, and no secret, appears in a page or a log line.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256 } from '../../src/core/encoding.ts'
import { ERROR_CODES } from '../../src/domain/errors.ts'
import { BrowserClient, type Hop } from '../helpers/browser-client.ts'
import { snapshotDb } from '../helpers/db-snapshot.ts'
import { answerConsent, connectSeller, openConsentPage, randomSellingPartnerId } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const BINDING = '__Host-sp-connect-binding'

function expectFixedError(hop: Hop, code: keyof typeof ERROR_CODES, forbidden: readonly string[] = []): void {
  expect(hop.status).toBe(ERROR_CODES[code].status)
  expect(hop.body).toContain(`<code>${code}</code>`)
  expect(hop.body).toContain(ERROR_CODES[code].message.replace(/'/g, '&#39;'))
  expect(hop.headers.get('cache-control')).toBe('no-store')
  expect(hop.headers.get('referrer-policy')).toBe('no-referrer')
  expect(hop.headers.get('content-security-policy')).toContain("default-src 'none'")
  for (const value of forbidden) if (value) expect(hop.body).not.toContain(value)
}

describe('callback: bad input', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack()
  })
  afterAll(async () => {
    await stack?.close()
  })

  /** Runs `request` and asserts it changed no row and called the token endpoint `calls` times. */
  async function unchanged(request: () => Promise<Hop>, calls = 0): Promise<Hop> {
    const before = snapshotDb(stack.dbPath)
    const counters = stack.simulator.counters().total
    const hop = await request()
    expect(snapshotDb(stack.dbPath)).toBe(before)
    expect(stack.simulator.counters().total - counters).toBe(calls)
    return hop
  }

  /**
   * A refused callback with a valid state from its own browser: the state is spent (the flow cannot be resumed,
   * replaying it answers state_used) and nothing else changes, with no token-endpoint call.
   */
  async function onlyStateSpent(client: BrowserClient, url: string): Promise<Hop> {
    const before = snapshotDb(stack.dbPath, { except: ['auth_states'] })
    const counters = stack.simulator.counters().total
    const hop = await client.get(url)
    expect(snapshotDb(stack.dbPath, { except: ['auth_states'] })).toBe(before)
    expect(stack.simulator.counters().total).toBe(counters)
    const state = new URL(url).searchParams.get('state') ?? ''
    const record = await stack.runtime.store.getAuthState(sha256(state))
    expect(record?.consumedAt).not.toBeNull()
    return hop
  }

  async function pendingCallback(): Promise<{ client: BrowserClient; url: URL }> {
    const client = new BrowserClient()
    const consent = await openConsentPage(stack, client)
    const url = new URL(await answerConsent(client, consent, { sellingPartnerId: randomSellingPartnerId() }))
    return { client, url }
  }

  it('missing state', async () => {
    const { client, url } = await pendingCallback()
    url.searchParams.delete('state')
    expectFixedError(await unchanged(() => client.get(url.href)), 'state_missing')
  })

  it('repeated state (even with the right value twice)', async () => {
    const { client, url } = await pendingCallback()
    url.searchParams.append('state', url.searchParams.get('state') ?? '')
    expectFixedError(await unchanged(() => client.get(url.href)), 'callback_invalid')
  })

  it('repeated code', async () => {
    const { client, url } = await pendingCallback()
    url.searchParams.append('spapi_oauth_code', 'another')
    expectFixedError(await unchanged(() => client.get(url.href)), 'callback_invalid')
  })

  it('foreign state: well-formed but never issued', async () => {
    const { client, url } = await pendingCallback()
    url.searchParams.set('state', 'A'.repeat(43))
    expectFixedError(await unchanged(() => client.get(url.href)), 'state_invalid')
  })

  it('malformed state, echoed nowhere', async () => {
    const { client, url } = await pendingCallback()
    const evil = '<script>alert("x")</script>'
    url.searchParams.set('state', evil)
    const hop = await unchanged(() => client.get(url.href))
    expectFixedError(hop, 'state_invalid', [evil, 'alert('])
  })

  it('a callback from another browser (no binding cookie, or another one)', async () => {
    const { url } = await pendingCallback()
    expectFixedError(await unchanged(() => new BrowserClient().get(url.href)), 'state_browser_mismatch')
    const other = new BrowserClient()
    other.setCookie(new URL(stack.serviceUrl).host, BINDING, 'B'.repeat(43))
    expectFixedError(await unchanged(() => other.get(url.href)), 'state_browser_mismatch')
  })

  it('replayed callback after success', async () => {
    const { client, url } = await pendingCallback()
    expect((await client.get(url.href)).status).toBe(303)
    expectFixedError(await unchanged(() => client.get(url.href)), 'state_used')
  })

  it('expired state (10 minutes)', async () => {
    const { client, url } = await pendingCallback()
    stack.clock.advance(10 * 60 * 1000 + 1000)
    try {
      expectFixedError(await unchanged(() => client.get(url.href)), 'state_expired')
    } finally {
      stack.clock.advance(-(10 * 60 * 1000 + 1000))
    }
  })

  it('Cancel on the consent page', async () => {
    const client = new BrowserClient()
    const consent = await openConsentPage(stack, client)
    const cancelUrl = await answerConsent(client, consent, {
      sellingPartnerId: randomSellingPartnerId(),
      button: 'cancel',
    })
    expect(new URL(cancelUrl).searchParams.has('spapi_oauth_code')).toBe(false)
    expectFixedError(await onlyStateSpent(client, cancelUrl), 'authorization_cancelled')
    // A cancelled flow cannot be resumed: the same state with a code is refused without an exchange.
    const resumed = new URL(cancelUrl)
    resumed.searchParams.delete('error')
    resumed.searchParams.set('spapi_oauth_code', 'ANcodeAfterCancel')
    resumed.searchParams.set('selling_partner_id', randomSellingPartnerId())
    expectFixedError(await unchanged(() => client.get(resumed.href)), 'state_used')
  })

  it('error together with a code is refused without an exchange, and spends the state', async () => {
    const { client, url } = await pendingCallback()
    url.searchParams.set('error', 'access_denied')
    expectFixedError(await onlyStateSpent(client, url.href), 'callback_invalid')
    url.searchParams.delete('error')
    expectFixedError(await unchanged(() => client.get(url.href)), 'state_used')
  })

  it('an unknown error value is an unknown failure, not a cancellation', async () => {
    const { client, url } = await pendingCallback()
    url.searchParams.delete('spapi_oauth_code')
    url.searchParams.set('error', 'server_error<script>')
    const hop = await onlyStateSpent(client, url.href)
    expectFixedError(hop, 'authorization_failed', ['<script>', 'server_error'])
    expect(hop.body).not.toContain('cancelled')
  })

  it('an access_token in the query is refused before anything is read (credentials never travel in URLs)', async () => {
    const { client, url } = await pendingCallback()
    url.searchParams.set('access_token', 'Atza|forged')
    const hop = await unchanged(() => client.get(url.href))
    expect(hop.status).toBe(400)
    expect(hop.body).not.toContain('forged')
  })

  it.each(['iss', 'code', 'id_token', 'token_type', 'response'])(
    'a %s parameter Amazon never sends is refused without an exchange',
    async (name) => {
      const { client, url } = await pendingCallback()
      url.searchParams.set(name, 'https://evil.example')
      expectFixedError(await onlyStateSpent(client, url.href), 'callback_invalid', ['evil.example'])
    },
  )

  it('missing or malformed code and selling partner id', async () => {
    for (const mutate of [
      (u: URL) => u.searchParams.delete('spapi_oauth_code'),
      (u: URL) => u.searchParams.set('spapi_oauth_code', 'has spaces and <tags>'),
      (u: URL) => u.searchParams.delete('selling_partner_id'),
      (u: URL) => u.searchParams.set('selling_partner_id', '../../etc'),
    ]) {
      const { client, url } = await pendingCallback()
      mutate(url)
      expectFixedError(await onlyStateSpent(client, url.href), 'callback_invalid', ['<tags>', '../../etc'])
    }
  })

  it('oversized query string', async () => {
    const { client, url } = await pendingCallback()
    url.searchParams.set('padding', 'x'.repeat(10_000))
    const hop = await unchanged(() => client.get(url.href))
    expect([400, 414, 431]).toContain(hop.status)
    expect(hop.body).not.toContain('xxxxxxxxxx')
  })

  it('an expired code (over 5 minutes on Amazon) is rejected by LWA: one call, no connection, fixed error', async () => {
    const { client, url } = await pendingCallback()
    stack.simulator.advanceClock(5 * 60 * 1000 + 1000)
    const connectionsBefore = await stack.runtime.store.listConnections()
    const before = stack.simulator.counters().byGrant.authorization_code
    const hop = await client.get(url.href)
    expectFixedError(hop, 'code_rejected', [url.searchParams.get('spapi_oauth_code') ?? ''])
    expect(stack.simulator.counters().byGrant.authorization_code - before).toBe(1)
    expect(await stack.runtime.store.listConnections()).toEqual(connectionsBefore)
  })

  it('a reused code is rejected by LWA even with a fresh, valid state', async () => {
    const first = await connectSeller(stack, new BrowserClient())
    const usedCode = new URL(first.callbackUrl).searchParams.get('spapi_oauth_code') ?? ''
    const { client, url } = await pendingCallback()
    url.searchParams.set('spapi_oauth_code', usedCode)
    const hop = await client.get(url.href)
    expectFixedError(hop, 'code_rejected', [usedCode])
  })

  it('an unknown connection id on the API and the dashboard', async () => {
    const api = await stack.api('POST', '/v1/connections/con_doesnotexist/access-token')
    expect(api.status).toBe(404)
    expect(api.json).toEqual({
      error: { code: 'connection_not_found', message: ERROR_CODES.connection_not_found.message },
    })
    // Not an id sp-connect could have made: refused by its format (rule 8 of issue 7), before any lookup.
    expect((await stack.api('GET', '/v1/connections/con_x%3Cscript%3E')).status).toBe(400)
    expect((await stack.api('DELETE', '/v1/connections/con_nope')).status).toBe(404)
  })

  it('the API refuses missing and wrong keys', async () => {
    const none = await fetch(`${stack.serviceUrl}/v1/connections`)
    expect(none.status).toBe(401)
    expect(await none.json()).toEqual({
      error: { code: 'unauthenticated', message: ERROR_CODES.unauthenticated.message },
    })
    const wrong = await fetch(`${stack.serviceUrl}/v1/connections`, {
      headers: { authorization: 'Bearer nope' },
    })
    expect(wrong.status).toBe(401)
  })

  it('no token, code, state, secret or API key ever reached a log line', async () => {
    await connectSeller(stack, new BrowserClient())
    const logs = stack.logger.text()
    expect(logs.length).toBeGreaterThan(0)
    expect(logs).not.toMatch(/Atz[ar]\|/)
    expect(logs).not.toContain(stack.app.clientSecrets[0]?.secret ?? 'unreachable')
    expect(logs).not.toContain(stack.apiKey)
    expect(logs).not.toMatch(/spapi_oauth_code=|state=/)
  })
})

describe('callback: garbage from the token endpoint', () => {
  let garbage: Server
  let stack: Stack
  beforeAll(async () => {
    // A token endpoint that answers 200 with HTML: a real server, because the simulator is faithful and never does.
    garbage = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<html>Atza|not-json</html>')
    })
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve))
    const port = (garbage.address() as AddressInfo).port
    stack = await startStack({ lwaTokenUrl: `http://127.0.0.1:${port}/auth/o2/token` })
  })
  afterAll(async () => {
    await stack?.close()
    await new Promise((resolve) => garbage?.close(resolve))
  })

  it('answers a fixed error and stores no connection', async () => {
    const client = new BrowserClient()
    const consent = await openConsentPage(stack, client)
    const callbackUrl = await answerConsent(client, consent, { sellingPartnerId: randomSellingPartnerId() })
    const hop = await client.get(callbackUrl)
    expectFixedError(hop, 'lwa_unexpected_response', ['not-json'])
    expect(await stack.runtime.store.listConnections()).toEqual([])
  })
})
