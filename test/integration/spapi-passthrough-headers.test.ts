/**
 * What every answer of the SP-API passthrough carries, however the route builds it (docs/decisions/
 * 0016-passthrough-hot-path.md): the security headers, `no-store`, the request id, and only allow-listed
 * SP-API headers; a small answer of known length goes out with its length, a streamed one without.
 * Real HTTP on loopback, with the recording proxy of test/helpers/spapi-upstream.ts in front of the simulator;
 * the proxy answers itself only the streamed answer (no Content-Length), which the simulator never sends.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { BrowserClient } from '../helpers/browser-client.ts'
import { connectSeller } from '../helpers/flows.ts'
import { type SpApiUpstream, startStackBehindUpstream } from '../helpers/spapi-upstream.ts'
import type { Stack } from '../helpers/stack.ts'

const PARTICIPATIONS = '/sellers/v1/marketplaceParticipations'
const SECURITY_HEADERS = [
  'content-security-policy',
  'referrer-policy',
  'x-content-type-options',
  'x-frame-options',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
]

let upstream: SpApiUpstream
let stack: Stack
let connectionId: string

beforeAll(async () => {
  ;({ stack, upstream } = await startStackBehindUpstream())
})

afterAll(async () => {
  await stack?.close()
  await upstream?.close()
})

beforeEach(async () => {
  connectionId = (await connectSeller(stack, new BrowserClient(), { tenantId: 'tenant-a' })).connectionId
  upstream.seen.length = 0
  upstream.intercepts.length = 0
})

function door(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers)
  headers.set('authorization', `Bearer ${stack.apiKey}`)
  headers.set('x-request-id', 'req-passthrough-1')
  return fetch(`${stack.serviceUrl}/v1/connections/${connectionId}/spapi${path}`, { ...init, headers })
}

function expectOurHeaders(response: Response): void {
  for (const name of SECURITY_HEADERS) expect(response.headers.get(name), name).toBeTruthy()
  expect(response.headers.get('cache-control')).toBe('no-store')
  expect(response.headers.get('x-request-id')).toBe('req-passthrough-1')
}

describe('answers of ANY /v1/connections/:id/spapi/*', () => {
  it('a small answer: security headers, request id, its length, and the log line', async () => {
    const response = await door(PARTICIPATIONS)
    expect(response.status).toBe(200)
    expectOurHeaders(response)
    const body = await response.text()
    expect(response.headers.get('content-length')).toBe(String(Buffer.byteLength(body)))
    expect((JSON.parse(body) as { payload: unknown[] }).payload.length).toBeGreaterThan(0)
    expect(stack.logger.text()).toContain('req-passthrough-1')
  })

  it('a streamed answer, a HEAD and an error: the same headers, and no header Amazon set beyond the list', async () => {
    upstream.intercepts.push(async (_seen, req, res) => {
      req.resume()
      res.writeHead(200, {
        'content-type': 'application/json',
        'x-amzn-RequestId': 'streamed',
        'set-cookie': 'a=b',
      })
      res.write('{"payload":')
      res.end('[1]}')
      return true
    })
    const streamed = await door(`${PARTICIPATIONS}?a=%20b`)
    expect(streamed.status).toBe(200)
    expectOurHeaders(streamed)
    expect(streamed.headers.get('set-cookie')).toBeNull()
    expect(streamed.headers.get('x-amzn-requestid')).toBe('streamed')
    expect(await streamed.text()).toBe('{"payload":[1]}')
    expect(upstream.seen[0]?.url).toContain(`${PARTICIPATIONS}?a=%20b`)

    const head = await door(PARTICIPATIONS, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expectOurHeaders(head)

    const unknown = await door('/no/such/operation')
    expect(unknown.status).toBe(400)
    expectOurHeaders(unknown)
  })
})
