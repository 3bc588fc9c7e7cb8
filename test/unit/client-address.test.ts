import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import {
  addressBucket,
  normalizeAddress,
  resolveClientAddress,
  socketAddress,
  UNKNOWN_ADDRESS,
} from '../../src/server/client-address.ts'

describe('resolveClientAddress', () => {
  it('ignores X-Forwarded-For with 0 trusted hops: a client cannot pick its own address', () => {
    expect(resolveClientAddress('203.0.113.7', '198.51.100.1', 0)).toBe('203.0.113.7')
    expect(resolveClientAddress('203.0.113.7', '198.51.100.1, 198.51.100.2', 0)).toBe('203.0.113.7')
  })

  it('with 1 hop takes the rightmost entry (written by the trusted proxy), not what the client sent', () => {
    // The client sent "X-Forwarded-For: 1.1.1.1"; the proxy appended the address it saw.
    expect(resolveClientAddress('10.0.0.2', '1.1.1.1, 203.0.113.7', 1)).toBe('203.0.113.7')
    expect(resolveClientAddress('10.0.0.2', '203.0.113.7', 1)).toBe('203.0.113.7')
  })

  it('with 2 hops takes the second entry from the right', () => {
    expect(resolveClientAddress('10.0.0.3', '1.1.1.1, 203.0.113.7, 10.0.0.2', 2)).toBe('203.0.113.7')
  })

  it('falls back to the socket when the header is missing, too short, malformed or huge', () => {
    expect(resolveClientAddress('10.0.0.2', undefined, 1)).toBe('10.0.0.2')
    expect(resolveClientAddress('10.0.0.2', '203.0.113.7', 2)).toBe('10.0.0.2')
    expect(resolveClientAddress('10.0.0.2', 'not-an-address', 1)).toBe('10.0.0.2')
    expect(resolveClientAddress('10.0.0.2', `${'1.1.1.1, '.repeat(1000)}203.0.113.7`, 1)).toBe('10.0.0.2')
  })

  it('treats a missing socket address as the one shared unknown client', () => {
    expect(resolveClientAddress(undefined, undefined, 0)).toBe(UNKNOWN_ADDRESS)
    expect(resolveClientAddress(undefined, '203.0.113.7', 0)).toBe(UNKNOWN_ADDRESS)
  })
})

describe('normalizeAddress and addressBucket', () => {
  it('canonicalises IPv4-mapped IPv6, ports and brackets, and refuses free text', () => {
    expect(normalizeAddress('::ffff:127.0.0.1')).toBe('127.0.0.1')
    expect(normalizeAddress('203.0.113.7:4431')).toBe('203.0.113.7')
    expect(normalizeAddress('[2001:DB8::1]:443')).toBe('2001:db8::1')
    expect(normalizeAddress('evil\u0000')).toBeUndefined()
    expect(normalizeAddress('')).toBeUndefined()
  })

  it('buckets IPv6 by /64 and leaves IPv4 alone', () => {
    expect(addressBucket('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(addressBucket('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64')
    expect(addressBucket('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(addressBucket('203.0.113.7')).toBe('203.0.113.7')
  })
})

describe('socketAddress', () => {
  it('is undefined, not a crash, when the app runs in process without Node bindings', async () => {
    const app = new Hono()
    app.get('/', (c) => c.text(socketAddress(c) ?? 'none'))
    expect(await (await app.request('/')).text()).toBe('none')
    expect(await (await app.request('/', {}, { incoming: {} })).text()).toBe('none')
  })

  it('reads the socket of @hono/node-server bindings', async () => {
    const app = new Hono()
    app.get('/', (c) => c.text(socketAddress(c) ?? 'none'))
    const env = { incoming: { socket: { remoteAddress: '192.0.2.9', remotePort: 1, remoteFamily: 'IPv4' } } }
    expect(await (await app.request('/', {}, env)).text()).toBe('192.0.2.9')
  })
})
