import { describe, expect, it } from 'vitest'
import {
  findOperation,
  findOperationByName,
  HTTP_METHODS,
  OPERATIONS,
  RDT_PLAN,
} from '../../src/core/spapi/operations.ts'

const byApi = (api: string, operationId: string, version?: string) =>
  OPERATIONS.filter(
    (op) =>
      op.api === api && op.operationId === operationId && (version === undefined || op.version === version),
  )

describe('findOperation', () => {
  it('matches a template and decodes its parameters', () => {
    const match = findOperation('GET', '/orders/v0/orders/123-1234567-1234567/orderItems')
    expect(match?.operation.operationId).toBe('getOrderItems')
    expect(match?.operation.api).toBe('orders')
    expect(match?.params).toEqual({ orderId: '123-1234567-1234567' })

    const sku = findOperation('GET', '/listings/2021-08-01/items/A1B2C3/my%2Fsku%20one')
    expect(sku?.operation.operationId).toBe('getListingsItem')
    expect(sku?.params).toEqual({ sellerId: 'A1B2C3', sku: 'my/sku one' })
  })

  it('matches literal paths and is case-insensitive on the method only', () => {
    expect(findOperation('get', '/sellers/v1/marketplaceParticipations')?.operation.name).toBe(
      'getMarketplaceParticipations',
    )
    expect(findOperation('GET', '/Sellers/v1/marketplaceParticipations')).toBeUndefined()
    expect(findOperation('POST', '/tokens/2021-03-01/restrictedDataToken')?.operation.operationId).toBe(
      'createRestrictedDataToken',
    )
  })

  it('prefers a literal segment over a parameter', () => {
    expect(findOperation('POST', '/fba/inventory/v1/items/inventory')?.operation.operationId).toBe(
      'addInventory',
    )
    expect(findOperation('GET', '/orders/v0/orders/1/orderItems/buyerInfo')?.operation.operationId).toBe(
      'getOrderItemsBuyerInfo',
    )
  })

  it('knows nothing of unknown paths or other methods', () => {
    expect(findOperation('GET', '/orders/v0/nothing')).toBeUndefined()
    expect(findOperation('GET', '/')).toBeUndefined()
    expect(findOperation('GET', '')).toBeUndefined()
    expect(findOperation('GET', 'orders/v0/orders')).toBeUndefined()
    expect(findOperation('DELETE', '/orders/v0/orders')).toBeUndefined()
    expect(findOperation('TRACE', '/orders/v0/orders')).toBeUndefined()
    expect(findOperation('GET', '/orders/v0/orders/1/extra/segment')).toBeUndefined()
  })

  it('refuses empty, dot and malformed segments, trailing slashes and leftover queries', () => {
    for (const path of [
      '/orders/v0/orders/',
      '/orders/v0//orders',
      '/orders/v0/orders/./orderItems',
      '/orders/v0/orders/../orderItems',
      '/orders/v0/orders/..',
      '/orders/v0/orders/%2e%2e',
      '/orders/v0/orders/%2E',
      '/orders/v0/orders/%E0%A4%A',
      '/orders/v0/orders?CreatedAfter=x',
      '/orders/v0/orders/1#x',
    ]) {
      expect(findOperation('GET', path), path).toBeUndefined()
    }
  })

  it('finds operations by their unique name', () => {
    expect(findOperationByName('orders.v0.getOrders')?.path).toBe('/orders/v0/orders')
    expect(findOperationByName('sellers.v1.getAccount')?.path).toBe('/sellers/v1/account')
    expect(findOperationByName('nope')).toBeUndefined()
  })
})

