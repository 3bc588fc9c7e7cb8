import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfigFromEnv, parseDatabaseUrl } from '../../src/config.ts'

const secret = 'amzn1.oa2-cs.v1.0123456789abcdef0123456789abcdef'
const apiKey = 'k'.repeat(40)
const valid = {
  SP_CONNECT_PUBLIC_URL: 'https://connect.example.com/',
  SP_CONNECT_APP_ID: 'amzn1.sp.solution.11111111-2222-3333-4444-555555555555',
  SP_CONNECT_LWA_CLIENT_ID: 'amzn1.application-oa2-client.0123456789abcdef',
  SP_CONNECT_LWA_CLIENT_SECRET: secret,
  DATABASE_URL: '/var/lib/sp-connect/db.sqlite',
  SP_CONNECT_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString('base64')}`,
  SP_CONNECT_API_KEYS: `backend:${apiKey}`,
}

function problemsOf(env: Record<string, string | undefined>): readonly string[] {
  try {
    loadConfigFromEnv(env)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

describe('loadConfigFromEnv', () => {
  it('reads a valid environment with Amazon production defaults', () => {
    const config = loadConfigFromEnv(valid)
    expect(config.publicUrl).toBe('https://connect.example.com')
    expect(config.redirectUri).toBe('https://connect.example.com/callback')
    expect(config.amazon.lwaTokenUrl).toBe('https://api.amazon.com/auth/o2/token')
    expect(config.amazon.centralUrlTemplate).toBe('https://{host}')
    expect(config.draftApp).toBe(false)
    expect(config.database).toEqual({ kind: 'sqlite', path: '/var/lib/sp-connect/db.sqlite' })
    expect(config.insecureCookies).toBe(false)
    expect(Object.isFrozen(config)).toBe(true)
    expect(JSON.stringify(config.apiKeys)).not.toContain(apiKey)
  })

  it('reports every problem at once, naming variables and never values', () => {
    const problems = problemsOf({
      SP_CONNECT_PUBLIC_URL: 'http://connect.example.com',
      SP_CONNECT_APP_ID: 'amzn1.application-oa2-client.abc',
      SP_CONNECT_LWA_CLIENT_SECRET: 'short',
      SP_CONNECT_ENCRYPTION_KEYS: 'k1:dG9vc2hvcnQ=',
      SP_CONNECT_API_KEYS: 'backend:tooshort',
    })
    const text = problems.join('\n')
    for (const name of [
      'SP_CONNECT_PUBLIC_URL',
      'SP_CONNECT_APP_ID',
      'SP_CONNECT_LWA_CLIENT_ID',
      'SP_CONNECT_LWA_CLIENT_SECRET',
      'DATABASE_URL',
      'SP_CONNECT_ENCRYPTION_KEYS',
      'SP_CONNECT_API_KEYS',
    ]) {
      expect(text).toContain(name)
    }
    expect(text).not.toContain('tooshort')
    expect(text).not.toContain('dG9vc2hvcnQ=')
  })

  it('allows http only to loopback and only with the explicit opt-in', () => {
    const local = { ...valid, SP_CONNECT_LWA_TOKEN_URL: 'http://127.0.0.1:9000/auth/o2/token' }
    expect(problemsOf(local).join()).toContain('SP_CONNECT_LWA_TOKEN_URL')
    expect(problemsOf({ ...local, SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK: '1' })).toEqual([])
    const remote = {
      ...valid,
      SP_CONNECT_INSECURE_ALLOW_HTTP_LOOPBACK: '1',
      SP_CONNECT_LWA_TOKEN_URL: 'http://10.0.0.1/t',
    }
    expect(problemsOf(remote).join()).toContain('SP_CONNECT_LWA_TOKEN_URL')
  })

  it('requires {host} in URL templates and refuses a redirect URI with a fragment', () => {
    expect(
      problemsOf({ ...valid, SP_CONNECT_CENTRAL_URL_TEMPLATE: 'https://proxy.example.com' }).join(),
    ).toContain('SP_CONNECT_CENTRAL_URL_TEMPLATE')
    expect(problemsOf({ ...valid, SP_CONNECT_REDIRECT_URI: 'https://a.example.com/cb#x' }).join()).toContain(
      'SP_CONNECT_REDIRECT_URI',
    )
  })

  it('reads the app status and a second key', () => {
    const older = randomBytes(32).toString('base64')
    const config = loadConfigFromEnv({
      ...valid,
      SP_CONNECT_APP_STATUS: 'draft',
      SP_CONNECT_ENCRYPTION_KEYS: `${valid.SP_CONNECT_ENCRYPTION_KEYS},k0:${older}`,
    })
    expect(config.draftApp).toBe(true)
    expect(config.keyring.map((k) => k.id)).toEqual(['k1', 'k0'])
  })
})

describe('parseDatabaseUrl', () => {
  it.each([
    ['data/db.sqlite', { kind: 'sqlite', path: 'data/db.sqlite' }],
    ['file:/tmp/x.db', { kind: 'sqlite', path: '/tmp/x.db' }],
    ['sqlite:///tmp/x.db', { kind: 'sqlite', path: '/tmp/x.db' }],
    ['postgres://u@h/db', { kind: 'postgres', url: 'postgres://u@h/db' }],
    ['postgresql://u@h/db', { kind: 'postgres', url: 'postgresql://u@h/db' }],
  ])('%s', (value, expected) => expect(parseDatabaseUrl(value)).toEqual(expected))

  it('refuses other schemes', () => expect(() => parseDatabaseUrl('mysql://h/db')).toThrow())
})
