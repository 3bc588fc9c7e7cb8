/**
 * Token lifecycle against the simulator over real HTTP: cached tokens, refresh on expiry (once for many
 * concurrent callers), revocation detected with exactly one token-endpoint call, and tokens never stored in
 * plaintext anywhere in the SQLite file or its WAL.
 */
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfigFromEnv } from '../../src/config.ts'
import { defaultDeps } from '../../src/core/deps.ts'
import { STATUS_RECHECK_MS } from '../../src/core/tokens/manager.ts'
import { openToken } from '../../src/core/tokens/sealed.ts'
import { openRuntime } from '../../src/runtime.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { connectSeller } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

const HOUR = 60 * 60 * 1000

describe('access tokens', () => {
  let stack: Stack
  beforeAll(async () => {
    stack = await startStack()
  })
  afterAll(async () => {
    await stack?.close()
  })

  const refreshCalls = () => stack.simulator.counters().byGrant.refresh_token

  it('serves the cached token while more than the margin is left, then refreshes once for 50 concurrent callers', async () => {
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    const before = refreshCalls()
    const first = await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    stack.clock.advance(50 * 60 * 1000) // 10 minutes left: more than the 5-minute margin
    const cached = await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    expect(cached.json['access_token']).toBe(first.json['access_token'])
    expect(refreshCalls()).toBe(before)

    stack.clock.advance(6 * 60 * 1000) // 4 minutes left: inside the margin
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => stack.api('POST', `/v1/connections/${connectionId}/access-token`)),
    )
    expect(refreshCalls() - before).toBe(1)
    const tokens = new Set(answers.map((a) => a.json['access_token']))
    expect(tokens.size).toBe(1)
    expect([...tokens][0]).not.toBe(first.json['access_token'])
    for (const a of answers)
      expect(Date.parse(String(a.json['expires_at']))).toBeGreaterThan(stack.clock.now() + 55 * 60 * 1000)

    const row = await stack.runtime.store.getConnection(connectionId)
    expect(row).toMatchObject({ status: 'active', failureCount: 0, lastRefreshError: null })
    expect(row?.lastRefreshAt).not.toBeNull()
  })

  it('a revoked seller costs exactly one token-endpoint call, then needs re-authorization and stops refreshing', async () => {
    const { connectionId, sellingPartnerId } = await connectSeller(stack, new BrowserClient())
    stack.simulator.revoke(sellingPartnerId)
    stack.clock.advance(HOUR)
    const before = refreshCalls()
    const answer = await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    expect(answer.status).toBe(409)
    expect((answer.json['error'] as { code: string }).code).toBe('connection_needs_reauthorization')
    expect(refreshCalls() - before).toBe(1)

    const again = await Promise.all(
      Array.from({ length: 5 }, () => stack.api('POST', `/v1/connections/${connectionId}/access-token`)),
    )
    for (const a of again) expect(a.status).toBe(409)
    expect(refreshCalls() - before).toBe(1)

    const row = await stack.runtime.store.getConnection(connectionId)
    expect(row).toMatchObject({ status: 'needs_reauthorization', statusReason: 'lwa_invalid_grant' })
    const events = await stack.api('GET', `/v1/connections/${connectionId}/events`)
    expect((events.json['data'] as { type: string }[]).map((e) => e.type)).toContain(
      'connection.needs_reauthorization',
    )
  })

  it('SP-API rejecting an expired token triggers one forced refresh and one retry', async () => {
    const { connectionId, sellingPartnerId } = await connectSeller(stack, new BrowserClient())
    await stack.runtime.tokens.getAccessToken(connectionId)
    stack.simulator.expireAccessTokens(sellingPartnerId)
    const before = refreshCalls()
    const call = await stack.runtime.spapi.call(connectionId, {
      method: 'GET',
      path: '/sellers/v1/marketplaceParticipations',
    })
    expect(call.status).toBe(200)
    expect(refreshCalls() - before).toBe(1)
  })

  it('disconnecting deletes the tokens, and the connection hands out no more', async () => {
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    const removed = await stack.api('DELETE', `/v1/connections/${connectionId}`)
    expect(removed.status).toBe(200)
    expect(removed.json['status']).toBe('disconnected')
    const row = await stack.runtime.store.getConnection(connectionId)
    expect(row).toMatchObject({ refreshTokenCiphertext: null, accessTokenCiphertext: null })
    const answer = await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    expect(answer.status).toBe(409)
    expect((answer.json['error'] as { code: string }).code).toBe('connection_disconnected')
  })

  it('a disconnect made by another process (the CLI) stops the service handing out the token within seconds', async () => {
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    expect((await stack.api('POST', `/v1/connections/${connectionId}/access-token`)).status).toBe(200)
    // Another process sharing the database: it writes the store directly, the service's memory knows nothing.
    const other = await openRuntime(loadConfigFromEnv(stack.env), defaultDeps())
    try {
      await other.store.disconnectConnection(connectionId, Date.now())
    } finally {
      await other.close()
    }
    stack.clock.advance(STATUS_RECHECK_MS + 1)
    const answer = await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    expect(answer.status).toBe(409)
    expect((answer.json['error'] as { code: string }).code).toBe('connection_disconnected')
  })

  it('no token is stored in plaintext: the SQLite file and its WAL hold only ciphertext', async () => {
    const { connectionId } = await connectSeller(stack, new BrowserClient())
    await stack.api('POST', `/v1/connections/${connectionId}/access-token`)
    const row = await stack.runtime.store.getConnection(connectionId)
    const refreshToken = openToken(
      stack.runtime.keyring,
      connectionId,
      'refresh_token',
      row?.refreshTokenCiphertext ?? '',
    )
    const accessToken = openToken(
      stack.runtime.keyring,
      connectionId,
      'access_token',
      row?.accessTokenCiphertext ?? '',
    )
    expect(refreshToken).toMatch(/^Atzr\|/)
    expect(accessToken).toMatch(/^Atza\|/)
    const files = [stack.dbPath, `${stack.dbPath}-wal`].map((path) => {
      try {
        return readFileSync(path)
      } catch {
        return Buffer.alloc(0)
      }
    })
    // The ciphertexts are in the file or its WAL (a checkpoint may have moved them): the scan covers both.
    expect(Buffer.concat(files).includes(Buffer.from(row?.refreshTokenCiphertext ?? 'missing'))).toBe(true)
    for (const bytes of files) {
      expect(bytes.includes(Buffer.from('Atzr|'))).toBe(false)
      expect(bytes.includes(Buffer.from('Atza|'))).toBe(false)
      expect(bytes.includes(Buffer.from(refreshToken.slice(5, 40)))).toBe(false)
      expect(bytes.includes(Buffer.from(accessToken.slice(5, 40)))).toBe(false)
    }
  })
})
