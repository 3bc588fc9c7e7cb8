import { describe, expect, it } from 'vitest'
import { isSpConnectError } from '../../src/domain/errors.ts'
import {
  MAX_DELIVERY_ERROR_LENGTH,
  newDeliveryId,
  truncateDeliveryError,
} from '../../src/store/event-store.ts'
import { clampLimit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from '../../src/store/kysely-common.ts'
import { MIGRATIONS } from '../../src/store/migrations/index.ts'
import { checkMigrationOrder } from '../../src/store/migrator.ts'
import {
  type AppSecretRow,
  type ConnectionRow,
  type DeliveryRow,
  type EventRow,
  toAppSecretRecord,
  toAuthStateRecord,
  toConnectionCiphertexts,
  toConnectionRecord,
  toConnectSessionRecord,
  toDeliveryRecord,
  toEventRecord,
} from '../../src/store/schema.ts'

const row: ConnectionRow = {
  id: 'con-1',
  selling_partner_id: 'A1',
  region: 'eu',
  account_type: 'vendor',
  tenant_id: null,
  status: 'needs_reauthorization',
  status_reason: 'lwa_invalid_grant',
  refresh_token_ciphertext: 'r',
  access_token_ciphertext: null,
  access_token_expires_at: null,
  authorized_at: 1,
  reauthorize_by: 2,
  last_refresh_at: null,
  last_refresh_error: 'lwa_invalid_grant',
  failure_count: 3,
  lease_owner: null,
  lease_until: null,
  last_used_at: 8,
  refresh_not_before: null,
  reauth_reminder_days: 30,
  account_fingerprint: null,
  version: 7,
  created_at: 10,
  updated_at: 11,
}

function corruptColumn(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (error) {
    if (isSpConnectError(error, 'internal')) return error.detail
    throw error
  }
  return undefined
}

describe('row mappers', () => {
  it('maps a connection row to its camelCase record', () => {
    expect(toConnectionRecord(row)).toEqual({
      id: 'con-1',
      sellingPartnerId: 'A1',
      region: 'eu',
      accountType: 'vendor',
      tenantId: null,
      status: 'needs_reauthorization',
      statusReason: 'lwa_invalid_grant',
      refreshTokenCiphertext: 'r',
      accessTokenCiphertext: null,
      accessTokenExpiresAt: null,
      authorizedAt: 1,
      reauthorizeBy: 2,
      lastRefreshAt: null,
      lastRefreshError: 'lwa_invalid_grant',
      failureCount: 3,
      leaseOwner: null,
      leaseUntil: null,
      lastUsedAt: 8,
      refreshNotBefore: null,
      reauthReminderDays: 30,
      accountFingerprint: null,
      version: 7,
      createdAt: 10,
      updatedAt: 11,
    })
  })

  it('accepts integers as bigints or decimal strings, as PostgreSQL drivers return BIGINT', () => {
    const pg = { ...row, version: '7', created_at: 10n, updated_at: '11' } as unknown as ConnectionRow
    expect(toConnectionRecord(pg)).toMatchObject({ version: 7, createdAt: 10, updatedAt: 11 })
  })

  it.each([
    ['region', 'mars'],
    ['account_type', 'buyer'],
    ['status', 'revoked'],
    ['version', 'seven'],
    ['version', 1.5],
    ['created_at', null],
    ['access_token_expires_at', Number.MAX_SAFE_INTEGER + 2],
    ['selling_partner_id', 42],
    ['tenant_id', 1],
    ['last_used_at', 'yesterday'],
    ['refresh_not_before', 2.5],
    ['reauth_reminder_days', '30 days'],
  ])('fails loudly on a corrupt %s, naming the column but not the value', (column, value) => {
    const detail = corruptColumn(() =>
      toConnectionRecord({ ...row, [column]: value } as unknown as ConnectionRow),
    )
    expect(detail).toBe(`corrupt row in connections: column ${column}`)
  })

  it('validates auth state flows and connect session regions', () => {
    const state = {
      state_hash: 'h',
      flow: 'website',
      region: 'na',
      account_type: 'seller',
      tenant_id: null,
      return_to: null,
      browser_binding_hash: 'b',
      selling_partner_id: null,
      connection_id: null,
      created_at: 1,
      expires_at: 2,
      consumed_at: null,
    }
    expect(toAuthStateRecord(state).flow).toBe('website')
    expect(corruptColumn(() => toAuthStateRecord({ ...state, flow: 'sideways' }))).toContain('flow')
    const session = {
      token_hash: 't',
      tenant_id: 'x',
      region: 'fe',
      account_type: 'seller',
      marketplace: 'JP',
      return_to: null,
      connection_id: null,
      created_at: 1,
      expires_at: 2,
    }
    expect(toConnectSessionRecord(session).region).toBe('fe')
    expect(corruptColumn(() => toConnectSessionRecord({ ...session, region: 'FE' }))).toContain('region')
  })

  it('parses event data and insists on a JSON object', () => {
    const event: EventRow = {
      id: 'e',
      type: 't',
      connection_id: null,
      data: '{"a":[1,{"b":null}]}',
      created_at: 5,
    }
    expect(toEventRecord(event)).toEqual({
      id: 'e',
      type: 't',
      connectionId: null,
      data: { a: [1, { b: null }] },
      createdAt: 5,
    })
    for (const data of ['not json', '[1,2]', 'null', '3']) {
      expect(corruptColumn(() => toEventRecord({ ...event, data }))).toContain('data')
    }
  })

  it('maps the key-rotation projection of a connection row', () => {
    expect(toConnectionCiphertexts(row)).toEqual({
      id: 'con-1',
      version: 7,
      refreshTokenCiphertext: 'r',
      accessTokenCiphertext: null,
    })
    expect(
      corruptColumn(() => toConnectionCiphertexts({ ...row, version: 'x' } as unknown as ConnectionRow)),
    ).toBe('corrupt row in connections: column version')
  })

  it('maps app secrets and validates their state', () => {
    const secret: AppSecretRow = {
      id: 'sec-1',
      client_id: 'amzn1.application-oa2-client.x',
      secret_ciphertext: 'ct',
      state: 'retired',
      created_at: '5' as unknown as number,
      expires_at: null,
    }
    expect(toAppSecretRecord(secret)).toEqual({
      id: 'sec-1',
      clientId: 'amzn1.application-oa2-client.x',
      secretCiphertext: 'ct',
      state: 'retired',
      createdAt: 5,
      expiresAt: null,
    })
    for (const [column, value] of [
      ['state', 'revoked'],
      ['secret_ciphertext', null],
      ['expires_at', 'soon'],
    ] as const) {
      expect(
        corruptColumn(() => toAppSecretRecord({ ...secret, [column]: value } as unknown as AppSecretRow)),
      ).toBe(`corrupt row in app_secrets: column ${column}`)
    }
  })

  it('maps deliveries and validates their status', () => {
    const delivery: DeliveryRow = {
      id: 'dlv_1',
      event_id: 'evt-1',
      url: 'https://app.example/hook',
      status: 'pending',
      attempts: 2,
      next_attempt_at: 100,
      last_status_code: 503,
      last_error: 'http_503',
      lease_owner: 'w',
      lease_until: 200,
      created_at: 1,
      updated_at: 50,
      delivered_at: null,
    }
    expect(toDeliveryRecord(delivery)).toEqual({
      id: 'dlv_1',
      eventId: 'evt-1',
      url: 'https://app.example/hook',
      status: 'pending',
      attempts: 2,
      nextAttemptAt: 100,
      lastStatusCode: 503,
      lastError: 'http_503',
      leaseOwner: 'w',
      leaseUntil: 200,
      createdAt: 1,
      updatedAt: 50,
      deliveredAt: null,
    })
    for (const [column, value] of [
      ['status', 'sent'],
      ['attempts', null],
      ['last_status_code', '5xx'],
      ['url', 7],
    ] as const) {
      expect(
        corruptColumn(() => toDeliveryRecord({ ...delivery, [column]: value } as unknown as DeliveryRow)),
      ).toBe(`corrupt row in webhook_deliveries: column ${column}`)
    }
  })
})

describe('delivery helpers', () => {
  it('makes prefixed, random, base64url delivery ids', () => {
    const ids = Array.from({ length: 50 }, () => newDeliveryId())
    for (const id of ids) expect(id).toMatch(/^dlv_[A-Za-z0-9_-]{22}$/)
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('truncates errors to the limit in code points', () => {
    expect(MAX_DELIVERY_ERROR_LENGTH).toBe(300)
    expect(truncateDeliveryError('short')).toBe('short')
    expect(truncateDeliveryError('x'.repeat(300))).toBe('x'.repeat(300))
    expect(truncateDeliveryError('x'.repeat(301))).toBe('x'.repeat(300))
    // 299 ASCII characters then emoji: the cut lands after the first emoji, not inside it.
    expect(truncateDeliveryError(`${'x'.repeat(299)}${'😀'.repeat(3)}`)).toBe(`${'x'.repeat(299)}😀`)
  })
})

describe('clampLimit', () => {
  it('defaults, truncates and clamps into [1, max]', () => {
    expect(clampLimit(undefined)).toBe(DEFAULT_LIST_LIMIT)
    expect(clampLimit(Number.NaN)).toBe(DEFAULT_LIST_LIMIT)
    expect(clampLimit(0)).toBe(1)
    expect(clampLimit(-5)).toBe(1)
    expect(clampLimit(7.9)).toBe(7)
    expect(clampLimit(MAX_LIST_LIMIT + 1)).toBe(MAX_LIST_LIMIT)
    expect(clampLimit(Number.POSITIVE_INFINITY)).toBe(MAX_LIST_LIMIT)
  })
})

describe('migration list', () => {
  it('is in ascending, unique, timestamp-named order', () => {
    expect(() => checkMigrationOrder(MIGRATIONS)).not.toThrow()
    for (const m of MIGRATIONS) expect(m.name).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}-[a-z0-9-]+$/)
  })

  it('rejects duplicates and disorder', () => {
    const m = (name: string) => ({ name, up: async () => {}, down: async () => {} })
    expect(() => checkMigrationOrder([m('b'), m('a')])).toThrow(/order/)
    expect(() => checkMigrationOrder([m('a'), m('a')])).toThrow(/order/)
  })
})
