import { describe, expect, it } from 'vitest'
import { isSpConnectError } from '../../src/core/errors.ts'
import { clampLimit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from '../../src/store/kysely-store.ts'
import { MIGRATIONS } from '../../src/store/migrations/index.ts'
import { checkMigrationOrder } from '../../src/store/migrator.ts'
import {
  type ConnectionRow,
  type EventRow,
  toAuthStateRecord,
  toConnectionRecord,
  toConnectSessionRecord,
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
