import { describe, expect, it } from 'vitest'
import {
  isGrantless,
  MAX_TOKEN_BYTES,
  signAccessToken,
  signRefreshToken,
  verifyAccessToken,
  verifyRefreshToken,
} from '../../src/simulator/tokens.ts'

const SECRET = 'unit-test-signing-secret'
const refreshClaims = {
  g: 'grant-1',
  n: 7,
  sp: 'A3FHEXAMPLEYWS',
  c: 'amzn1.application-oa2-client.0123456789abcdef0123456789abcdef',
  r: 'eu',
  iat: 1_700_000_000_000,
} as const

function flip(char: string): string {
  return char === 'A' ? 'B' : 'A'
}

describe('simulator tokens', () => {
  it('round-trips a refresh token with the Atzr| prefix', () => {
    const token = signRefreshToken(SECRET, refreshClaims)
    expect(token.startsWith('Atzr|')).toBe(true)
    expect(Buffer.byteLength(token)).toBeLessThanOrEqual(MAX_TOKEN_BYTES)
    expect(verifyRefreshToken(SECRET, token)).toEqual({ t: 'r', ...refreshClaims })
  })

  it('round-trips grant and grantless access tokens with the Atza| prefix', () => {
    const grant = signAccessToken(SECRET, {
      g: 'grant-1',
      gn: 7,
      sp: 'A3FHEXAMPLEYWS',
      r: 'na',
      c: 'client',
      n: 8,
      iat: 1,
      exp: 3_600_001,
    })
    const grantless = signAccessToken(SECRET, {
      s: 'sellingpartnerapi::notifications',
      c: 'client',
      n: 9,
      iat: 1,
      exp: 2,
    })
    expect(grant.startsWith('Atza|')).toBe(true)
    const a = verifyAccessToken(SECRET, grant)
    const b = verifyAccessToken(SECRET, grantless)
    expect(a && isGrantless(a)).toBe(false)
    expect(b && isGrantless(b)).toBe(true)
    expect(a).toMatchObject({ g: 'grant-1', sp: 'A3FHEXAMPLEYWS', r: 'na', exp: 3_600_001 })
  })

  it('rejects a token signed with another secret', () => {
    const token = signRefreshToken(SECRET, refreshClaims)
    expect(verifyRefreshToken('another-secret', token)).toBeUndefined()
  })

  it('rejects a tampered payload, a tampered MAC and a truncated token', () => {
    const token = signRefreshToken(SECRET, refreshClaims)
    const [head, mac] = token.split('.') as [string, string]
    const payload = JSON.parse(Buffer.from(head.slice(5), 'base64url').toString('utf8'))
    const forged = Buffer.from(JSON.stringify({ ...payload, sp: 'AOTHERSELLER1' })).toString('base64url')
    expect(verifyRefreshToken(SECRET, `Atzr|${forged}.${mac}`)).toBeUndefined()
    expect(verifyRefreshToken(SECRET, `${head}.${flip(mac[0] ?? '')}${mac.slice(1)}`)).toBeUndefined()
    expect(verifyRefreshToken(SECRET, token.slice(0, -1))).toBeUndefined()
    expect(verifyRefreshToken(SECRET, `${token}.x`)).toBeUndefined()
    expect(verifyRefreshToken(SECRET, head)).toBeUndefined()
  })

  it('does not accept an access token as a refresh token or the reverse', () => {
    const refresh = signRefreshToken(SECRET, refreshClaims)
    const access = signAccessToken(SECRET, {
      s: 'sellingpartnerapi::notifications',
      c: 'c',
      n: 1,
      iat: 1,
      exp: 2,
    })
    expect(verifyAccessToken(SECRET, refresh)).toBeUndefined()
    expect(verifyRefreshToken(SECRET, access)).toBeUndefined()
    // Same MAC input rules, swapped prefix: still refused.
    expect(verifyAccessToken(SECRET, `Atza|${refresh.slice(5)}`)).toBeUndefined()
  })

  it('rejects garbage without throwing', () => {
    for (const junk of ['', 'Atzr|', 'Atzr|.', 'Atzr|@@@.@@@', 'Atza|e30.', 'x'.repeat(5000)]) {
      expect(verifyRefreshToken(SECRET, junk)).toBeUndefined()
      expect(verifyAccessToken(SECRET, junk)).toBeUndefined()
    }
  })
})
