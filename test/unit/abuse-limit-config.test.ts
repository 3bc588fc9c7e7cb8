import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfigFromEnv } from '../../src/config.ts'

const valid = {
  SP_CONNECT_PUBLIC_URL: 'https://connect.example.com/',
  SP_CONNECT_APP_ID: 'amzn1.sp.solution.11111111-2222-3333-4444-555555555555',
  SP_CONNECT_LWA_CLIENT_ID: 'amzn1.application-oa2-client.0123456789abcdef',
  SP_CONNECT_LWA_CLIENT_SECRET: 'amzn1.oa2-cs.v1.0123456789abcdef0123456789abcdef',
  DATABASE_URL: '/var/lib/sp-connect/db.sqlite',
  SP_CONNECT_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
  SP_CONNECT_API_KEYS: `backend:${'k'.repeat(40)}`,
}

describe('abuse-limit configuration', () => {
  it('defaults to limits a real backend will not hit, and trusts no proxy', () => {
    const config = loadConfigFromEnv(valid)
    expect(config.rateLimits).toEqual({
      api: { perSecond: 20, burst: 100 },
      browser: { perSecond: 2, burst: 30 },
      authFailuresPerMinute: 20,
    })
    expect(config.trustedProxyHops).toBe(0)
  })

  it('reads the variables, 0 turning a limit off', () => {
    const config = loadConfigFromEnv({
      ...valid,
      SP_CONNECT_RATE_LIMIT_API_PER_SECOND: '0',
      SP_CONNECT_RATE_LIMIT_API_BURST: '7',
      SP_CONNECT_RATE_LIMIT_BROWSER_PER_SECOND: '0.5',
      SP_CONNECT_RATE_LIMIT_BROWSER_BURST: '9',
      SP_CONNECT_RATE_LIMIT_AUTH_FAILURES: '0',
      SP_CONNECT_TRUSTED_PROXY_HOPS: '2',
    })
    expect(config.rateLimits).toEqual({
      api: { perSecond: 0, burst: 7 },
      browser: { perSecond: 0.5, burst: 9 },
      authFailuresPerMinute: 0,
    })
    expect(config.trustedProxyHops).toBe(2)
  })

  it('names bad values by variable', () => {
    let problems: readonly string[] = []
    try {
      loadConfigFromEnv({
        ...valid,
        SP_CONNECT_TRUSTED_PROXY_HOPS: '-1',
        SP_CONNECT_RATE_LIMIT_BROWSER_BURST: '0',
      })
    } catch (error) {
      if (error instanceof ConfigError) problems = error.problems
    }
    expect(problems.some((p) => p.startsWith('SP_CONNECT_TRUSTED_PROXY_HOPS '))).toBe(true)
    expect(problems.some((p) => p.startsWith('SP_CONNECT_RATE_LIMIT_BROWSER_BURST '))).toBe(true)
  })
})
