import { describe, expect, it } from 'vitest'
import {
  allCentralHosts,
  centralHost,
  DEFAULT_MARKETPLACE,
  findMarketplace,
  MARKETPLACES,
  REGIONS,
} from '../../src/domain/regions.ts'

describe('regions', () => {
  it('has 23 marketplaces with unique ids and countries', () => {
    expect(MARKETPLACES).toHaveLength(23)
    expect(new Set(MARKETPLACES.map((mp) => mp.id)).size).toBe(23)
    expect(new Set(MARKETPLACES.map((mp) => mp.country)).size).toBe(23)
  })

  it('finds marketplaces by country code in any case and by id', () => {
    expect(findMarketplace('us')?.id).toBe('ATVPDKIKX0DER')
    expect(findMarketplace('A1VC38T7YXB528')?.country).toBe('JP')
    expect(findMarketplace('XX')).toBeUndefined()
  })

  it('gives every region a default marketplace in that region with both consent hosts', () => {
    for (const region of REGIONS) {
      const mp = findMarketplace(DEFAULT_MARKETPLACE[region])
      expect(mp?.region).toBe(region)
      expect(mp && centralHost(mp, 'seller')).toMatch(/^sellercentral/)
      expect(mp && centralHost(mp, 'vendor')).toMatch(/^vendorcentral/)
    }
  })

  it('lists every central host once, all under amazon domains', () => {
    const hosts = allCentralHosts()
    expect(new Set(hosts).size).toBe(hosts.length)
    for (const host of hosts) expect(host).toMatch(/^(seller|vendor)central(-europe)?\.amazon\.[a-z.]+$/)
  })
})
