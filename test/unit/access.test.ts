/** The pure parts of API-key access: principals, scopes, tenants, id formats, credential query parameters. */
import { describe, expect, it } from 'vitest'
import { validateApiKeySpec } from '../../src/core/access/api-keys.ts'
import {
  bootstrapPrincipal,
  canSeeTenant,
  isWithin,
  type Principal,
  requireScope,
  requireTenant,
} from '../../src/core/access/principal.ts'
import { isApiKeyId, isConnectionId, isEventId, isTenantId } from '../../src/core/ids.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'
import { credentialQueryParameter } from '../../src/server/query-credentials.ts'

const tenantKey: Principal = {
  kind: 'api_key',
  keyId: 'key_a',
  name: 'a',
  scopes: new Set(['read']),
  tenants: ['tenant-a', 'tenant-b'],
}

describe('principals', () => {
  it('checks scopes with forbidden', () => {
    expect(() => requireScope(tenantKey, 'read')).not.toThrow()
    let error: unknown
    try {
      requireScope(tenantKey, 'tokens')
    } catch (e) {
      error = e
    }
    expect(isSpConnectError(error, 'forbidden')).toBe(true)
  })

  it('lets a tenant-scoped key see its tenants only, never tenantless connections', () => {
    expect(canSeeTenant(tenantKey, 'tenant-a')).toBe(true)
    expect(canSeeTenant(tenantKey, 'tenant-c')).toBe(false)
    expect(canSeeTenant(tenantKey, null)).toBe(false)
    expect(() => requireTenant(tenantKey, 'tenant-c')).toThrow()
    const all = bootstrapPrincipal('backend')
    expect(canSeeTenant(all, null)).toBe(true)
    expect(canSeeTenant(all, 'anything')).toBe(true)
    expect([...all.scopes]).toEqual(['read', 'tokens', 'manage'])
  })

  it('compares keys: no broader scopes or tenants, no all-tenant key from a tenant-scoped one', () => {
    expect(isWithin(tenantKey, ['read'], ['tenant-a'])).toBe(true)
    expect(isWithin(tenantKey, ['read'], ['tenant-a', 'tenant-b'])).toBe(true)
    expect(isWithin(tenantKey, ['read', 'tokens'], ['tenant-a'])).toBe(false)
    expect(isWithin(tenantKey, ['read'], ['tenant-c'])).toBe(false)
    expect(isWithin(tenantKey, ['read'], null)).toBe(false)
    expect(isWithin(bootstrapPrincipal('b'), ['manage'], null)).toBe(true)
  })
})

describe('key specs', () => {
  const spec = { name: 'n', scopes: ['read'], createdBy: 'cli' }
  it('needs at least one known scope and a non-empty tenant list when given', () => {
    expect(validateApiKeySpec(spec)).toEqual({ name: 'n', scopes: ['read'], tenants: null })
    expect(validateApiKeySpec({ ...spec, scopes: ['manage', 'read', 'read'], tenants: ['t', 't'] })).toEqual({
      name: 'n',
      scopes: ['read', 'manage'],
      tenants: ['t'],
    })
    for (const bad of [
      { ...spec, scopes: [] },
      { ...spec, scopes: ['admin'] },
      { ...spec, tenants: [] },
      { ...spec, tenants: ['a\u0000'] },
      { ...spec, name: '' },
      { ...spec, name: 'a\nb' },
    ]) {
      expect(() => validateApiKeySpec(bad)).toThrow()
    }
  })
})

describe('id formats', () => {
  it('accepts generated ids and refuses long ones and control bytes', () => {
    expect(isConnectionId('con_3kq9AbCdEfGhIjKlMnOpQr')).toBe(true)
    expect(isApiKeyId('key_3kq9AbCdEfGhIjKlMnOpQr')).toBe(true)
    expect(isEventId('evt_missing')).toBe(true)
    for (const bad of ['', 'con_', 'con-1', `con_${'a'.repeat(65)}`, 'con_a\u0000', 'con_a b', 'key_x', 42]) {
      expect(isConnectionId(bad)).toBe(false)
    }
    expect(isTenantId('tenant ✓ 1')).toBe(true)
    expect(isTenantId('x'.repeat(256))).toBe(true)
    for (const bad of ['', 'x'.repeat(257), 'a\u0000', 'a\r\n', '\u009b', '\ud800']) {
      expect(isTenantId(bad)).toBe(false)
    }
  })
})

describe('credentials in query strings', () => {
  it('finds credential-like parameter names, case-insensitively', () => {
    expect(credentialQueryParameter('?API_KEY=x')).toBe('api_key')
    expect(credentialQueryParameter('?region=na&Token=')).toBe('token')
    expect(credentialQueryParameter('?region=na&state=s&code=c')).toBeUndefined()
    expect(credentialQueryParameter('')).toBeUndefined()
  })
})