describe('the usage-plan table', () => {
  it('has unique names, one operation per method and template, and sane plans', () => {
    const names = new Set(OPERATIONS.map((op) => op.name))
    expect(names.size).toBe(OPERATIONS.length)
    const shapes = new Set(OPERATIONS.map((op) => `${op.method} ${op.path.replace(/\{\w+\}/g, '{}')}`))
    expect(shapes.size).toBe(OPERATIONS.length)
    expect(OPERATIONS.length).toBeGreaterThan(300)
    for (const op of OPERATIONS) {
      expect(op.rate, op.name).toBeGreaterThan(0)
      expect(Number.isInteger(op.burst) && op.burst >= 1, op.name).toBe(true)
      expect(HTTP_METHODS).toContain(op.method)
      expect(op.path.startsWith(`/`), op.name).toBe(true)
      if (op.idempotent) expect(op.method, op.name).toBe('POST')
      // Every template in the table is reachable through the matcher.
      const sample = op.path.replace(/\{\w+\}/g, 'X1')
      expect(findOperation(op.method, sample)?.operation, op.name).toBe(op)
    }
  })

  it("carries Amazon's published plans for well-known operations", () => {
    expect(byApi('orders', 'getOrders', 'v0')[0]).toMatchObject({ rate: 0.0167, burst: 20 })
    expect(byApi('sellers', 'getMarketplaceParticipations')[0]).toMatchObject({ rate: 0.016, burst: 15 })
    const rdt = byApi('tokens', 'createRestrictedDataToken')[0]
    expect({ rate: rdt?.rate, burst: rdt?.burst }).toEqual(RDT_PLAN)
  })

  it('marks every restricted operation of spapi-facts §6.3', () => {
    const restricted: [string, string][] = [
      ['orders', 'getOrders'],
      ['orders', 'getOrder'],
      ['orders', 'getOrderBuyerInfo'],
      ['orders', 'getOrderAddress'],
      ['orders', 'getOrderItems'],
      ['orders', 'getOrderItemsBuyerInfo'],
      ['orders', 'getOrderRegulatedInfo'],
      ['merchant-fulfillment', 'getShipment'],
      ['merchant-fulfillment', 'cancelShipment'],
      ['merchant-fulfillment', 'createShipment'],
      ['shipment-invoicing', 'getShipmentDetails'],
      ['reports', 'getReportDocument'],
      ['vendor-direct-fulfillment-orders', 'getOrders'],
      ['vendor-direct-fulfillment-orders', 'getOrder'],
      ['vendor-direct-fulfillment-shipping', 'getShippingLabels'],
      ['vendor-direct-fulfillment-shipping', 'getShippingLabel'],
      ['vendor-direct-fulfillment-shipping', 'getPackingSlips'],
      ['vendor-direct-fulfillment-shipping', 'getPackingSlip'],
      ['vendor-direct-fulfillment-shipping', 'getCustomerInvoices'],
      ['vendor-direct-fulfillment-shipping', 'getCustomerInvoice'],
      ['vendor-direct-fulfillment-shipping', 'createShippingLabels'],
      ['easy-ship', 'createScheduledPackageBulk'],
    ]
    for (const [api, operationId] of restricted) {
      const found = byApi(api, operationId).filter((op) => api !== 'orders' || op.version === 'v0')
      expect(found.length, `${api} ${operationId}`).toBeGreaterThan(0)
      for (const op of found) expect(op.restricted, op.name).toBeDefined()
    }
    const all = ['buyerInfo', 'shippingAddress', 'buyerTaxInformation']
    expect(byApi('orders', 'getOrders', 'v0')[0]?.restricted?.dataElements).toEqual(all)
    expect(byApi('orders', 'getOrder', 'v0')[0]?.restricted?.dataElements).toEqual(all)
    expect(byApi('orders', 'getOrderItems', 'v0')[0]?.restricted?.dataElements).toEqual(['buyerInfo'])
    expect(byApi('sellers', 'getMarketplaceParticipations')[0]?.restricted).toBeUndefined()
  })

  it('marks only read-only POSTs idempotent', () => {
    expect(byApi('product-pricing', 'getItemOffersBatch')[0]?.idempotent).toBe(true)
    expect(byApi('product-pricing', 'getCompetitiveSummary')[0]?.idempotent).toBe(true)
    expect(byApi('feeds', 'createFeed')[0]?.idempotent).toBeUndefined()
    expect(byApi('orders', 'confirmShipment')[0]?.idempotent).toBeUndefined()
  })
})
