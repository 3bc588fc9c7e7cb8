/**
 * A code exchange whose outcome is unknown (issue 8): the request reached the token endpoint and the connection
 * dropped before an answer. The code may have been redeemed, and redeeming it again could revoke what the first
 * redemption produced, so the callback is not retried: the seller sees "outcome unknown, start again"
 * (`code_exchange_unknown`) and nothing is stored. The token endpoint is a fake on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ERROR_CODES } from '../../src/domain/errors.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { type FakeTokenEndpoint, reset, startFakeTokenEndpoint } from '../helpers/fake-token-endpoint.ts'
import { answerConsent, openConsentPage, randomSellingPartnerId } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

describe('code exchange with an unknown outcome', () => {
  let stack: Stack
  let endpoint: FakeTokenEndpoint
  beforeAll(async () => {
    endpoint = await startFakeTokenEndpoint()
    endpoint.script(reset)
    stack = await startStack({ lwaTokenUrl: endpoint.url })
  })
  afterAll(async () => {
    await stack?.close()
    await endpoint?.close()
  })

  it('is shown as "outcome unknown, start again", sent once, logged, and stores nothing', async () => {
    const client = new BrowserClient()
    const consent = await openConsentPage(stack, client)
    const callbackUrl = await answerConsent(client, consent, { sellingPartnerId: randomSellingPartnerId() })
    const hop = await client.get(callbackUrl)
    expect(hop.status).toBe(ERROR_CODES.code_exchange_unknown.status)
    expect(hop.body).toContain('<code>code_exchange_unknown</code>')
    expect(hop.body).toContain('it is unknown whether the account was connected')
    expect(endpoint.requests.filter((r) => r.get('grant_type') === 'authorization_code')).toHaveLength(1)
    expect(await stack.runtime.store.listConnections()).toEqual([])
    const code = endpoint.requests[0]?.get('code') ?? ''
    expect(code).not.toBe('')
    const logged = stack.logger.lines.filter((line) => line.includes('code exchange outcome unknown'))
    expect(logged).toHaveLength(1)
    for (const line of stack.logger.lines) expect(line).not.toContain(code)
  })
})
