import { describe, expect, it } from 'vitest'
import { checkSpApiPath, splitPathAndQuery } from '../../src/core/spapi/request-parts.ts'
import { isSpConnectError } from '../../src/domain/errors.ts'

function refused(path: string): boolean {
  try {
    checkSpApiPath(path)
    return false
  } catch (error) {
    return isSpConnectError(error) && error.code === 'invalid_request'
  }
}

describe('checkSpApiPath', () => {
  it('keeps ordinary paths as they are, encoded slashes and dots inside names included', () => {
    for (const path of [
      '/orders/v0/orders/123-4567890-1234567',
      '/listings/2021-08-01/items/SELLER1/SKU%2F1',
      '/listings/2021-08-01/items/SELLER1/a.b',
      '/listings/2021-08-01/items/SELLER1/.hidden',
      '/listings/2021-08-01/items/SELLER1/a..b',
      // An encoded ";" is part of a name (SKUs may hold one); only a plain ";" starts a path parameter.
      '/listings/2021-08-01/items/SELLER1/SKU%3B1',
    ])
      expect(checkSpApiPath(path)).toBe(path)
  })

  it('refuses dot segments and segments starting with "..", plain or encoded, and plain ";" path parameters', () => {
    for (const path of [
      '/orders/v0/orders/..',
      '/orders/v0/orders/.',
      '/orders/v0/orders/..;',
      '/orders/v0/orders/..;/x',
      '/orders/v0/orders/...',
      '/orders/v0/orders/..x',
      '/orders/v0/orders/%2e%2e',
      '/orders/v0/orders/%2E%2E%3B',
      '/orders/v0/orders/.%2e;',
      '/orders/v0/orders/..%00',
      '/orders/v0/orders/123;jsessionid=x',
      '/orders/v0/orders/%2F..%3B%2Fx',
      '/orders;x/v0/orders',
    ])
      expect(refused(path), path).toBe(true)
  })

  it('applies to the path of a path with a query, not to the query', () => {
    expect(splitPathAndQuery('/orders/v0/orders?x=a;b').path).toBe('/orders/v0/orders')
    expect(() => splitPathAndQuery('/orders/v0/orders/..;?x=1')).toThrow()
  })
})
