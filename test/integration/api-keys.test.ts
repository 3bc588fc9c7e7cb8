/**
 * API keys as managed objects with scopes and tenants (issue 7, rule 5), over real HTTP on loopback against
 * the service and the simulator with a real SQLite file. The attacker's view: a key scoped to tenant A trying
 * every /v1 route on tenant B's connection and on a tenantless one gets the same 404 as for a missing
 * connection, changes nothing, causes no token-endpoint call, and leaves an `access.denied` event.
 */
import { randomBytes } from 'node:crypto'
import { escapeIdentifier } from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApiKey } from '../../src/core/access/api-keys.ts'
import type { Scope } from '../../src/core/access/principal.ts'
import { newId } from '../../src/core/encoding.ts'
import { DENIAL_AUDITS_PER_KEY_PER_MINUTE } from '../../src/server/access.ts'
import type { NewConnection } from '../../src/store/store.ts'
import { BrowserClient } from '../helpers/browser-client.ts'
import { databaseUrl, locateTestPostgres, withClient } from '../helpers/cluster.ts'
import { connectSeller } from '../helpers/flows.ts'
import { type Stack, startStack } from '../helpers/stack.ts'

interface Answer {
  status: number
  json: Record<string, unknown>
}

describe('API keys and scopes', () => {
  let stack: Stack
  let conA: string
  let conB: string
  let conNone: string

  async function call(key: string, method: string, path: string, body?: unknown): Promise<Answer> {
    const response = await fetch(`${stack.serviceUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    })
    const text = await response.text()
    return { status: response.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
  }

  async function dbKey(
    scopes: Scope[],
    tenants: string[] | null,
    name = 'test',
  ): Promise<{ id: string; key: string }> {
    const { record, key } = await createApiKey(
      stack.runtime.store,
      stack.runtime.deps,
      stack.runtime.events,
      {
        name,
        scopes,
        tenants,
        createdBy: 'test',
      },
    )
    return { id: record.id, key }
  }

  const code = (a: Answer) => (a.json['error'] as { code?: string } | undefined)?.code
  const deniedEvents = async (connectionId: string) =>
    (await stack.runtime.store.listEvents({ connectionId, type: 'access.denied', limit: 1000 })).length

  beforeAll(async () => {
    stack = await startStack()
    conA = (await connectSeller(stack, new BrowserClient(), { tenantId: 'tenant-a' })).connectionId
    conB = (await connectSeller(stack, new BrowserClient(), { tenantId: 'tenant-b' })).connectionId
    // A connection without a tenant (as `connections add` without --tenant makes): its ciphertexts are never
    // opened here, every attempt on it must stop before that.
    const tenantless = {
      id: newId('con', stack.runtime.deps.randomBytes),
      sellingPartnerId: 'ATENANTLESS0001',
      region: 'na',
      accountType: 'seller',
      tenantId: null,
      refreshTokenCiphertext: 'not-a-real-ciphertext',
      accessTokenCiphertext: null,
      accessTokenExpiresAt: null,
      accountFingerprint: null,
      authorizedAt: stack.clock.now(),
      reauthorizeBy: stack.clock.now() + 365 * 24 * 3600_000,
      now: stack.clock.now(),
    }
    const inserted = await stack.runtime.store.insertConnection(tenantless as NewConnection)
    conNone = inserted?.id ?? ''
    expect(inserted?.tenantId).toBeNull()
  })

  afterAll(async () => {
    await stack?.close()
  })

  describe('a key scoped to tenant A', () => {
    let keyA: string
    beforeAll(async () => {
      keyA = (await dbKey(['read', 'tokens', 'manage'], ['tenant-a'], 'tenant-a backend')).key
    })

    it('lists only tenant A connections; another tenant_id gives an empty list', async () => {
      const all = await call(keyA, 'GET', '/v1/connections')
      expect(all.status).toBe(200)
      expect((all.json['data'] as { id: string }[]).map((c) => c.id)).toEqual([conA])
      const other = await call(keyA, 'GET', '/v1/connections?tenant_id=tenant-b')
      expect(other.status).toBe(200)
      expect(other.json['data']).toEqual([])
      const own = await call(keyA, 'GET', '/v1/connections?tenant_id=tenant-a')
      expect((own.json['data'] as { id: string }[]).map((c) => c.id)).toEqual([conA])
    })

    it('reads, gets a token for and sees the events of its own connection', async () => {
      expect((await call(keyA, 'GET', `/v1/connections/${conA}`)).status).toBe(200)
      const token = await call(keyA, 'POST', `/v1/connections/${conA}/access-token`)
      expect(token.status).toBe(200)
      expect(typeof token.json['access_token']).toBe('string')
      expect((await call(keyA, 'GET', `/v1/connections/${conA}/events`)).status).toBe(200)
      expect((await call(keyA, 'GET', `/v1/events?connection_id=${conA}`)).status).toBe(200)
    })

    for (const target of ['tenant B', 'tenantless'] as const) {
      it(`gets 404 on every route for a ${target} connection, changes nothing, and is audited`, async () => {
        const id = target === 'tenant B' ? conB : conNone
        const before = await stack.runtime.store.getConnection(id)
        const eventsBefore = await stack.runtime.store.listEvents({ connectionId: id, limit: 1000 })
        const refreshCalls = stack.simulator.counters().byGrant.refresh_token
        const missing = await call(keyA, 'GET', '/v1/connections/con_doesnotexist0000000000')
        const attempts = [
          await call(keyA, 'GET', `/v1/connections/${id}`),
          await call(keyA, 'GET', `/v1/connections/${id}/events`),
          await call(keyA, 'POST', `/v1/connections/${id}/access-token`),
          await call(keyA, 'DELETE', `/v1/connections/${id}`),
          await call(keyA, 'GET', `/v1/events?connection_id=${id}`),
        ]
        for (const attempt of attempts) {
          expect(attempt.status).toBe(404)
          // Indistinguishable from a connection that does not exist.
          expect(attempt.json).toEqual(missing.json)
        }
        const event = eventsBefore.find((e) => e.type === 'connection.created')
        if (event) {
          const one = await call(keyA, 'GET', `/v1/events/${event.id}`)
          expect(one.status).toBe(404)
          const deliveries = await call(keyA, 'GET', `/v1/webhook-deliveries?event_id=${event.id}`)
          expect(deliveries.status).toBe(404)
        }
        const listed = await call(keyA, 'GET', '/v1/connections')
        expect((listed.json['data'] as { id: string }[]).map((c) => c.id)).not.toContain(id)
        // Nothing changed, no token was fetched, and the refusal was audited (once: deduplicated per minute).
        expect(await stack.runtime.store.getConnection(id)).toEqual(before)
        expect(stack.simulator.counters().byGrant.refresh_token).toBe(refreshCalls)
        const denied = await stack.runtime.store.listEvents({
          connectionId: id,
          type: 'access.denied',
          limit: 100,
        })
        expect(denied).toHaveLength(1)
        expect(denied[0]?.data['key_name']).toBe('tenant-a backend')
        expect(String(denied[0]?.data['key_id'])).toMatch(/^key_/)
        // No token, key or hash in the event.
        expect(JSON.stringify(denied[0]?.data)).not.toContain(keyA)
      })
    }

    it('audits a flood of refusals once per key and connection per minute', async () => {
      const { key } = await dbKey(['read'], ['tenant-a'], 'flooder')
      const before = await deniedEvents(conB)
      await Promise.all(Array.from({ length: 50 }, () => call(key, 'GET', `/v1/connections/${conB}`)))
      expect(await deniedEvents(conB)).toBe(before + 1)
      stack.clock.advance(61_000)
      await call(key, 'GET', `/v1/connections/${conB}`)
      expect(await deniedEvents(conB)).toBe(before + 2)
    })

    it('audits at most a bounded number of refusals per key per minute, however many connections it probes', async () => {
      const { id, key } = await dbKey(['read'], ['tenant-a'], 'prober')
      const targets: string[] = []
      for (let i = 0; i < DENIAL_AUDITS_PER_KEY_PER_MINUTE + 10; i++) {
        const row = await stack.runtime.store.insertConnection({
          id: newId('con', stack.runtime.deps.randomBytes),
          sellingPartnerId: `APROBE${String(i).padStart(6, '0')}`,
          region: 'eu',
          accountType: 'seller',
          tenantId: 'tenant-b',
          refreshTokenCiphertext: 'not-a-real-ciphertext',
          accessTokenCiphertext: null,
          accessTokenExpiresAt: null,
          accountFingerprint: null,
          authorizedAt: stack.clock.now(),
          reauthorizeBy: stack.clock.now() + 365 * 24 * 3600_000,
          now: stack.clock.now(),
        } as NewConnection)
        targets.push(row?.id ?? '')
      }
      for (const target of targets)
        expect((await call(key, 'GET', `/v1/connections/${target}`)).status).toBe(404)
      const audited = (await stack.runtime.store.listEvents({ type: 'access.denied', limit: 1000 })).filter(
        (e) => e.data['key_id'] === id,
      )
      expect(audited).toHaveLength(DENIAL_AUDITS_PER_KEY_PER_MINUTE)
    })

    it('may not read app-wide events, deliveries, grantless tokens or notifications', async () => {
      expect((await call(keyA, 'GET', '/v1/events')).status).toBe(403)
      expect((await call(keyA, 'GET', '/v1/webhook-deliveries')).status).toBe(403)
      expect(
        (await call(keyA, 'POST', '/v1/grantless-tokens', { scope: 'sellingpartnerapi::notifications' }))
          .status,
      ).toBe(403)
      expect((await call(keyA, 'POST', '/v1/notifications', {})).status).toBe(403)
    })
  })

  describe('scopes', () => {
    it('refuses a token to a read-only key (403) and lets it read', async () => {
      const { key } = await dbKey(['read'], null)
      expect((await call(key, 'GET', `/v1/connections/${conA}`)).status).toBe(200)
      const token = await call(key, 'POST', `/v1/connections/${conA}/access-token`)
      expect(token.status).toBe(403)
      expect(code(token)).toBe('forbidden')
      expect(token.json['access_token']).toBeUndefined()
      expect((await call(key, 'DELETE', `/v1/connections/${conA}`)).status).toBe(403)
      expect((await call(key, 'GET', '/v1/api-keys')).status).toBe(403)
    })

    it('refuses reads to a tokens-only key', async () => {
      const { key } = await dbKey(['tokens'], null)
      expect((await call(key, 'GET', '/v1/connections')).status).toBe(403)
      expect((await call(key, 'POST', `/v1/connections/${conA}/access-token`)).status).toBe(200)
    })
  })

  describe('revocation and bad credentials', () => {
    it('refuses a revoked key with 401 from the next request on', async () => {
      const { id, key } = await dbKey(['read'], null)
      expect((await call(key, 'GET', '/v1/connections')).status).toBe(200)
      const revoked = await stack.api('DELETE', `/v1/api-keys/${id}`)
      expect(revoked.status).toBe(200)
      expect(revoked.json['revoked_at']).toBeTruthy()
      const after = await call(key, 'GET', '/v1/connections')
      expect(after.status).toBe(401)
      expect(code(after)).toBe('unauthenticated')
    })

    it('refuses unknown keys with 401', async () => {
      expect(
        (await call('spc_not-a-key-at-all-0000000000000000000000', 'GET', '/v1/connections')).status,
      ).toBe(401)
    })

    it('records last use, at most every few minutes', async () => {
      const { id, key } = await dbKey(['read'], null)
      await call(key, 'GET', '/v1/connections')
      const first = (await stack.runtime.store.apiKeys.get(id))?.lastUsedAt
      expect(first).toBeTypeOf('number')
      stack.clock.advance(1000)
      await call(key, 'GET', '/v1/connections')
      expect((await stack.runtime.store.apiKeys.get(id))?.lastUsedAt).toBe(first)
    })
  })

  describe('credentials in the query string', () => {
    for (const name of [
      'api_key',
      'APIKEY',
      'key',
      'access_token',
      'Token',
      'refresh_token',
      'client_secret',
      'authorization',
      'password',
    ]) {
      it(`refuses ?${name}= with 400 on /v1 and on pages`, async () => {
        for (const path of [
          `/v1/connections?${name}=${stack.apiKey}`,
          `/healthz?${name}=x`,
          `/connect?${name}=x`,
        ]) {
          const response = await fetch(`${stack.serviceUrl}${path}`, {
            headers: { authorization: `Bearer ${stack.apiKey}` },
            redirect: 'manual',
          })
          expect(response.status).toBe(400)
          const text = await response.text()
          // The presented value is never echoed back.
          expect(text).not.toContain(stack.apiKey)
        }
      })
    }

    it('never accepts a key from the query string instead of the header', async () => {
      const response = await fetch(`${stack.serviceUrl}/v1/connections?api_key=${stack.apiKey}`)
      expect(response.status).toBe(400)
    })
  })

  describe('managing keys over HTTP', () => {
    it('creates a key (shown once), lists it without the key or hash, and the key works', async () => {
      const created = await stack.api('POST', '/v1/api-keys', {
        name: 'worker',
        scopes: ['read'],
        tenants: ['tenant-a'],
      })
      expect(created.status).toBe(201)
      const key = String(created.json['key'])
      expect(key).toMatch(/^spc_[A-Za-z0-9_-]{43}$/)
      expect(created.json['scopes']).toEqual(['read'])
      expect(created.json['tenants']).toEqual(['tenant-a'])
      const listed = await stack.api('GET', '/v1/api-keys')
      const text = JSON.stringify(listed.json)
      expect(text).toContain(String(created.json['id']))
      expect(text).not.toContain(key)
      const stored = await stack.runtime.store.apiKeys.get(String(created.json['id']))
      expect(text).not.toContain(stored?.hash)
      expect((await call(key, 'GET', `/v1/connections/${conA}`)).status).toBe(200)
    })

    it('refuses a key without scopes, with an unknown scope or an empty tenant list (400)', async () => {
      for (const body of [
        { name: 'x', scopes: [] },
        { name: 'x', scopes: ['admin'] },
        { name: 'x', scopes: ['read'], tenants: [] },
        { name: 'x', scopes: ['read'], tenants: ['bad\u0000tenant'] },
        { name: '', scopes: ['read'] },
      ]) {
        const answer = await stack.api('POST', '/v1/api-keys', body)
        expect(answer.status).toBe(400)
      }
    })

    it('refuses a key broader than its creator (403)', async () => {
      const { key } = await dbKey(['read', 'manage'], ['tenant-a'])
      const before = (await stack.runtime.store.apiKeys.list()).length
      for (const body of [
        { name: 'x', scopes: ['read', 'tokens'], tenants: ['tenant-a'] },
        { name: 'x', scopes: ['read'], tenants: ['tenant-a', 'tenant-b'] },
        { name: 'x', scopes: ['read'] },
        { name: 'x', scopes: ['read'], tenants: null },
      ]) {
        const answer = await call(key, 'POST', '/v1/api-keys', body)
        expect(answer.status).toBe(403)
        expect(answer.json['key']).toBeUndefined()
      }
      expect((await stack.runtime.store.apiKeys.list()).length).toBe(before)
      const narrower = await call(key, 'POST', '/v1/api-keys', {
        name: 'x',
        scopes: ['read'],
        tenants: ['tenant-a'],
      })
      expect(narrower.status).toBe(201)
    })

    it('lets a tenant-scoped manager see and revoke only keys within itself', async () => {
      const manager = await dbKey(['read', 'manage'], ['tenant-a'])
      const other = await dbKey(['read'], ['tenant-b'])
      const listed = await call(manager.key, 'GET', '/v1/api-keys')
      const ids = (listed.json['data'] as { id: string }[]).map((k) => k.id)
      expect(ids).toContain(manager.id)
      expect(ids).not.toContain(other.id)
      const revoke = await call(manager.key, 'DELETE', `/v1/api-keys/${other.id}`)
      expect(revoke.status).toBe(404)
      expect((await stack.runtime.store.apiKeys.get(other.id))?.revokedAt).toBeNull()
    })

    it('needs the manage scope', async () => {
      const { key } = await dbKey(['read', 'tokens'], null)
      expect((await call(key, 'POST', '/v1/api-keys', { name: 'x', scopes: ['read'] })).status).toBe(403)
      expect((await call(key, 'GET', '/v1/api-keys')).status).toBe(403)
    })
  })

  describe('token issuance audit', () => {
    it('records token.issued once per new access token per key and connection, without the token', async () => {
      const { id, key } = await dbKey(['tokens'], null)
      const issued = async () =>
        (
          await stack.runtime.store.listEvents({ connectionId: conA, type: 'token.issued', limit: 1000 })
        ).filter((e) => e.data['key_id'] === id)
      const first = await call(key, 'POST', `/v1/connections/${conA}/access-token`)
      for (let i = 0; i < 10; i++) await call(key, 'POST', `/v1/connections/${conA}/access-token`)
      const events = await issued()
      expect(events).toHaveLength(1)
      expect(JSON.stringify(events[0]?.data)).not.toContain(String(first.json['access_token']))
      expect(events[0]?.data['expires_at']).toBe(first.json['expires_at'])
      // A new token (after expiry) is a new event.
      stack.clock.advance(60 * 60 * 1000)
      const second = await call(key, 'POST', `/v1/connections/${conA}/access-token`)
      expect(second.json['access_token']).not.toBe(first.json['access_token'])
      expect(await issued()).toHaveLength(2)
    })
  })
})

/**
 * Malformed ids are a 400 before any database sees them: control bytes (a NUL is an error in a PostgreSQL text
 * value, so without the check PostgreSQL answers 500), ids longer than any real one (3,000 characters, under the
 * URL limit, so the id check and not the URL check answers) and 10 KB ids.
 */
function idFormatChecks(label: string, open: () => Promise<Stack>): void {
  describe(`id format checks (${label})`, () => {
    let stack: Stack
    beforeAll(async () => {
      stack = await open()
    })
    afterAll(async () => {
      await stack?.close()
    })

    const badConnectionIds = [
      `con_${'a'.repeat(3000)}`,
      `con_${'a'.repeat(10_000)}`,
      'con_\u0001abc',
      'con_\u0000abc',
      'x'.repeat(3000),
      'con_abc\u007f',
    ]

    it('answers 400, never 500, for malformed connection ids in paths and queries', async () => {
      for (const id of badConnectionIds) {
        const path = encodeURIComponent(id)
        for (const [method, url] of [
          ['GET', `/v1/connections/${path}`],
          ['GET', `/v1/connections/${path}/events`],
          ['POST', `/v1/connections/${path}/access-token`],
          ['DELETE', `/v1/connections/${path}`],
          ['GET', `/v1/events?connection_id=${path}`],
          ['GET', `/v1/connections?after=${path}`],
        ] as const) {
          const answer = await stack.api(method, url)
          expect({ url: url.slice(0, 60), status: answer.status }).toEqual({
            url: url.slice(0, 60),
            status: 400,
          })
        }
      }
    })

    it('answers 400 for malformed tenant, key and event ids', async () => {
      for (const tenant of ['t'.repeat(3000), 't'.repeat(10_000), 'a\u0000b', 'a\nb', '\u007f', '\u0085']) {
        const answer = await stack.api('GET', `/v1/connections?tenant_id=${encodeURIComponent(tenant)}`)
        expect(answer.status).toBe(400)
        const created = await stack.api('POST', '/v1/api-keys', {
          name: 'x',
          scopes: ['read'],
          tenants: [tenant],
        })
        expect(created.status).toBe(400)
      }
      for (const id of [
        `key_${'a'.repeat(3000)}`,
        `key_${'a'.repeat(10_000)}`,
        'key_%00',
        'key_%01',
        'nope',
      ]) {
        expect((await stack.api('DELETE', `/v1/api-keys/${id}`)).status).toBe(400)
      }
      for (const id of [`evt_${'a'.repeat(3000)}`, 'evt_%00', 'x']) {
        expect((await stack.api('GET', `/v1/events/${id}`)).status).toBe(400)
        expect((await stack.api('GET', `/v1/webhook-deliveries?event_id=${id}`)).status).toBe(400)
      }
    })
  })
}

idFormatChecks('SQLite', () => startStack())

const postgres = await locateTestPostgres('the API-key id checks on PostgreSQL')
if (postgres.available) {
  const database = `sp_connect_test_ids_${randomBytes(6).toString('hex')}`
  idFormatChecks('PostgreSQL', async () => {
    await withClient(postgres.url, (client) => client.query(`create database ${escapeIdentifier(database)}`))
    const stack = await startStack({ env: { DATABASE_URL: databaseUrl(postgres.url, database) } })
    return {
      ...stack,
      async close() {
        await stack.close()
        await withClient(postgres.url, (client) =>
          client.query(`drop database if exists ${escapeIdentifier(database)} with (force)`),
        )
      },
    }
  })
}
