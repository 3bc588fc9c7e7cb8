/**
 * `sp-connect call` as a user runs it (a child process configured only through the environment, sharing the
 * deployment's SQLite file) against the simulator's SP-API: query parameters, a body from a file, JSON output,
 * and `--all` following getOrders' NextToken pages (a restricted operation, so through an RDT).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { BrowserClient } from '../helpers/browser-client.ts'
import { runCli } from '../helpers/cli.ts'
import { connectSeller } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const NA_HOST = 'sellingpartnerapi-na.amazon.com'
const NA_MARKETPLACES = 'ATVPDKIKX0DER,A2EUQ1WTGCTBG2,A1AM78C64UM0Y8,A2Q3Y263D00KWC'

interface Page {
  status: number
  request_id: string | null
  rate_limit: string | null
  body: Record<string, unknown>
}

interface OrderJson {
  AmazonOrderId: string
  BuyerInfo?: { BuyerEmail?: string }
}

let stack: Stack
let scratch: string
let connectionId: string

beforeAll(async () => {
  stack = await startStack()
  scratch = mkdtempSync(join(tmpdir(), 'sp-connect-cli-call-'))
})

afterAll(async () => {
  await stack?.close()
  if (scratch) rmSync(scratch, { recursive: true, force: true })
})

// A new seller per test: each starts with full usage-plan buckets.
beforeEach(async () => {
  connectionId = (await connectSeller(stack, new BrowserClient(), { tenantId: 'cli-call' })).connectionId
})

const cli = (args: readonly string[]) => runCli(['call', connectionId, ...args], { env: stack.env })

/** Four to eight days ago: a fixed window, so the CLI and the direct listing see the same orders. */
function window(): { after: string; before: string } {
  const now = Date.now()
  return {
    after: new Date(now - 8 * 86_400_000).toISOString(),
    before: new Date(now - 4 * 86_400_000).toISOString(),
  }
}

describe('sp-connect call', () => {
  it('--all --json --query follows getOrders’ NextToken through every page, with the RDT’s buyer info', async () => {
    const { after, before } = window()
    const result = await cli([
      'GET',
      '/orders/v0/orders',
      '--query',
      `MarketplaceIds=${NA_MARKETPLACES}`,
      '--query',
      `CreatedAfter=${after}`,
      '--query',
      `CreatedBefore=${before}`,
      '--query',
      'MaxResultsPerPage=2',
      '--all',
      '--json',
    ])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const pages = JSON.parse(result.stdout) as Page[]
    expect(pages.length).toBeGreaterThanOrEqual(2)
    const listed: OrderJson[] = []
    for (const [i, page] of pages.entries()) {
      expect(page.status).toBe(200)
      expect(page.request_id).toBeTruthy()
      expect(page.rate_limit).toBeTruthy()
      const payload = page.body['payload'] as { Orders: OrderJson[]; NextToken?: string }
      expect(payload.NextToken === undefined).toBe(i === pages.length - 1)
      listed.push(...payload.Orders)
    }
    for (const order of listed) expect(order.BuyerInfo?.BuyerEmail).toBeTruthy()

    // The same window in one page, straight from the simulator with the plain token: the same orders.
    const token = await stack.runtime.tokens.getAccessToken(connectionId)
    const query = new URLSearchParams({
      MarketplaceIds: NA_MARKETPLACES,
      CreatedAfter: after,
      CreatedBefore: before,
    })
    const direct = await fetch(`${stack.simulatorUrl}/${NA_HOST}/orders/v0/orders?${query}`, {
      headers: { 'x-amz-access-token': token.accessToken },
    })
    const all = ((await direct.json()) as { payload: { Orders: OrderJson[] } }).payload.Orders
    expect(all.length).toBeGreaterThan(2)
    expect(listed.map((o) => o.AmazonOrderId)).toEqual(all.map((o) => o.AmazonOrderId))
  })

  it('--body @file sends the file as the request body; --json prints one answer', async () => {
    const file = join(scratch, 'rdt-request.json')
    writeFileSync(
      file,
      JSON.stringify({
        restrictedResources: [{ method: 'GET', path: '/orders/v0/orders/{orderId}/address' }],
      }),
    )
    const result = await cli([
      'POST',
      '/tokens/2021-03-01/restrictedDataToken',
      '--body',
      `@${file}`,
      '--json',
    ])
    expect(result.code).toBe(0)
    const page = JSON.parse(result.stdout) as Page
    expect(page.status).toBe(200)
    expect(page.request_id).toBeTruthy()
    // The simulator read the resources from the body: the RDT it issued names them.
    expect(String(page.body['restrictedDataToken'])).toMatch(/^Atz\.sprdt\|/)
    expect(page.body['expiresIn']).toBe(3600)
  })

  it('refuses a body that is not JSON or a file that cannot be read, and exits 1 on an SP-API error', async () => {
    const notJson = await cli(['POST', '/tokens/2021-03-01/restrictedDataToken', '--body', '{nope'])
    expect(notJson.code).not.toBe(0)
    expect(notJson.stderr).toContain('invalid_request')
    const missing = await cli([
      'POST',
      '/tokens/2021-03-01/restrictedDataToken',
      '--body',
      `@${join(scratch, 'absent.json')}`,
    ])
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toContain('invalid_request')
    // getOrders without its required query: Amazon's 400 InvalidInput, printed, and exit status 1.
    const bad = await cli(['GET', '/orders/v0/orders', '--json'])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('SP-API answered HTTP 400')
    const page = JSON.parse(bad.stdout) as Page
    expect(page.status).toBe(400)
    expect(JSON.stringify(page.body)).toContain('InvalidInput')
  })
})
